"""From a TrainingBatch to training sequences: exact captured token ids, response masks, behaviour logprobs,
group-normalised advantages and per-rollout weights. Nothing is re-tokenized."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

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
    # Where each row comes from, for the algorithms that select or pair whole rollouts (rft, dpo, kto); collate sets
    # them, hand-built sequences may leave them out. A rollout of several transitions has several rows.
    rollout_rewards: torch.Tensor | None = None  # [N] the reward of the row's rollout
    group_index: torch.Tensor | None = None  # [N] the row's group in the batch
    rollout_index: torch.Tensor | None = None  # [N] the row's rollout in the batch

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def _rows(self, pick) -> "Sequences":
        """Every [N, ...] tensor (those present) passed through `pick`."""
        return Sequences(**{f.name: None if getattr(self, f.name) is None else pick(getattr(self, f.name)) for f in fields(self)})

    def take(self, indices: list[int]) -> "Sequences":
        index = torch.tensor(indices, dtype=torch.long)
        return self._rows(lambda t: t.index_select(0, index))

    def slice(self, start: int, stop: int) -> "Sequences":
        return self._rows(lambda t: t[start:stop])

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
        return replace(self, input_ids=self.input_ids[:, :width], attention_mask=self.attention_mask[:, :width],
                       response_mask=self.response_mask[:, : width - 1], behaviour_logprobs=self.behaviour_logprobs[:, : width - 1])

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
    row_reward, row_rollout = [], []
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
                row_reward.append(trajectory.reward)
                row_rollout.append(len(rollout_rewards) - 1)
                # Per-rollout averaging: a rollout's transitions share one rollout's weight.
                weights.append(batch_weight / n)
    if not rows:
        raise ValueError(f"batch {batch.batch_id} has no trainable tokens")
    advantages = group_advantages(torch.tensor(rollout_rewards), torch.tensor(rollout_group), scale_by_std,
                                  scores=torch.tensor(scores), score_group=torch.tensor(row_group))
    seqs = _pad(rows, pad_id, advantages, torch.tensor(weights))
    return replace(seqs, rollout_rewards=torch.tensor(row_reward, dtype=torch.float32), group_index=torch.tensor(row_group),
                   rollout_index=torch.tensor(row_rollout))


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
