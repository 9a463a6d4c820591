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

    @property
    def prompts(self) -> str:
        return f"{self.prefix}prompts"


_DEFAULT = TopicNames()
TASKS = _DEFAULT.tasks
ROLLOUT_EVENTS = _DEFAULT.rollout_events
FEEDBACK = _DEFAULT.feedback
TRAJECTORIES = _DEFAULT.trajectories
BATCHES = _DEFAULT.batches
WEIGHTS = _DEFAULT.weights
TRAIN_STEPS = _DEFAULT.train_steps
DEAD_LETTER = _DEFAULT.dead_letter
PROMPTS = _DEFAULT.prompts


@dataclass(frozen=True)
class Replication:
    """How many brokers keep a copy of each partition (`factor`), and how many copies a write needs before a
    producer with acks=all is told it is written (`min_insync`): with 3 and 2, a write survives the loss of any one
    broker and writes go on while one is down."""

    factor: int = 1
    min_insync: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_insync <= self.factor:
            raise ValueError(f"min.insync.replicas must be between 1 and the replication factor {self.factor}, not {self.min_insync}")

    @classmethod
    def majority(cls, factor: int) -> "Replication":
        """`factor` copies, a write acknowledged once most of them have it (1 of 1, 2 of 3, 3 of 5)."""
        return cls(factor, factor // 2 + 1)

    def topic_configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replicas: int = 1


def topic_specs(partitions: int = 4, names: TopicNames = _DEFAULT, replication: Replication = Replication()) -> list[TopicSpec]:
    """Rollout-keyed topics get `partitions` partitions (the unit of collector scale-out); the rest fewer. Every
    topic is replicated as `replication` says."""
    week = str(7 * 24 * 3600 * 1000)
    specs = [
        (names.tasks, partitions, {}),
        (names.rollout_events, partitions, {"retention.ms": week}),
        (names.feedback, partitions, {"retention.ms": week}),
        (names.trajectories, partitions, {"retention.ms": week}),
        (names.batches, 1, {}),
        # One partition and compaction: the newest weight version per model is what a restarted consumer needs.
        (names.weights, 1, {"cleanup.policy": "compact"}),
        (names.train_steps, 1, {}),
        (names.dead_letter, 1, {"retention.ms": week}),
        # Keyed "<task type>/<version>" and compacted: a gateway that starts reads every prompt version there is.
        (names.prompts, 1, {"cleanup.policy": "compact"}),
    ]
    return [TopicSpec(name, n, configs | replication.topic_configs(), replication.factor) for name, n, configs in specs]
