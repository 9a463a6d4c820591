"""Filling a training batch with groups that teach something (dynamic sampling on the driver's side).

With LW_COLLECTOR_UNIFORM_GROUPS=drop the collector leaves a group whose rollouts all scored alike out of batches: it
carries no GRPO gradient. A driver that publishes exactly one batch's worth of groups per step then waits on a batch
that never fills. So the driver judges every finished group the same way and publishes another in place of each
uniform one, until the batch holds enough groups with a signal, or a cap on the groups spent for one batch is reached
(a policy that solves every problem, or none, would otherwise draw forever).

The driver's rule reads the rollouts' rewards only; the collector's also reads the transitions' credit-assigned
rewards, so a group the driver calls uniform may still be batched (per-step credit), never the other way round: the
driver never waits on a group the collector dropped for uniformity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FillPolicy:
    groups: int  # groups with a signal one batch needs (LW_COLLECTOR_BATCH_GROUPS)
    max_groups: int  # groups published for one batch at most, uniform ones included
    # LW_COLLECTOR_UNIFORM_GROUPS=drop_unsolved (rft): the collector batches a uniform group whose rollouts all
    # reached this reward (LW_COLLECTOR_SOLVED_REWARD); None: it drops every uniform group.
    solved_reward: float | None = None

    def __post_init__(self) -> None:
        if self.groups < 1 or self.max_groups < self.groups:
            raise ValueError(f"a batch needs at least one group and the cap at least that many, not {self.groups} and {self.max_groups}")


def carries_signal(rewards: Sequence[float]) -> bool:
    """Whether a finished group's rollouts scored differently (exact equality, as the collector and trainer test it)."""
    return len(set(rewards)) > 1


def batched(rewards: Sequence[float], policy: FillPolicy) -> bool:
    """Whether the collector batches a finished group: it carries a signal, or (drop_unsolved) every rollout solved it."""
    if carries_signal(rewards):
        return True
    return policy.solved_reward is not None and bool(rewards) and min(rewards) >= policy.solved_reward


def more_groups(useful: int, in_flight: int, published: int, policy: FillPolicy) -> int:
    """How many groups to publish now: enough that the batch fills if every group in flight turns out useful (so it
    never overfills), and never past the cap."""
    return max(0, min(policy.groups - useful - in_flight, policy.max_groups - published))


@dataclass
class FillReport:
    needed: int
    published: int = 0
    useful: int = 0
    uniform: int = 0

    @property
    def full(self) -> bool:
        return self.useful >= self.needed
