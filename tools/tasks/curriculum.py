"""A curriculum for the task driver: draw the problems the policy solves about half the time more often.

A GRPO group teaches only when its rollouts score differently. A problem solved with probability p gives a group of
equal outcomes most of the time when p is near 0 or 1; p(1 - p), the variance of one outcome, is largest at p = 1/2.
So each problem is drawn with weight max(floor, p(1 - p)), where p is its posterior success rate:

    p = (successes + 0.5) / (attempts + 1)

the posterior mean under a prior rate of 0.5 counted as one pseudo-attempt, so one real attempt already moves p half
way, and p never reaches 0 or 1. The floor keeps problems that look always or never solved in the draw (at
floor / 0.25 of the best weight, 40% by default): the policy changes, and an estimate from a few attempts is rough.

A run of a few steps publishes tens of groups from hundreds of problems, so most problems are drawn once if at all,
and a rate per problem alone would leave the draw uniform. Problems of one kind (the template they were made from,
`Problem.kind`) are about as hard as each other, so a problem whose kind is known takes its prior rate from its kind's
pooled outcomes instead of 0.5:

    p = (successes + q) / (attempts + 1),   q = (kind's successes + 0.5) / (kind's attempts + 1)

An unseen problem of an unseen kind still gets p = 0.5, the largest weight (0.25), so every kind is tried early.

Pure and deterministic: the same seed and the same observations give the same draws.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

PRIOR_RATE = 0.5
PRIOR_ATTEMPTS = 1.0


@dataclass
class Curriculum:
    floor: float = 0.1
    seed: int = 0
    success_at: float = 0.5  # a rollout whose reward is at least this counts as a success (`observe`)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # task id -> (successes, attempts)
    kinds: dict[str, str] = field(default_factory=dict)  # task id -> its kind, for those that have one
    kind_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (successes, attempts)

    def __post_init__(self) -> None:
        if not 0.0 <= self.floor <= 0.25:
            raise ValueError(f"the floor must lie in [0, 0.25] (p(1 - p) is at most 0.25), got {self.floor}")
        self._rng = random.Random(self.seed)

    def know(self, kinds: Mapping[str, str]) -> None:
        """Learn the kinds of tasks (task id -> kind; an empty kind is none): their outcomes are pooled by kind from
        then on."""
        self.kinds.update({task_id: kind for task_id, kind in kinds.items() if kind})

    def record(self, task_id: str, successes: int, attempts: int) -> None:
        """Add observed outcomes of a task (and of its kind, when known)."""
        if not 0 <= successes <= attempts:
            raise ValueError(f"{successes} successes in {attempts} attempts")
        s, a = self.counts.get(task_id, (0, 0))
        self.counts[task_id] = (s + successes, a + attempts)
        if kind := self.kinds.get(task_id):
            s, a = self.kind_counts.get(kind, (0, 0))
            self.kind_counts[kind] = (s + successes, a + attempts)

    def observe(self, task_id: str, rewards: Iterable[float]) -> None:
        """Add a group's rollouts by their rewards: a success is a reward of at least `success_at`."""
        rewards = list(rewards)
        self.record(task_id, sum(r >= self.success_at for r in rewards), len(rewards))

    def kind_rate(self, kind: str) -> float:
        s, a = self.kind_counts.get(kind, (0, 0))
        return (s + PRIOR_RATE * PRIOR_ATTEMPTS) / (a + PRIOR_ATTEMPTS)

    def success_rate(self, task_id: str) -> float:
        kind = self.kinds.get(task_id)
        prior = self.kind_rate(kind) if kind else PRIOR_RATE
        s, a = self.counts.get(task_id, (0, 0))
        return (s + prior * PRIOR_ATTEMPTS) / (a + PRIOR_ATTEMPTS)

    def weight(self, task_id: str) -> float:
        p = self.success_rate(task_id)
        return max(self.floor, p * (1.0 - p))

    def draw(self, task_ids: Sequence[str], k: int) -> list[str]:
        """`k` distinct task ids (all of them when there are fewer), each draw in proportion to its weight among those
        not drawn yet: a step's groups are different problems."""
        left = list(task_ids)
        weights = [self.weight(t) for t in left]
        drawn = []
        while left and len(drawn) < k:
            i = self._pick(weights)
            drawn.append(left.pop(i))
            weights.pop(i)
        return drawn

    def _pick(self, weights: list[float]) -> int:
        x = self._rng.random() * sum(weights)  # every weight > 0: p lies strictly between 0 and 1
        for i, w in enumerate(weights):
            x -= w
            if x < 0:
                return i
        return len(weights) - 1  # rounding left x at 0 past the last weight
