"""GRPO math as pure functions (torch): group-normalised advantages, the clipped policy loss against behaviour
logprobs, the k3 KL estimate to a reference, masks so only model tokens count, per-sequence averaging."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# exp(20) ~ 5e8: far outside any clip range, and far from float32 overflow (exp(89) is inf, and inf * 0 is nan).
MAX_LOG_RATIO = 20.0


def group_advantages(rewards: torch.Tensor, group_index: torch.Tensor, scale_by_std: bool = True, eps: float = 1e-6, *,
                     scores: torch.Tensor | None = None, score_group: torch.Tensor | None = None) -> torch.Tensor:
    """(score - mean of its group's rewards) / (sample std of those rewards + eps).

    `rewards` and `group_index` [N] give each group's statistics, one reward per rollout. `scores` and `score_group`
    [M] are what gets scored against them: by default the rewards themselves ([N] -> [N], plain GRPO); the trainer
    passes one (credit-assigned) reward per transition, so a rollout's steps can differ in credit while the group's
    centre and scale stay one per rollout.

    The sample (unbiased) std, as TRL. A group whose rewards are all equal gives zeros to all its scores: no signal,
    and transition rewards are not blown up by 1 / eps. A group of one rollout (no std) is only centred.
    `scale_by_std=False` keeps only the centring (Dr. GRPO), so groups with tiny spread are not amplified.
    """
    _check_same_1d(rewards, group_index, "rewards", "group_index")
    if (scores is None) != (score_group is None):
        raise ValueError("scores and score_group go together")
    if scores is None:
        scores, score_group = rewards, group_index
    _check_same_1d(scores, score_group, "scores", "score_group")
    rewards, scores = rewards.float(), scores.float()
    advantages = torch.zeros_like(scores)
    for g in torch.unique(group_index):
        r = rewards[group_index == g]
        members = score_group == g
        centred = scores[members] - r.mean()
        if scale_by_std and r.numel() > 1:
            spread = r.std(unbiased=True)
            centred = centred / (spread + eps) if spread > 0 else torch.zeros_like(centred)
        advantages[members] = centred
    return advantages


def _check_same_1d(values: torch.Tensor, index: torch.Tensor, values_name: str, index_name: str) -> None:
    if values.shape != index.shape or values.dim() != 1:
        raise ValueError(f"{values_name} {tuple(values.shape)} and {index_name} {tuple(index.shape)} must be the same 1-d shape")


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(target) per position under softmax(logits / temperature): logits [B, T, V], targets [B, T] -> [B, T].

    The temperature must be the one used at sampling, since the behaviour logprobs were recorded after it.
    Computed in float32 whatever the logits' dtype: bf16 log-softmax is too coarse for importance ratios.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}: want [B, T, V] and [B, T]")
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)


@dataclass(frozen=True)
class LossConfig:
    # Ratio clip range [1 - clip_low, 1 + clip_high]; a higher upper bound (DAPO's clip-higher) lets rare good
    # tokens grow faster than they can shrink.
    clip_low: float = 0.2
    clip_high: float = 0.28
    # Weight of the k3 KL(pi || ref) penalty; 0 turns it off (no reference model needed).
    kl_coef: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.clip_low < 1:
            raise ValueError(f"clip_low must lie in [0, 1), got {self.clip_low}: the lower ratio bound is 1 - clip_low")
        if self.clip_high < 0:
            raise ValueError(f"clip_high must be >= 0, got {self.clip_high}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")


@dataclass
class LossOutput:
    loss: torch.Tensor
    # Share of model tokens whose gradient the clip removed (ratio beyond the bound on the side the advantage pushes).
    clip_fraction: float
    # Mean k3 KL to the reference over model tokens (0 without a reference).
    kl: float
    ratio_mean: float


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): exp(ref - pi) - (ref - pi) - 1; unbiased, always >= 0."""
    diff = (ref_logprobs - logprobs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    return torch.exp(diff) - diff - 1


def policy_loss(
    logprobs: torch.Tensor,
    behaviour_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig = LossConfig(),
    ref_logprobs: torch.Tensor | None = None,
    sequence_weights: torch.Tensor | None = None,
) -> LossOutput:
    """Clipped surrogate over model tokens: logprobs, behaviour_logprobs, mask (and ref_logprobs) [B, T]; advantages
    and sequence_weights [B].

    Each sequence's token losses are averaged over its own model tokens first, then sequences are averaged
    (weighted), so a long rollout counts as much as a short one. A sequence without model tokens counts nothing.
    Values under mask 0 never reach the loss or its gradient (they may be padding, or garbage).
    """
    if not (logprobs.shape == behaviour_logprobs.shape == mask.shape) or logprobs.dim() != 2:
        raise ValueError(f"logprobs {tuple(logprobs.shape)}, behaviour {tuple(behaviour_logprobs.shape)} and mask "
                         f"{tuple(mask.shape)} must all be [B, T]")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(f"advantages {tuple(advantages.shape)} must be [B] = [{logprobs.shape[0]}]")
    keep = mask > 0
    mask = keep.to(logprobs.dtype)
    log_ratio = torch.where(keep, logprobs - behaviour_logprobs, torch.zeros_like(logprobs)).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    adv = advantages.to(logprobs.dtype).unsqueeze(-1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - config.clip_low, 1 + config.clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    kl_tokens = torch.zeros_like(per_token)
    if ref_logprobs is not None:
        kl_tokens = k3_kl(logprobs, torch.where(keep, ref_logprobs, logprobs))
        if config.kl_coef > 0:
            per_token = per_token + config.kl_coef * kl_tokens

    tokens = mask.sum(-1)
    per_sequence = (per_token * mask).sum(-1) / tokens.clamp(min=1)
    weights = sequence_weights.to(per_sequence.dtype) if sequence_weights is not None else torch.ones_like(per_sequence)
    weights = weights * (tokens > 0)
    loss = (per_sequence * weights).sum() / weights.sum().clamp(min=1e-8)

    with torch.no_grad():
        n = mask.sum().clamp(min=1)
        # Clipping only removes the gradient where the ratio left the range in the direction the advantage pushes.
        was_clipped = ((ratio > 1 + config.clip_high) & (adv > 0)) | ((ratio < 1 - config.clip_low) & (adv < 0))
        clip_fraction = float((was_clipped.to(mask.dtype) * mask).sum() / n)
        kl = float((kl_tokens * mask).sum() / n)
        ratio_mean = float((ratio * mask).sum() / n)
    return LossOutput(loss, clip_fraction, kl, ratio_mean)
