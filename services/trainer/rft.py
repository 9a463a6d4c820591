"""Rejection-sampling fine-tuning (LW_TRAINER_ALGORITHM=rft) as pure functions (torch): which rollouts are kept, and
the supervised negative log-likelihood of their model tokens.

Kept are, in mode `threshold`, every rollout whose reward reaches `min_reward`; in mode `best`, the best rollout of
each group (the first of equals), if it also reaches `min_reward` (-inf keeps every group's best whatever it
scored). Nothing is kept from the rest: they add no gradient at all, unlike GRPO's negative advantages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from lightwire.services.trainer.grpo import LossOutput
from lightwire.services.trainer.sequence_math import check_rows, drift_metrics

RftMode = Literal["threshold", "best"]


@dataclass(frozen=True)
class RftConfig:
    mode: RftMode = "threshold"
    # A kept rollout's reward is at least this (both modes). 1.0: only full marks under a 0/1 reward.
    min_reward: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("threshold", "best"):
            raise ValueError(f"rft mode must be threshold or best, got {self.mode!r}")
        if math.isnan(self.min_reward):
            raise ValueError("rft min_reward must be a number (-inf keeps everything the mode picks), got nan")


def rft_keep(rewards: torch.Tensor, groups: torch.Tensor, config: RftConfig = RftConfig()) -> torch.Tensor:
    """Which rollouts are trained on: rewards and groups [R] (one per rollout) -> bool [R]."""
    if rewards.shape != groups.shape or rewards.dim() != 1:
        raise ValueError(f"rewards {tuple(rewards.shape)} and groups {tuple(groups.shape)} must be the same 1-d shape")
    keep = rewards.float() >= config.min_reward
    if config.mode == "best":
        best = torch.zeros_like(keep)
        for g in torch.unique(groups):
            members = (groups == g).nonzero().squeeze(-1)
            # argmax gives the first of equal maxima: one rollout per group, the earliest of the tied best.
            best[members[int(torch.argmax(rewards[members].float()))]] = True
        keep &= best
    return keep


def rft_loss(logprobs: torch.Tensor, mask: torch.Tensor, sequence_weights: torch.Tensor | None = None,
             behaviour_logprobs: torch.Tensor | None = None) -> LossOutput:
    """Negative log-likelihood of the model tokens of the kept rows: logprobs and mask [B, T], sequence_weights [B].

    Averaged like the GRPO loss: over each row's own model tokens, then over rows (weighted), so a long reply counts
    as much as a short one; a row without model tokens counts nothing. The metrics compare with the behaviour
    logprobs when given (there is no reference: clip_fraction and kl are 0).
    """
    keep = check_rows(logprobs, mask, behaviour_logprobs)
    if sequence_weights is not None and sequence_weights.shape != logprobs.shape[:1]:
        raise ValueError(f"sequence_weights {tuple(sequence_weights.shape)} must be [B] = [{logprobs.shape[0]}]")
    m = keep.to(logprobs.dtype)
    tokens = m.sum(-1)
    nll = torch.where(keep, -logprobs, torch.zeros_like(logprobs))
    per_sequence = nll.sum(-1) / tokens.clamp(min=1)
    weights = sequence_weights.to(per_sequence.dtype) if sequence_weights is not None else torch.ones_like(per_sequence)
    weights = weights * (tokens > 0)
    loss = (per_sequence * weights).sum() / weights.sum().clamp(min=1e-8)
    _, ratio_mean = drift_metrics(logprobs, behaviour_logprobs, None, keep)
    return LossOutput(loss, 0.0, 0.0, ratio_mean)
