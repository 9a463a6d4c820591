"""KTO on the trainer's rollouts (LW_TRAINER_ALGORITHM=kto) as pure functions (torch): unpaired desirable and
undesirable rollouts from their rewards, and the KTO loss (Ethayarajh et al., 2024) on sequence logprob sums.

A rollout is desirable when its reward reaches `threshold`, undesirable otherwise. With r = pi - ref, the sums of
the logprobs of a rollout's model tokens (over all its transitions) under the policy and the reference, and the
reference point z0:

    desirable:    desirable_weight   * (1 - sigmoid(beta * (r - z0)))
    undesirable:  undesirable_weight * (1 - sigmoid(beta * (z0 - r)))

z0 is the batch's KL estimate, the mean of r over its rollouts, clamped at 0 and detached (no gradient flows
through it), as TRL's KTOTrainer takes it. The paper advises weights with desirable_weight * n_desirable /
(undesirable_weight * n_undesirable) in [1, 4/3].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lightwire.services.trainer.grpo import LossOutput
from lightwire.services.trainer.sequence_math import check_rows, drift_metrics, row_sequences, sequence_sums


@dataclass(frozen=True)
class KtoConfig:
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    # A rollout whose reward is at least this is desirable; below it, undesirable.
    threshold: float = 0.5

    def __post_init__(self) -> None:
        for name in ("beta", "desirable_weight", "undesirable_weight"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"kto {name} must be > 0, got {value}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"kto threshold must be a finite number, got {self.threshold}")


def kto_desirable(rewards: torch.Tensor, config: KtoConfig = KtoConfig()) -> torch.Tensor:
    """Which rollouts are desirable: rewards [R] -> bool [R]."""
    return rewards.float() >= config.threshold


def reference_point(sequence_log_ratios: torch.Tensor) -> torch.Tensor:
    """z0: the mean of the sequences' pi - ref, clamped at 0 and detached (a 0-d tensor; 0 for no sequence)."""
    if sequence_log_ratios.numel() == 0:
        return torch.zeros((), dtype=sequence_log_ratios.dtype, device=sequence_log_ratios.device)
    return sequence_log_ratios.detach().mean().clamp(min=0)


@dataclass
class KtoOutput(LossOutput):
    # The reference point the loss used.
    reference_point: float = 0.0


def kto_loss(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    desirable: torch.Tensor,
    config: KtoConfig = KtoConfig(),
    sequence: torch.Tensor | None = None,
    sequence_weights: torch.Tensor | None = None,
    z0: torch.Tensor | float | None = None,
    behaviour_logprobs: torch.Tensor | None = None,
) -> KtoOutput:
    """The (weighted) mean KTO loss over sequences: logprobs, ref_logprobs and mask [B, T]; `sequence` [B] says
    which sequence each row belongs to (default a sequence per row); desirable and sequence_weights [S].

    `z0` is the reference point; by default reference_point() of these sequences. A trainer that splits a batch
    into micro-batches passes the whole batch's, so the loss does not depend on the split.
    """
    keep = check_rows(logprobs, mask, ref_logprobs, behaviour_logprobs)
    sequence, count = row_sequences(sequence, logprobs.shape[0])
    if desirable.shape != (count,):
        raise ValueError(f"desirable {tuple(desirable.shape)} must be [S] = [{count}], one per sequence")
    log_ratio = sequence_sums(logprobs, keep, sequence, count) - sequence_sums(ref_logprobs.to(logprobs.dtype), keep, sequence, count)
    z = reference_point(log_ratio) if z0 is None else torch.as_tensor(z0, dtype=log_ratio.dtype, device=log_ratio.device).detach()
    good = desirable.to(log_ratio.device).bool()
    per_sequence = torch.where(good, config.desirable_weight * (1 - torch.sigmoid(config.beta * (log_ratio - z))),
                               config.undesirable_weight * (1 - torch.sigmoid(config.beta * (z - log_ratio))))
    weights = sequence_weights.to(per_sequence.dtype) if sequence_weights is not None else torch.ones_like(per_sequence)
    loss = (per_sequence * weights).sum() / weights.sum().clamp(min=1e-8)
    kl, ratio_mean = drift_metrics(logprobs, behaviour_logprobs, ref_logprobs, keep)
    return KtoOutput(loss, 0.0, kl, ratio_mean, float(z))
