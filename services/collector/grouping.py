"""Pure logic of GRPO grouping: trajectories of one group wait until the group is whole, whole groups fill batches.

Policy when a group times out (documented in the settings): 'partial' releases it with the members it has when
there are at least `min_group_size`, otherwise drops it; 'drop' always drops it. Failed and timed-out rollouts
count with their reward unless `drop_failed` is set. A batch holds whole groups only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lightwire.v1 import collector_pb2, events_pb2

FAILED = (events_pb2.ROLLOUT_STATUS_FAILED, events_pb2.ROLLOUT_STATUS_TIMED_OUT, events_pb2.ROLLOUT_STATUS_CANCELLED)


@dataclass(frozen=True)
class GroupPolicy:
    timeout_ms: int
    on_timeout: str = "partial"
    min_group_size: int = 2
    drop_failed: bool = False


def add_member(group: collector_pb2.GroupState, trajectory: events_pb2.Trajectory, now_ms: int) -> bool:
    """Add a trajectory once (by rollout id); returns whether it was new."""
    if group.released or any(t.rollout_id == trajectory.rollout_id for t in group.trajectories):
        return False
    if not group.group_id:
        group.group_id = trajectory.group_id
        group.task_id = trajectory.task_id
        group.first_seen_unix_ms = now_ms
    group.group_size = max(group.group_size, trajectory.group_size, 1)
    group.trajectories.append(trajectory)
    return True


def decide(group: collector_pb2.GroupState, now_ms: int, policy: GroupPolicy) -> str | None:
    """None while the group should wait; else its outcome: complete, timeout_partial or timeout_dropped."""
    if group.released:
        return None
    if len(group.trajectories) >= group.group_size:
        return "complete"
    if now_ms - group.first_seen_unix_ms < policy.timeout_ms:
        return None
    if policy.on_timeout == "partial" and len(trainable(group, policy)) >= policy.min_group_size:
        return "timeout_partial"
    return "timeout_dropped"


def trainable(group: collector_pb2.GroupState, policy: GroupPolicy) -> list[events_pb2.Trajectory]:
    return [t for t in group.trajectories if not (policy.drop_failed and t.status in FAILED)]


def release(group: collector_pb2.GroupState, outcome: str, now_ms: int, policy: GroupPolicy) -> events_pb2.TrajectoryGroup | None:
    """Mark the group released; the whole group to batch, or None when it is dropped."""
    members = sorted(trainable(group, policy), key=lambda t: t.rollout_id)
    group.released = True
    group.released_unix_ms = now_ms
    group.outcome = outcome
    del group.trajectories[:]
    if outcome == "timeout_dropped" or len(members) < min(policy.min_group_size, group.group_size):
        return None
    return events_pb2.TrajectoryGroup(group_id=group.group_id, task_id=group.task_id, trajectories=members)


def fill_batch(buffer: collector_pb2.BatchBuffer, group: events_pb2.TrajectoryGroup, batch_groups: int, now_ms: int) -> events_pb2.TrainingBatch | None:
    """Add a whole group; when `batch_groups` are waiting, empty the buffer into one training batch."""
    if any(g.group_id == group.group_id for g in buffer.groups):
        return None
    if not buffer.groups:
        buffer.first_group_unix_ms = now_ms
    buffer.groups.append(group)
    if len(buffer.groups) < batch_groups:
        return None
    groups = list(buffer.groups)
    del buffer.groups[:]
    return make_batch(groups)


def make_batch(groups: list[events_pb2.TrajectoryGroup]) -> events_pb2.TrainingBatch:
    # The id derives from its groups, so re-building the same batch after a restart deduplicates downstream.
    batch_id = "b-" + hashlib.sha256("|".join(g.group_id for g in groups).encode()).hexdigest()[:20]
    versions = [t.min_model_version for g in groups for t in g.trajectories if t.min_model_version]
    return events_pb2.TrainingBatch(batch_id=batch_id, groups=groups, min_model_version=min(versions, default=0))
