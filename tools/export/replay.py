"""Offline training from an export: `lightwire train-offline` turns a `transitions` export (JSONL or Parquet) back
into whole groups and publishes them on lw.batches, where the trainer trains them as it trains live traffic, under
whichever LW_TRAINER_ALGORITHM it runs, publishes each new version and inference reloads it. No rollout runs.

The rows carry the exact token ids, masks and behaviour logprobs the export took from the trajectories, so the
rebuilt transitions are the recorded ones, never re-tokenized. A replayed batch declares no oldest version (0): the
data is off-policy by construction, and the trainer's staleness rule would otherwise drop traffic older than its
window; GRPO's importance ratio still uses the recorded behaviour logprobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from lightwire.v1 import events_pb2 as pb

REQUIRED = ("rollout_id", "group_id", "task_id", "task_type", "split", "reward", "min_model_version", "max_model_version",
            "call_id", "seq", "agent_name", "model_version", "transition_reward", "prompt_input_ids", "completion_input_ids",
            "response_mask", "completion_logprobs")


def read_rows(path: Path) -> list[dict]:
    """Every row of a JSONL or Parquet export."""
    if not path.exists():
        raise FileNotFoundError(f"no export at {path}")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            return [orjson.loads(line) for line in f if line.strip()]
    raise ValueError(f"an export is a .jsonl or .parquet file, not {path.name}")


def trajectories_from_rows(rows: Iterable[dict]) -> list[pb.Trajectory]:
    """One trajectory per rollout id, its transitions in seq order; a row repeated (an export concatenated twice) is
    kept once, by call id."""
    by_rollout: dict[str, pb.Trajectory] = {}
    calls: dict[str, dict[str, dict]] = {}
    for i, row in enumerate(rows):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            hint = " (a pairs export? train-offline reads a transitions export)" if "chosen_input_ids" in row else ""
            raise ValueError(f"row {i} lacks {', '.join(missing)}{hint}")
        n = len(row["completion_input_ids"])
        if len(row["response_mask"]) != n or len(row["completion_logprobs"]) != n:
            raise ValueError(f"row {i} ({row['call_id']}): completion_input_ids, response_mask and completion_logprobs "
                             f"differ in length ({n}, {len(row['response_mask'])}, {len(row['completion_logprobs'])})")
        if row["rollout_id"] not in by_rollout:
            by_rollout[row["rollout_id"]] = pb.Trajectory(
                rollout_id=row["rollout_id"], task_id=row["task_id"], group_id=row["group_id"], task_type=row["task_type"],
                split=row["split"], reward=row["reward"], min_model_version=row["min_model_version"],
                max_model_version=row["max_model_version"])
        calls.setdefault(row["rollout_id"], {}).setdefault(row["call_id"], row)
    for rollout_id, t in by_rollout.items():
        for row in sorted(calls[rollout_id].values(), key=lambda r: r["seq"]):
            t.transitions.add(call_id=row["call_id"], seq=row["seq"], prompt_token_ids=row["prompt_input_ids"],
                              response_token_ids=row["completion_input_ids"], response_mask=row["response_mask"],
                              response_logprobs=row["completion_logprobs"], reward=row["transition_reward"],
                              model_version=row["model_version"], agent_name=row["agent_name"])
        t.num_calls = len(t.transitions)
    return list(by_rollout.values())


@dataclass(frozen=True)
class ReplayPlan:
    batches: list[pb.TrainingBatch]
    groups: int
    trajectories: int


def plan_batches(trajectories: list[pb.Trajectory], groups_per_batch: int, epochs: int = 1) -> ReplayPlan:
    """Whole groups, in the order they first appear, `groups_per_batch` to a batch, `epochs` passes. A batch's id is
    a digest of its groups and its epoch, so replaying the same export twice sends the same ids (the trainer's
    train-step event ids and the analytics deduplicate by them)."""
    if groups_per_batch < 1 or epochs < 1:
        raise ValueError(f"groups per batch and epochs are at least 1, not {groups_per_batch} and {epochs}")
    groups: dict[str, pb.TrajectoryGroup] = {}
    for t in trajectories:
        key = t.group_id or t.rollout_id
        group = groups.get(key)
        if group is None:
            group = groups[key] = pb.TrajectoryGroup(group_id=key, task_id=t.task_id)
        group.trajectories.append(t)
    for group in groups.values():
        for t in group.trajectories:
            t.group_size = len(group.trajectories)
    ordered = list(groups.values())
    batches = []
    for epoch in range(epochs):
        for start in range(0, len(ordered), groups_per_batch):
            chunk = ordered[start:start + groups_per_batch]
            digest = hashlib.sha256("\n".join([str(epoch), *(g.group_id for g in chunk)]).encode()).hexdigest()[:16]
            batches.append(pb.TrainingBatch(batch_id=f"offline-{digest}", groups=chunk, min_model_version=0))
    return ReplayPlan(batches, len(ordered), len(trajectories))


async def publish(bootstrap: str, topic: str, plan: ReplayPlan, progress: Callable[[int], None] | None = None) -> None:
    from lightwire.runtime import codec
    from lightwire.runtime.kafka import EventProducer

    async with EventProducer(bootstrap, "train-offline") as producer:
        for i, batch in enumerate(plan.batches, 1):
            # Keyed by the first group, as the collector keys its batches.
            await producer.send(topic, batch.groups[0].group_id, codec.make_event("train-offline", event_id=batch.batch_id, batch=batch))
            if progress:
                progress(i)
