"""From a TrainingBatch to training sequences: exact captured token ids, response masks, behaviour logprobs,
group-normalised advantages and per-rollout weights. Nothing is re-tokenized."""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
    rows, advantages, weights = [], [], []
    for group in batch.groups:
        # Group statistics come from one reward per rollout; each transition is then scored against them with
        # its own (credit-assigned) reward, which for "identical" credit is plain GRPO.
        rewards = torch.tensor([t.reward for t in group.trajectories], dtype=torch.float32)
        centre = rewards.mean() if len(rewards) else torch.tensor(0.0)
        spread = rewards.std(unbiased=True) if (scale_by_std and len(rewards) > 1) else torch.tensor(1.0)
        for trajectory in group.trajectories:
            n = max(1, len(trajectory.transitions))
            for t in trajectory.transitions:
                if not t.response_token_ids:
                    continue
                rows.append(t)
                advantages.append(float((t.reward - centre) / (spread + 1e-6)) if spread > 0 or not scale_by_std else 0.0)
                # Per-rollout averaging: a rollout's transitions share one rollout's weight.
                weights.append(batch_weight / n)
    if not rows:
        raise ValueError(f"batch {batch.batch_id} has no trainable tokens")
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
    return Sequences(ids, attention, mask, behaviour, torch.tensor(advantages), torch.tensor(weights))
