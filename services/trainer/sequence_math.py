"""What the sequence-level losses (rft.py, dpo.py, kto.py) share: masked per-token values summed or averaged per
sequence, where a sequence may span several rows (the transitions of one multi-turn rollout), and the drift metrics
the trainer reports for them."""

from __future__ import annotations

import torch

from lightwire.services.trainer.grpo import MAX_LOG_RATIO, k3_kl


def check_rows(logprobs: torch.Tensor, mask: torch.Tensor, *others: torch.Tensor | None) -> torch.Tensor:
    """The boolean mask of model tokens, after checking every [B, T] input has one shape."""
    shapes = [tuple(t.shape) for t in (logprobs, mask, *others) if t is not None]
    if len(set(shapes)) != 1 or logprobs.dim() != 2:
        raise ValueError(f"logprobs, mask and reference logprobs must all be the same [B, T], got {shapes}")
    return mask > 0


def row_sequences(sequence: torch.Tensor | None, rows: int) -> tuple[torch.Tensor, int]:
    """Each row's sequence ([B], 0..S-1; default: a sequence per row) and the number of sequences S."""
    if sequence is None:
        return torch.arange(rows), rows
    if sequence.shape != (rows,):
        raise ValueError(f"sequence {tuple(sequence.shape)} must be [B] = [{rows}]")
    return sequence.long(), int(sequence.max()) + 1 if rows else 0


def sequence_sums(values: torch.Tensor, keep: torch.Tensor, sequence: torch.Tensor, count: int) -> torch.Tensor:
    """sum over each sequence's model tokens of `values` ([B, T] -> [S]); values under mask 0 never count, even nan."""
    per_row = torch.where(keep, values, torch.zeros_like(values)).sum(-1)
    return torch.zeros(count, dtype=per_row.dtype, device=per_row.device).index_add(0, sequence.to(per_row.device), per_row)


def drift_metrics(logprobs: torch.Tensor, behaviour_logprobs: torch.Tensor | None, ref_logprobs: torch.Tensor | None,
                  keep: torch.Tensor) -> tuple[float, float]:
    """(mean k3 KL to the reference, mean ratio to the behaviour policy) over model tokens: how far the policy has
    moved from what the loss anchors it to and from what sampled the tokens. 0 and 1 where there is nothing to
    compare against."""
    with torch.no_grad():
        mask = keep.to(logprobs.dtype)
        n = mask.sum().clamp(min=1)
        kl = 0.0
        if ref_logprobs is not None:
            kl = float((k3_kl(logprobs, torch.where(keep, ref_logprobs, logprobs)) * mask).sum() / n)
        ratio_mean = 1.0
        if behaviour_logprobs is not None:
            log_ratio = torch.where(keep, logprobs - behaviour_logprobs, torch.zeros_like(logprobs)).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
            ratio_mean = float((torch.exp(log_ratio) * mask).sum() / n)
    return kl, ratio_mean
