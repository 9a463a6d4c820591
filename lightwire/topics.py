"""The Kafka topics of Lightwire: names, keys and partition counts (see ARCHITECTURE, Topics).

Every name carries a prefix (`LW_TOPIC_PREFIX`, default "lw."), so several deployments, or tests, can share one
broker without seeing each other's records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PREFIX = "lw."


@dataclass(frozen=True)
class TopicNames:
    prefix: str = DEFAULT_PREFIX

    @property
    def tasks(self) -> str:
        return f"{self.prefix}tasks"

    @property
    def rollout_events(self) -> str:
        return f"{self.prefix}rollout-events"

    @property
    def feedback(self) -> str:
        return f"{self.prefix}feedback"

    @property
    def trajectories(self) -> str:
        return f"{self.prefix}trajectories"

    @property
    def batches(self) -> str:
        return f"{self.prefix}batches"

    @property
    def weights(self) -> str:
        return f"{self.prefix}weights"

    @property
    def train_steps(self) -> str:
        return f"{self.prefix}train-steps"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}dead-letter"


_DEFAULT = TopicNames()
TASKS = _DEFAULT.tasks
ROLLOUT_EVENTS = _DEFAULT.rollout_events
FEEDBACK = _DEFAULT.feedback
TRAJECTORIES = _DEFAULT.trajectories
BATCHES = _DEFAULT.batches
WEIGHTS = _DEFAULT.weights
TRAIN_STEPS = _DEFAULT.train_steps
DEAD_LETTER = _DEFAULT.dead_letter


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(partitions: int = 4, names: TopicNames = _DEFAULT) -> list[TopicSpec]:
    """Rollout-keyed topics get `partitions` partitions (the unit of collector scale-out); the rest fewer."""
    week = str(7 * 24 * 3600 * 1000)
    return [
        TopicSpec(names.tasks, partitions),
        TopicSpec(names.rollout_events, partitions, {"retention.ms": week}),
        TopicSpec(names.feedback, partitions, {"retention.ms": week}),
        TopicSpec(names.trajectories, partitions, {"retention.ms": week}),
        TopicSpec(names.batches, 1),
        # One partition and compaction: the newest weight version per model is what a restarted consumer needs.
        TopicSpec(names.weights, 1, {"cleanup.policy": "compact"}),
        TopicSpec(names.train_steps, 1),
        TopicSpec(names.dead_letter, 1, {"retention.ms": week}),
    ]
