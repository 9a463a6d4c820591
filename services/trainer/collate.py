"""From a TrainingBatch to training sequences: exact captured token ids, response masks, behaviour logprobs,
group-normalised advantages and per-rollout weights. Nothing is re-tokenized."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lightwire.services.trainer.grpo import group_advantages
from lightwire.v1 import events_pb2


@dataclass
class Sequences:
    input_ids: torch.Tensor  # [N, T] right-padded
    attention_mask: torch.Tensor  # [N, T]
    # Aligned with input_ids[:, 1:] (the positions logits predict):
    response_mask: torch.Tensor  # [N, T-1] 1 where the token was sampled by the model
    behaviour_logprobs: torch.Tensor  # [N, T-1]
    advantages: torch.Tensor  # [N]
    weights: torch.Tensor  # [N]

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def take(self, indices: list[int]) -> "Sequences":
        index = torch.tensor(indices, dtype=torch.long)
        return Sequences(*(t.index_select(0, index) for t in (self.input_ids, self.attention_mask, self.response_mask,
                                                                self.behaviour_logprobs, self.advantages, self.weights)))

    def slice(self, start: int, stop: int) -> "Sequences":
        return Sequences(*(t[start:stop] for t in (self.input_ids, self.attention_mask, self.response_mask,
                                                    self.behaviour_logprobs, self.advantages, self.weights)))

    @property
    def model_tokens(self) -> int:
        return int(self.response_mask.sum())

    def lengths(self) -> torch.Tensor:
        return self.attention_mask.sum(dim=1)

    def sorted_by_length(self) -> "Sequences":
        return self.take(torch.argsort(self.lengths(), stable=True).tolist())

    def trimmed(self) -> "Sequences":
        """The same rows without the padding columns every row has (rows are right-padded)."""
        width = max(int(self.lengths().max()), 2) if len(self) else self.input_ids.shape[1]
        return Sequences(self.input_ids[:, :width], self.attention_mask[:, :width], self.response_mask[:, : width - 1],
                         self.behaviour_logprobs[:, : width - 1], self.advantages, self.weights)

    def first_response_position(self) -> int:
        """The first column of response_mask that is set in any row (0 when none is)."""
        columns = self.response_mask.any(dim=0).nonzero()
        return int(columns[0]) if len(columns) else 0


def carries_no_signal(seqs: Sequences, kl_coef: float) -> bool:
    """True when the GRPO loss has a zero gradient on this batch: no advantage is non-zero and there is no KL term."""
    return kl_coef <= 0 and not bool(seqs.advantages.any())


def collate(batch: events_pb2.TrainingBatch, pad_id: int, scale_by_std: bool = True, batch_weight: float = 1.0) -> Sequences:
    """One row per transition with response tokens; its advantage is grpo.group_advantages of the transition's
    (credit-assigned) reward against its group's rollout rewards, and its weight the rollout's share."""
    rows, scores, row_group, weights = [], [], [], []
    rollout_rewards, rollout_group = [], []
    for g, group in enumerate(batch.groups):
        for trajectory in group.trajectories:
            # Every rollout counts in its group's statistics, even one left without trainable tokens.
            rollout_rewards.append(trajectory.reward)
            rollout_group.append(g)
            n = max(1, len(trajectory.transitions))
            for t in trajectory.transitions:
                if not t.response_token_ids:
                    continue
                rows.append(t)
                scores.append(t.reward)
                row_group.append(g)
                # Per-rollout averaging: a rollout's transitions share one rollout's weight.
                weights.append(batch_weight / n)
    if not rows:
        raise ValueError(f"batch {batch.batch_id} has no trainable tokens")
    advantages = group_advantages(torch.tensor(rollout_rewards), torch.tensor(rollout_group), scale_by_std,
                                  scores=torch.tensor(scores), score_group=torch.tensor(row_group))
    return _pad(rows, pad_id, advantages, torch.tensor(weights))


def _pad(rows: list[events_pb2.Transition], pad_id: int, advantages: torch.Tensor, weights: torch.Tensor) -> Sequences:
    """The transitions' exact token ids, right-padded, with masks and behaviour logprobs at the predicting positions."""
    length = max(len(t.prompt_token_ids) + len(t.response_token_ids) for t in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    mask = torch.zeros((len(rows), length - 1))
    behaviour = torch.zeros((len(rows), length - 1))
    for i, t in enumerate(rows):
        p, r = len(t.prompt_token_ids), len(t.response_token_ids)
        ids[i, : p + r] = torch.tensor(list(t.prompt_token_ids) + list(t.response_token_ids))
        attention[i, : p + r] = 1
        # Response token k sits at position p + k and is predicted by the logits at p + k - 1.
        mask[i, p - 1 : p - 1 + r] = torch.tensor(list(t.response_mask), dtype=torch.float32)
        behaviour[i, p - 1 : p - 1 + r] = torch.tensor(list(t.response_logprobs), dtype=torch.float32)
    return Sequences(ids, attention, mask, behaviour, advantages, weights)
