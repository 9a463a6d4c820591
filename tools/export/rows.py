"""What one exported row is, and which trajectories make it: pure functions over Trajectory messages.

Two kinds of rows, both pre-tokenized with the exact token ids the model saw and produced (never re-tokenized):

- `transitions`: one row per trained transition (an LLM call, or several merged): `prompt_input_ids`,
  `completion_input_ids` with `response_mask` over them (1 on model tokens, 0 on tool output spliced into a merged
  call) and `completion_logprobs`, the rollout's `reward` and a KTO `label`; `input_ids` is prompt and completion
  together with `completion_mask` over it (0 on the prompt), as TRL's SFTTrainer takes a tokenized dataset.
- `pairs`: per GRPO group, its best rollout against its worst (ties skipped), on their first call, whose prompt the
  rollouts of a group share: `prompt_input_ids`, `chosen_input_ids`, `rejected_input_ids`, as TRL's DPOTrainer takes
  them. A multi-call rollout is judged as a whole but paired on its first decision; the trainer's own `dpo` uses
  every call.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from lightwire.v1 import events_pb2 as pb

KINDS = ("transitions", "pairs")


@dataclass(frozen=True)
class ExportFilter:
    """Which trajectories go out; empty fields let everything through."""

    split: str = ""
    task_type: str = ""
    agent: str = ""
    min_reward: float = -math.inf
    max_reward: float = math.inf
    min_version: int = 0
    max_version: int | None = None

    def __post_init__(self) -> None:
        if self.min_reward > self.max_reward:
            raise ValueError(f"the reward range is empty: min {self.min_reward} > max {self.max_reward}")
        if self.max_version is not None and self.min_version > self.max_version:
            raise ValueError(f"the version range is empty: min {self.min_version} > max {self.max_version}")

    def keeps(self, t: pb.Trajectory) -> bool:
        if self.split and t.split != self.split:
            return False
        if self.task_type and t.task_type != self.task_type:
            return False
        if self.agent and all(x.agent_name != self.agent for x in t.transitions):
            return False
        if not self.min_reward <= t.reward <= self.max_reward:
            return False
        # A rollout whose calls straddle versions counts as every version it touched.
        if t.max_model_version < self.min_version:
            return False
        return self.max_version is None or t.min_model_version <= self.max_version


def _meta(t: pb.Trajectory) -> dict:
    return {"rollout_id": t.rollout_id, "task_id": t.task_id, "group_id": t.group_id, "task_type": t.task_type,
            "split": t.split, "reward": t.reward, "min_model_version": t.min_model_version,
            "max_model_version": t.max_model_version}


def transition_rows(t: pb.Trajectory, *, label_threshold: float, agent: str = "") -> list[dict]:
    rows = []
    for x in t.transitions:
        if agent and x.agent_name != agent:
            continue
        prompt, completion = list(x.prompt_token_ids), list(x.response_token_ids)
        rows.append({
            **_meta(t), "call_id": x.call_id, "seq": x.seq, "agent_name": x.agent_name, "model_version": x.model_version,
            "transition_reward": x.reward, "label": t.reward >= label_threshold,
            "prompt_input_ids": prompt, "completion_input_ids": completion, "response_mask": list(x.response_mask),
            "completion_logprobs": list(x.response_logprobs),
            "input_ids": prompt + completion, "completion_mask": [0] * len(prompt) + list(x.response_mask),
        })
    return rows


def pair_rows(trajectories: Iterable[pb.Trajectory]) -> tuple[list[dict], int]:
    """Best against worst in each group (first seen wins a tie for best or worst); returns the rows and how many
    groups gave no pair (one rollout, all rewards equal, or no first call)."""
    groups: dict[str, list[pb.Trajectory]] = {}
    for t in trajectories:
        if t.transitions:
            groups.setdefault(t.group_id or t.rollout_id, []).append(t)
    rows, skipped = [], 0
    for group_id, members in groups.items():
        best = max(members, key=lambda t: t.reward)
        worst = min(members, key=lambda t: t.reward)
        if best.reward == worst.reward:
            skipped += 1
            continue
        chosen, rejected = best.transitions[0], worst.transitions[0]
        rows.append({
            "group_id": group_id, "task_id": best.task_id, "task_type": best.task_type, "split": best.split,
            "chosen_rollout_id": best.rollout_id, "rejected_rollout_id": worst.rollout_id,
            "chosen_reward": best.reward, "rejected_reward": worst.reward,
            "chosen_model_version": chosen.model_version, "rejected_model_version": rejected.model_version,
            "prompt_input_ids": list(chosen.prompt_token_ids),
            "chosen_input_ids": list(chosen.response_token_ids), "rejected_input_ids": list(rejected.response_token_ids),
            # The rejected call's own prompt, for the rare group whose first prompts differ (a prompt version changed).
            "rejected_prompt_input_ids": list(rejected.prompt_token_ids),
        })
    return rows, skipped


def add_text(rows: list[dict], decode) -> None:
    """The text fields TRL's trainers read when they tokenize themselves (and verl's SFT `prompt_key`/`response_key`)."""
    for row in rows:
        if "completion_input_ids" in row:
            row["prompt"], row["completion"] = decode(row["prompt_input_ids"]), decode(row["completion_input_ids"])
        else:
            row["prompt"] = decode(row["prompt_input_ids"])
            row["chosen"], row["rejected"] = decode(row["chosen_input_ids"]), decode(row["rejected_input_ids"])
