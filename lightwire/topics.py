"""The Kafka topics of Lightwire: names, keys and partition counts (see ARCHITECTURE, Topics)."""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = "lw.tasks"
ROLLOUT_EVENTS = "lw.rollout-events"
FEEDBACK = "lw.feedback"
TRAJECTORIES = "lw.trajectories"
BATCHES = "lw.batches"
WEIGHTS = "lw.weights"
TRAIN_STEPS = "lw.train-steps"
DEAD_LETTER = "lw.dead-letter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_specs(partitions: int = 4) -> list[TopicSpec]:
    """Rollout-keyed topics get `partitions` partitions (the unit of collector scale-out); the rest fewer."""
    week = str(7 * 24 * 3600 * 1000)
    return [
        TopicSpec(TASKS, partitions),
        TopicSpec(ROLLOUT_EVENTS, partitions, {"retention.ms": week}),
        TopicSpec(FEEDBACK, partitions, {"retention.ms": week}),
        TopicSpec(TRAJECTORIES, partitions, {"retention.ms": week}),
        TopicSpec(BATCHES, 1),
        # One partition and compaction: the newest weight version per model is what a restarted consumer needs.
        TopicSpec(WEIGHTS, 1, {"cleanup.policy": "compact"}),
        TopicSpec(TRAIN_STEPS, 1),
        TopicSpec(DEAD_LETTER, 1, {"retention.ms": week}),
    ]
