"""GRPO math as pure functions (torch): group-normalised advantages, the clipped policy loss against behaviour
logprobs, the k3 KL estimate to a reference, masks so only model tokens count, per-sequence averaging."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def group_advantages(rewards: torch.Tensor, group_index: torch.Tensor, scale_by_std: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """(r - mean of its group) / (std of its group + eps); a group whose rewards are all equal gives zeros."""
    advantages = torch.zeros_like(rewards)
    for g in torch.unique(group_index):
        members = group_index == g
        r = rewards[members]
        centred = r - r.mean()
        if scale_by_std and r.numel() > 1:
            centred = centred / (r.std(unbiased=True) + eps)
        advantages[members] = centred
    return advantages


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(target) per position under softmax(logits / temperature): logits [B, T, V], targets [B, T] -> [B, T]."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@dataclass(frozen=True)
class LossConfig:
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_coef: float = 0.0


@dataclass
class LossOutput:
    loss: torch.Tensor
    clip_fraction: float
    kl: float
    ratio_mean: float


def policy_loss(
    logprobs: torch.Tensor,
    behaviour_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig = LossConfig(),
    ref_logprobs: torch.Tensor | None = None,
    sequence_weights: torch.Tensor | None = None,
) -> LossOutput:
    """Clipped surrogate over model tokens ([B, T] tensors, advantages [B]).

    Each sequence's token losses are averaged over its own tokens first, then sequences are averaged (weighted),
    so a long rollout counts as much as a short one.
    """
    mask = mask.float()
    ratio = torch.exp(logprobs - behaviour_logprobs)
    adv = advantages.unsqueeze(-1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - config.clip_low, 1 + config.clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    kl_tokens = torch.zeros_like(per_token)
    if ref_logprobs is not None and config.kl_coef > 0:
        # k3 estimator of KL(pi || ref): exp(ref - pi) - (ref - pi) - 1, always >= 0.
        diff = ref_logprobs - logprobs
        kl_tokens = torch.exp(diff) - diff - 1
        per_token = per_token + config.kl_coef * kl_tokens
    tokens = mask.sum(-1).clamp(min=1)
    per_sequence = (per_token * mask).sum(-1) / tokens
    weights = sequence_weights if sequence_weights is not None else torch.ones_like(per_sequence)
    loss = (per_sequence * weights).sum() / weights.sum().clamp(min=1e-8)
    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        was_clipped = ((ratio < 1 - config.clip_low) | (ratio > 1 + config.clip_high)).float()
        clip_fraction = float((was_clipped * mask).sum() / n)
        kl = float((kl_tokens * mask).sum() / n)
        ratio_mean = float((ratio * mask).sum() / n)
    return LossOutput(loss, clip_fraction, kl, ratio_mean)
