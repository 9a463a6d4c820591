"""Online DPO on the trainer's groups (LW_TRAINER_ALGORITHM=dpo) as pure functions (torch): pairs formed inside a
group, and the DPO loss on sequence logprob sums.

Each group gives at most one pair: its best rollout (chosen) against its worst (rejected), the first of equals on
either side; a group whose rewards are all equal (or of one rollout) gives none. The loss of a pair is

    -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))

with pi and ref the sums of the logprobs of a rollout's model tokens (over all its transitions) under the policy
and the reference. Which reference is the trainer's choice (LW_TRAINER_DPO_REFERENCE, services/trainer/algorithms.py):
the behaviour logprobs the engine captured for the sampled tokens, or a frozen base model; these functions take
whatever logprobs they are given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lightwire.services.trainer.grpo import LossOutput
from lightwire.services.trainer.sequence_math import check_rows, drift_metrics, row_sequences, sequence_sums


@dataclass(frozen=True)
class DpoConfig:
    # Strength of the implicit KL to the reference: the log-ratio margin is scaled by it before the sigmoid.
    beta: float = 0.1

    def __post_init__(self) -> None:
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"dpo beta must be > 0, got {self.beta}")


def dpo_pairs(rewards: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) rollout indices [P], one pair per group whose rewards differ: rewards and groups [R]."""
    if rewards.shape != groups.shape or rewards.dim() != 1:
        raise ValueError(f"rewards {tuple(rewards.shape)} and groups {tuple(groups.shape)} must be the same 1-d shape")
    chosen, rejected = [], []
    for g in torch.unique(groups):
        members = (groups == g).nonzero().squeeze(-1)
        r = rewards[members].float()
        best, worst = int(torch.argmax(r)), int(torch.argmin(r))
        if r[best] > r[worst]:
            chosen.append(int(members[best]))
            rejected.append(int(members[worst]))
    return torch.tensor(chosen, dtype=torch.long), torch.tensor(rejected, dtype=torch.long)


@dataclass
class DpoOutput(LossOutput):
    # Share of pairs whose implicit reward margin beta * (...) is already positive (weighted like the loss).
    accuracy: float = 0.0


def dpo_loss(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    config: DpoConfig = DpoConfig(),
    sequence: torch.Tensor | None = None,
    pair_weights: torch.Tensor | None = None,
    behaviour_logprobs: torch.Tensor | None = None,
) -> DpoOutput:
    """The (weighted) mean DPO loss over pairs: logprobs, ref_logprobs and mask [B, T]; `sequence` [B] says which
    sequence each row belongs to (rows of one rollout add up; default a sequence per row); chosen, rejected and
    pair_weights [P] index and weigh pairs of sequences. Values under mask 0 never reach the loss or its gradient.
    """
    keep = check_rows(logprobs, mask, ref_logprobs, behaviour_logprobs)
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(f"chosen {tuple(chosen.shape)} and rejected {tuple(rejected.shape)} must be the same [P]")
    sequence, count = row_sequences(sequence, logprobs.shape[0])
    log_ratio = sequence_sums(logprobs, keep, sequence, count) - sequence_sums(ref_logprobs.to(logprobs.dtype), keep, sequence, count)
    margin = config.beta * (log_ratio[chosen.to(log_ratio.device)] - log_ratio[rejected.to(log_ratio.device)])
    weights = pair_weights.to(margin.dtype) if pair_weights is not None else torch.ones_like(margin)
    loss = (-torch.nn.functional.logsigmoid(margin) * weights).sum() / weights.sum().clamp(min=1e-8)
    kl, ratio_mean = drift_metrics(logprobs, behaviour_logprobs, ref_logprobs, keep)
    with torch.no_grad():
        accuracy = float(((margin > 0).to(weights.dtype) * weights).sum() / weights.sum().clamp(min=1e-8))
    return DpoOutput(loss, 0.0, kl, ratio_mean, accuracy)
