"""Pure logic of GRPO grouping: trajectories of one group wait until the group is whole, whole groups fill batches.

Policy when a group times out (documented in the settings): 'partial' releases it with the members it has when
there are at least `min_group_size`, otherwise drops it; 'drop' always drops it. Failed and timed-out rollouts
count with their reward unless `drop_failed` is set. A batch holds whole groups only.

Dynamic sampling (`uniform_groups`, DAPO's): a group whose members all scored alike carries no GRPO gradient (every
advantage is zero), yet takes a batch slot. 'drop' (the default) leaves it out of batches, so the batch fills with
groups that teach something; 'keep' batches it anyway (the trainer then skips a batch of such groups without an
update); 'drop_unsolved' drops it unless every member reached `solved_reward`, for rejection-sampling fine-tuning,
which imitates every solved rollout: a group solved four times over is four examples of what to keep doing, and
dropping it left the policy only the problems it half-solved to learn from (it unlearned what it already did right).
Either way it is counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lightwire.v1 import collector_pb2, events_pb2

FAILED = (events_pb2.ROLLOUT_STATUS_FAILED, events_pb2.ROLLOUT_STATUS_TIMED_OUT, events_pb2.ROLLOUT_STATUS_CANCELLED)
# Outcomes of a group released without training (the others, complete and timeout_partial, go into batches).
DROPPED = ("timeout_dropped", "dropped_failed", "uniform_dropped")


@dataclass(frozen=True)
class GroupPolicy:
    timeout_ms: int
    on_timeout: str = "partial"
    min_group_size: int = 2
    drop_failed: bool = False
    uniform_groups: str = "drop"
    solved_reward: float = 1.0  # 'drop_unsolved': a uniform group whose members all reached this is batched


def add_member(group: collector_pb2.GroupState, trajectory: events_pb2.Trajectory, now_ms: int) -> bool:
    """Add a member once (by rollout id); returns whether it was new."""
    if group.released or trajectory.rollout_id in group.rollout_ids:
        return False
    if not group.group_id:
        group.group_id = trajectory.group_id
        group.task_id = trajectory.task_id
        group.first_seen_unix_ms = now_ms
    group.group_size = max(group.group_size, trajectory.group_size, 1)
    group.rollout_ids.append(trajectory.rollout_id)
    return True


def decide(group: collector_pb2.GroupState, now_ms: int, policy: GroupPolicy) -> str | None:
    """None while the group should wait; else its outcome: complete or timeout (trained or dropped at release)."""
    if group.released:
        return None
    if len(group.rollout_ids) >= group.group_size:
        return "complete"
    if now_ms - group.first_seen_unix_ms < policy.timeout_ms:
        return None
    return "timeout"


def trainable(members: list[events_pb2.Trajectory], policy: GroupPolicy) -> list[events_pb2.Trajectory]:
    return [t for t in members if not (policy.drop_failed and t.status in FAILED)]


def uniform(members: list[events_pb2.Trajectory]) -> bool:
    """Whether no advantage of the group can be non-zero: every rollout's reward equal, and every transition's
    (credit-assigned) reward equal to it.

    Exact float equality, as the trainer's own test of a zero spread (grpo.group_advantages). The transitions count
    because without the std scaling (Dr. GRPO) a transition's credit is centred on its group's mean reward: a group
    of equal rewards whose credit differs per step (per_step, attributed) still has a gradient there.
    """
    rewards = {t.reward for t in members} | {tr.reward for t in members for tr in t.transitions}
    return len(rewards) <= 1


def dropped_as_uniform(members: list[events_pb2.Trajectory], policy: GroupPolicy) -> bool:
    if policy.uniform_groups == "keep" or not uniform(members):
        return False
    return policy.uniform_groups == "drop" or not all(t.reward >= policy.solved_reward for t in members)


def release(group: collector_pb2.GroupState, outcome: str, members: list[events_pb2.Trajectory], now_ms: int,
            policy: GroupPolicy) -> list[events_pb2.Trajectory] | None:
    """Mark the group released; the members to train on (by rollout id), or None when it is dropped (outcome says which)."""
    keep = sorted(trainable(members, policy), key=lambda t: t.rollout_id)
    group.released = True
    group.released_unix_ms = now_ms
    too_few = len(keep) < min(policy.min_group_size, group.group_size)
    if outcome == "timeout":
        outcome = "timeout_partial" if policy.on_timeout == "partial" and not too_few else "timeout_dropped"
    elif too_few:
        outcome = "dropped_failed"
    if outcome not in DROPPED and dropped_as_uniform(keep, policy):
        outcome = "uniform_dropped"
    group.outcome = outcome
    if outcome in DROPPED:
        return None
    return keep


def counted(outcome: str) -> str:
    """A released group's outcome as /healthz and lw_collector_groups_total count it: batched, or why it was dropped."""
    return outcome if outcome in DROPPED else "batched"


def make_batch(groups: list[events_pb2.TrajectoryGroup]) -> events_pb2.TrainingBatch:
    return seal_batch(events_pb2.TrainingBatch(groups=groups))


def seal_batch(batch: events_pb2.TrainingBatch) -> events_pb2.TrainingBatch:
    """Set a batch's id and oldest model version from its groups."""
    # The id derives from its groups, so re-building the same batch after a restart deduplicates downstream.
    batch.batch_id = "b-" + hashlib.sha256("|".join(g.group_id for g in batch.groups).encode()).hexdigest()[:20]
    versions = [t.min_model_version for g in batch.groups for t in g.trajectories if t.min_model_version]
    batch.min_model_version = min(versions, default=0)
    return batch
