"""Our training sequences in verl's batch layout, and verl's update metrics back in ours. Pure torch: no verl import,
so the mapping is tested where verl is not installed.

verl (0.9.1: `DataProto` -> `left_right_2_no_padding` -> FSDP engine -> `ppo_loss`) wants each row split into a
left-padded prompt and a right-padded response of fixed widths, with position ids, a response mask, behaviour
("old") logprobs and token-level advantages over the response columns only.
"""

from __future__ import annotations

import torch

from lightwire.services.trainer.backend import UpdateMetrics
from lightwire.services.trainer.collate import Sequences


def split_points(seqs: Sequences) -> torch.Tensor:
    """Per row, the index of the first token the model sampled ([N]); earlier tokens are prompt for verl.

    Any split at or before the first model token gives the same loss (a token's logprob depends only on its prefix
    and masked tokens count nothing), and the latest one keeps verl's responses shortest. A row without model tokens
    splits before its last token (verl needs at least one prompt and one response token).
    """
    lengths = seqs.attention_mask.sum(-1)
    has_model_token = (seqs.response_mask > 0).any(-1)
    # response_mask[:, j] scores input_ids[:, j + 1].
    first = (seqs.response_mask > 0).float().argmax(-1) + 1
    return torch.where(has_model_token, first, lengths - 1).clamp(min=1)


def pad_rows(seqs: Sequences, multiple: int) -> Sequences:
    """`seqs` with rows that train nothing (no model tokens, weight 0) appended up to a multiple of `multiple`.

    verl splits a batch evenly over data-parallel ranks and micro-batches (`prepare_micro_batches` asserts the
    division); a padding row adds nothing to the loss, and `to_verl_tensors` counts it in the sequence mean on both
    sides of the weight fold, so the update is unchanged.
    """
    extra = -len(seqs) % multiple
    if extra == 0:
        return seqs
    shortest = int(seqs.attention_mask.sum(-1).argmin())
    filler = seqs.take([shortest] * extra)
    filler.response_mask.zero_()
    filler.behaviour_logprobs.zero_()
    filler.advantages.zero_()
    filler.weights.zero_()
    return Sequences(*(torch.cat([a, b]) for a, b in zip(
        (seqs.input_ids, seqs.attention_mask, seqs.response_mask, seqs.behaviour_logprobs, seqs.advantages, seqs.weights),
        (filler.input_ids, filler.attention_mask, filler.response_mask, filler.behaviour_logprobs, filler.advantages,
         filler.weights), strict=True)))


def to_verl_tensors(seqs: Sequences, pad_id: int) -> dict[str, torch.Tensor]:
    """The tensors of a verl DataProto for `update_actor`: prompts [N, P] left-padded, responses [N, R] right-padded,
    input_ids / attention_mask / position_ids [N, P + R], response_mask / old_log_probs / advantages [N, R].

    Per-rollout weights have no place in verl's batch, so they are folded into the advantages: the clipped surrogate
    is linear in a positive scale of the advantage, and under `seq-mean-token-mean` aggregation over all N rows,
    advantage * weight * N / (sum of the weights of rows with model tokens) gives exactly our weighted per-sequence mean
    (services/trainer/grpo.py: policy_loss).
    """
    n = len(seqs)
    lengths = seqs.attention_mask.sum(-1)
    split = split_points(seqs)
    prompt_width = int(split.max())
    response_width = int((lengths - split).max())
    prompts = torch.full((n, prompt_width), pad_id, dtype=seqs.input_ids.dtype)
    responses = torch.full((n, response_width), pad_id, dtype=seqs.input_ids.dtype)
    attention = torch.zeros((n, prompt_width + response_width), dtype=seqs.attention_mask.dtype)
    response_mask = torch.zeros((n, response_width), dtype=torch.float32)
    old_log_probs = torch.zeros((n, response_width), dtype=torch.float32)
    for i in range(n):
        s, length = int(split[i]), int(lengths[i])
        r = length - s
        prompts[i, prompt_width - s:] = seqs.input_ids[i, :s]
        responses[i, :r] = seqs.input_ids[i, s:length]
        attention[i, prompt_width - s: prompt_width + r] = 1
        # Token s + k is scored by column s + k - 1 of our [N, T-1] tensors.
        response_mask[i, :r] = seqs.response_mask[i, s - 1: length - 1]
        old_log_probs[i, :r] = seqs.behaviour_logprobs[i, s - 1: length - 1]
    has_tokens = response_mask.sum(-1) > 0
    weights = seqs.weights.float() * has_tokens
    scale = weights * n / weights.sum().clamp(min=1e-8)
    advantages = (seqs.advantages.float() * scale).unsqueeze(-1) * response_mask
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return {
        "prompts": prompts, "responses": responses, "input_ids": torch.cat([prompts, responses], dim=-1),
        "attention_mask": attention, "position_ids": position_ids, "response_mask": response_mask,
        "old_log_probs": old_log_probs, "advantages": advantages,
    }


def _mean(value) -> float:
    """verl reports a metric as a number, a list of per-mini-batch numbers, or an unaggregated `Metric`."""
    if hasattr(value, "aggregate"):
        return float(value.aggregate())
    if isinstance(value, (list, tuple)):
        return sum(float(v) for v in value) / len(value) if value else 0.0
    return float(value)


def metrics_from_verl(metrics: dict, tokens: int, seconds: float) -> UpdateMetrics:
    """verl's update metrics (keys as its PPO loss names them, with or without the `actor/` prefix) as ours.

    `loss` is what was backpropagated (policy loss plus any KL term), `actor/ppo_kl` is mean(old - new logprob), so
    the mean importance ratio is taken as exp(-ppo_kl); KL to a reference is `actor/kl_loss` (0 without one).
    """
    def get(name: str, default: float = 0.0) -> float:
        for key in (f"actor/{name}", name):
            if key in metrics:
                return _mean(metrics[key])
        return default

    return UpdateMetrics(loss=get("loss", get("pg_loss")), kl=get("kl_loss"), clip_fraction=get("pg_clipfrac"),
                         ratio_mean=float(torch.tensor(-get("ppo_kl")).exp()), tokens=tokens, seconds=seconds)
