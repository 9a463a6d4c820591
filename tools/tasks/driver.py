"""Publishes tasks to lw.tasks: N rollouts per task per group, with at most K groups in flight (bounded off-policy).

A group is done when the collector has released all its rollouts (read from lw.trajectories, deduplicated by
rollout) or when its timeout passes; only then is the next group published.

Which training problems a step publishes (`choose`): in turn by default; with a curriculum (curriculum.py), drawn by
the success rates the driver observes in its finished groups.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaConsumer

from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.tools.tasks.batch_fill import FillPolicy, FillReport, batched, more_groups
from lightwire.tools.tasks.curriculum import Curriculum
from lightwire.topics import TopicNames
from lightwire.v1 import events_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskSpec:
    task_id: str
    task_type: str
    input: dict
    reference: dict
    split: str = "train"
    metadata: dict[str, str] = field(default_factory=dict)


def group_tasks(spec: TaskSpec, group_id: str, group_size: int, model_version: int) -> list[events_pb2.Task]:
    return [
        events_pb2.Task(
            task_id=spec.task_id, group_id=group_id, task_type=spec.task_type, input_json=json.dumps(spec.input),
            reference_json=json.dumps(spec.reference), group_size=group_size, index_in_group=i, model_version=model_version,
            split=spec.split, metadata=spec.metadata,
        )
        for i in range(group_size)
    ]


@dataclass
class GroupProgress:
    size: int
    started: float
    rollouts: set[str] = field(default_factory=set)
    rewards: list[float] = field(default_factory=list)
    by_rollout: dict[str, float] = field(default_factory=dict)  # rollout id -> its reward
    task_id: str = ""
    split: str = "train"
    # The weight versions its rollouts were served by (a task's model_version is a floor, not a pin: inference serves
    # whatever is newest).
    versions: set[int] = field(default_factory=set)


T = TypeVar("T")  # a problem: anything with a task_id (a TaskSpec, a task set's Problem)


def in_order(problems: Sequence[T], start: int, k: int) -> list[T]:
    """`k` problems from position `start` on, round the list."""
    return [problems[(start + i) % len(problems)] for i in range(k)]


def in_turn(problems: Sequence[T], k: int, step: int) -> list[T]:
    """Step `step`'s `k` problems without a curriculum: the next k in order, round the list."""
    return in_order(problems, step * k, k)


def choose(problems: Sequence[T], k: int, step: int, curriculum: Curriculum | None = None) -> list[T]:
    """The problems step `step` publishes: in turn without a curriculum, else `k` distinct ones drawn by it."""
    if curriculum is None:
        return in_turn(problems, k, step)
    by_id = {p.task_id: p for p in problems}  # type: ignore[attr-defined]
    curriculum.know({task_id: getattr(p, "kind", "") for task_id, p in by_id.items()})
    return [by_id[task_id] for task_id in curriculum.draw(list(by_id), k)]


