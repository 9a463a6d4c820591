"""Computing a micro-batch's shared prompt once (in the spirit of shared-prefix GRPO, "Prefix Grouper").

The rollouts of a group share their task's prompt, and the demo's rollouts share a long system message with worked
examples besides: the rows of a micro-batch often agree on their first few hundred tokens and differ in the last
hundred. A causal model's activations over those tokens are the same in every row, so they are computed once, for
one row, and the rows' own tokens attend to that one copy's keys and values. Gradients flow back through the copy:
each row's contribution to the shared tokens' gradient is summed there, as the per-row forward sums it across rows.
"""

from __future__ import annotations

import torch

# Below this a shared pass saves less than the bookkeeping costs.
MIN_SHARED_TOKENS = 16


def common_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor, limit: int) -> int:
    """How many leading tokens every row has (attended, not padding) and every row agrees on, at most `limit`."""
    if input_ids.shape[0] < 2:
        return 0
    width = min(limit, int(attention_mask.sum(dim=1).min()))
    same = (input_ids[:, :width] == input_ids[:1, :width]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else width


def logits_over_shared_prefix(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix: int, keep: int) -> torch.Tensor:
    """The logits of the last `keep` positions of every row, the first `prefix` tokens computed once.

    Equal to `model(input_ids, attention_mask, logits_to_keep=keep).logits` up to float rounding, for `keep` no more
    than the rows' length past the prefix.
    """
    from transformers import DynamicCache

    rows, width = input_ids.shape
    if not 0 < prefix < width or keep > width - prefix:
        raise ValueError(f"a shared prefix of {prefix} tokens and {keep} kept positions do not fit rows of {width}")
    cache = DynamicCache()
    model(input_ids=input_ids[:1, :prefix], attention_mask=attention_mask[:1, :prefix], past_key_values=cache, use_cache=True,
          logits_to_keep=1)
    cache.batch_repeat_interleave(rows)
    return model(input_ids=input_ids[:, prefix:], attention_mask=attention_mask, past_key_values=cache, use_cache=True,
                 logits_to_keep=keep).logits