class TaskDriver:
    def __init__(self, bootstrap: str, names: TopicNames, source: str = "task-driver", group_timeout_s: float = 600.0,
                 curriculum: Curriculum | None = None):
        self.bootstrap = bootstrap
        self.names = names
        self.source = source
        self.group_timeout_s = group_timeout_s
        self.curriculum = curriculum  # None: problems in turn; else it learns from every finished training group
        self.in_flight: dict[str, GroupProgress] = {}
        self.finished: dict[str, GroupProgress] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._cursor = 0  # next problem in turn for `draw`
        self._producer = EventProducer(bootstrap, source, dead_letter_topic=names.dead_letter)

    async def __aenter__(self) -> "TaskDriver":
        await self._producer.start()
        # Positioned at the end before anything is published, so every release of our groups is seen.
        self._consumer = AIOKafkaConsumer(self.names.trajectories, bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="latest")
        await self._consumer.start()
        while not self._consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        await self._producer.stop()

    async def publish_group(self, spec: TaskSpec, group_size: int, model_version: int, tag: str = "") -> str:
        digest = hashlib.sha256(f"{spec.task_id}|{model_version}|{tag}|{time.time_ns()}".encode()).hexdigest()[:10]
        group_id = f"{spec.task_id}.{digest}"
        tasks = group_tasks(spec, group_id, group_size, model_version)
        await self._producer.send_many(
            self.names.tasks, [(group_id, codec.make_event(self.source, event_id=f"task-{group_id}-{t.index_in_group}", task=t)) for t in tasks]
        )
        self.in_flight[group_id] = GroupProgress(group_size, time.monotonic(), task_id=spec.task_id, split=spec.split)
        return group_id

    def choose(self, problems: Sequence[T], k: int, step: int) -> list[T]:
        """Step `step`'s `k` training problems: in turn, or drawn by the curriculum."""
        return choose(problems, k, step, self.curriculum)

    def draw(self, problems: Sequence[T], k: int) -> list[T]:
        """The next `k` training problems: the next in turn (a cursor that runs on across steps), or drawn by the
        curriculum."""
        if self.curriculum is not None:
            return choose(problems, k, 0, self.curriculum)
        picked = in_order(problems, self._cursor, k)
        self._cursor += k
        return picked

    async def fill(self, next_specs: Callable[[int], list[TaskSpec]], group_size: int, policy: FillPolicy,
                   model_version: int = 0) -> FillReport:
        """Publish groups of `next_specs(n)` until `policy.groups` of them finished with a signal (batch_fill.py),
        replacing each uniform one, at most `policy.max_groups` in all; wait for every group published."""
        report = FillReport(needed=policy.groups)
        mine: set[str] = set()
        while True:
            in_flight = sum(g in self.in_flight for g in mine)
            n = more_groups(report.useful, in_flight, report.published, policy)
            specs = next_specs(n) if n else []
            for spec in specs:
                mine.add(await self.publish_group(spec, group_size, model_version))
                report.published += 1
            if not specs and not in_flight:
                return report
            for group_id in await self.poll(timeout_ms=200):
                if group_id in mine:
                    if batched(self.finished[group_id].rewards, policy):
                        report.useful += 1
                    else:
                        report.uniform += 1

    async def run(self, specs: Iterable[tuple[TaskSpec, int]], max_groups_in_flight: int, model_version: int = 0) -> dict[str, GroupProgress]:
        """Publish (spec, group_size) pairs, keeping at most `max_groups_in_flight` open; wait for all of them.
        Returns every group finished so far, by group id."""
        await self.run_keyed(((i, spec, size) for i, (spec, size) in enumerate(specs)), max_groups_in_flight, model_version)
        return self.finished

    async def run_keyed(self, items: Iterable[tuple[Hashable, TaskSpec, int]], max_groups_in_flight: int,
                        model_version: int = 0) -> dict[Hashable, GroupProgress]:
        """As `run`, for (key, spec, group_size) items; returns each item's finished group by its key."""
        pending = list(items)
        groups: dict[Hashable, str] = {}
        while pending or any(g in self.in_flight for g in groups.values()):
            while pending and sum(g in self.in_flight for g in groups.values()) < max_groups_in_flight:
                key, spec, size = pending.pop(0)
                groups[key] = await self.publish_group(spec, size, model_version)
            await self.poll(timeout_ms=200)
        return {key: self.finished[g] for key, g in groups.items()}

    async def poll(self, timeout_ms: int = 200) -> list[str]:
        """Read released trajectories; returns the groups that finished now (whole, or timed out)."""
        assert self._consumer is not None
        done = []
        for records in (await self._consumer.getmany(timeout_ms=timeout_ms)).values():
            for record in records:
                try:
                    event = codec.decode(record.value).event
                except codec.InvalidRecord:
                    continue
                if event.WhichOneof("payload") != "trajectory":
                    continue
                t = event.trajectory
                progress = self.in_flight.get(t.group_id)
                if progress is None or t.rollout_id in progress.rollouts:
                    continue
                progress.rollouts.add(t.rollout_id)
                progress.rewards.append(t.reward)
                progress.by_rollout[t.rollout_id] = t.reward
                progress.versions.update(v for v in (t.min_model_version, t.max_model_version) if v)
        now = time.monotonic()
        for group_id, progress in list(self.in_flight.items()):
            if len(progress.rollouts) >= progress.size or now - progress.started > self.group_timeout_s:
                self.finished[group_id] = self.in_flight.pop(group_id)
                done.append(group_id)
                self.observe(progress)
        return done

    def observe(self, progress: GroupProgress) -> None:
        """Tell the curriculum how a finished group went: its released rollouts (a timed-out group's missing ones are
        not attempts). Held-out groups never train, so they teach it nothing."""
        if self.curriculum is not None and progress.split == "train" and progress.task_id:
            self.curriculum.observe(progress.task_id, progress.rewards)
