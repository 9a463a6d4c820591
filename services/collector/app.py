"""The collector's Faust application: agents over the rollout, feedback, trainer and group topics, a timer, web views.

This module wires the parts together; each job lives in its own module: app construction (faust_app.py), metrics
(metrics.py), decoding and dead letters (decoding.py), retried writes (write_retries.py), the rollout pipeline
(rollout_pipeline.py) and the rollout table's direct changelog writes (changelog_writes.py).

Offsets: agents consume with `noack_take` and acknowledge a micro-batch themselves, after its analytics rows are
inserted and its records acknowledged by the broker; a failing sink is retried and holds the stream, and an agent
that crashes never acknowledges its batch (plain `take` would, on the way out). Faust flushes table changelogs
before it commits offsets. Concurrency stays 1 per agent (faust-streaming #606).

Rollout events, the hot path, arrive by batch delivery (batch_delivery.py), the only way they arrive, in a task that
pipelines: it assembles micro-batch N+1 while N is being written, reading N's not yet applied states through
`PendingStates`; writes, state writes and acknowledgements still happen batch by batch, in order, each after its own
sinks succeeded. Group-member records (one per released rollout) arrive by batch delivery as well, into a task.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from lightwire.services.collector.analytics_rows import add_event_rows
from lightwire.services.collector.analytics_writer import AnalyticsWriter
from lightwire.services.collector.changelog_writes import ChangelogWriter
from lightwire.services.collector.decoding import Decoder
from lightwire.services.collector.faust_app import build_app, quiet_kafka_client_logs
from lightwire.services.collector.group_processor import GroupProcessor
from lightwire.services.collector.grouping import GroupPolicy
from lightwire.services.collector.metrics import CollectorMetrics
from lightwire.services.collector.outputs import Outputs, PendingStates, apply_state_writes
from lightwire.services.collector.rollout_pipeline import RolloutPipeline
from lightwire.services.collector.rollout_processor import Finalize, RolloutProcessor, Timing
from lightwire.services.collector.rollout_state import feedback_rollout_id
from lightwire.services.collector.settings import CollectorSettings
from lightwire.services.collector.write_retries import OutputWriter


async def acked_batches(stream, batch_max: int, within: float):
    """Micro-batches, each acknowledged only when the loop body that got it finished (its outputs written).

    A body that raises closes this generator at its `yield`, so that batch is never acknowledged and never
    committed: a restart replays it.
    """
    manual = stream.noack()
    async for events in manual.noack_take(batch_max, within=within):
        yield events
        for event in events:
            await manual.ack(event)


async def bypassed(stream, topic: str) -> None:
    """The body of an agent whose topic batch delivery takes: a record reaching it would mean batch delivery let one
    through (a faust-streaming change), and skipping it would lose it, so the worker stops instead."""
    async for event in stream.noack():
        raise RuntimeError(f"a {topic} record reached its Faust agent past batch delivery (offset {event.message.offset}); "
                           "re-check services/collector/batch_delivery.py against the installed faust-streaming")


def now_ms() -> int:
    return int(time.time() * 1000)


class Collector:
    def __init__(self, settings: CollectorSettings, finalize: Finalize, writer: AnalyticsWriter, partitions: int):
        self.settings = settings
        self.writer = writer
        self.names = settings.topic_names()
        self.partitions = partitions
        self.metrics = CollectorMetrics(CollectorRegistry())
        self.source = settings.instance_id or f"collector-{settings.app_id()}"
        self.app = build_app(settings, settings.app_id(), partitions)
        self._build_topics(settings.app_id())
        self.outputs = OutputWriter(settings, writer, self.names, self.source, self.metrics)
        table_types = {"key_type": bytes, "value_type": bytes, "extra_topic_configs": settings.replication().topic_configs()}
        self.rollout_table = self.app.Table("rollouts", partitions=partitions, use_partitioner=True, **table_types)
        self.group_table = self.app.Table("groups", partitions=1, use_partitioner=True, **table_types)
        # Assembly reads through the states of micro-batches still being written (pipelining, see rollout_batches).
        self.pending_rollouts = PendingStates(self.rollout_table)
        self._build_processors(settings, finalize)
        self.changelog = ChangelogWriter(self.app, self.rollout_table)
        self.pipeline = RolloutPipeline(self.app, self.pending_rollouts, self._assemble_rollouts,
                                        self.write, self.changelog.apply)
        # Agents and the timer interleave at awaits; each group step (decide, write, apply state) runs alone.
        self._group_lock: asyncio.Lock | None = None
        self._wire()

    def _build_topics(self, app_id: str) -> None:
        # Topics do not derive their codec from the type (tables do): without "raw" Faust would try JSON.
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.rollout_topic = self.app.topic(self.names.rollout_events, **raw)
        self.feedback_topic = self.app.topic(self.names.feedback, **raw)
        self.trainer_topic = self.app.topic(self.names.train_steps, self.names.weights, **raw)
        self.groups_topic = self.app.topic(f"{app_id}-groups", partitions=1, internal=True,
                                           config=self.settings.replication().topic_configs(), **raw)
        self.decoder = Decoder(self.names, self.groups_topic.get_topic_name())
        # The group-member topic carries one record per rollout too: past Faust's per-record path as well.
        self.app.batch_topics = frozenset({self.names.rollout_events, self.groups_topic.get_topic_name()})

    def _build_processors(self, settings: CollectorSettings, finalize: Finalize) -> None:
        self.rollouts = RolloutProcessor(
            self.pending_rollouts, finalize, self.names, self.groups_topic.get_topic_name(),
            Timing(
                grace_ms=int(settings.collector_feedback_grace_s * 1000),
                timeout_ms=int(settings.collector_rollout_timeout_s * 1000),
                retention_ms=int(settings.collector_released_retention_s * 1000),
            ),
            self.source,
        )
        self.groups = GroupProcessor(
            self.group_table,
            GroupPolicy(
                timeout_ms=int(settings.collector_group_timeout_s * 1000),
                on_timeout=settings.collector_group_timeout_policy,
                min_group_size=settings.collector_min_group_size,
                drop_failed=settings.collector_drop_failed,
                uniform_groups=settings.collector_uniform_groups,
                solved_reward=settings.collector_solved_reward,
            ),
            settings.collector_batch_groups, self.names.batches, self.source,
            retention_ms=int(settings.collector_released_retention_s * 1000),
        )

    # -- output -----------------------------------------------------------------------------------------------

    async def write(self, out: Outputs) -> None:
        await self.outputs.write(out)

    def rollout_lock(self) -> asyncio.Lock:
        return self.pipeline.lock()

    def group_lock(self) -> asyncio.Lock:
        self._group_lock = self._group_lock or asyncio.Lock()
        return self._group_lock

    def _decode(self, messages, out: Outputs):
        return self.decoder.decode(messages, out)

    # -- agents ---------------------------------------------------------------------------------------------

    def _wire(self) -> None:
        # Registration order is kept as it always was: signal, rollout agent and task, feedback, trainer,
        # groups agent and task, timer.
        @self.app.on_before_shutdown.connect
        async def finish_writes(app, **kwargs) -> None:
            await self.outputs.finish()

        batch_max, within = self.settings.collector_batch_max, self.settings.collector_batch_within_s
        self._wire_rollouts(batch_max, within)
        self._wire_feedback_and_trainer(batch_max, within)
        self._wire_groups(batch_max, within)
        self._wire_timer()

    def _wire_rollouts(self, batch_max: int, within: float) -> None:
        app = self.app

        # This agent receives nothing (batch delivery takes the topic's records): it is there so the topic is
        # subscribed, co-partitioned with the table and assigned as any agent's topic is.
        @app.agent(self.rollout_topic, name="rollout-events", concurrency=1)
        async def rollout_events(stream):
            await bypassed(stream, self.names.rollout_events)

        @app.task
        async def rollout_batches():
            # Pipelined (rollout_pipeline.py): offsets still follow the sinks, batch by batch.
            quiet_kafka_client_logs()
            await app.serve_batches(self.names.rollout_events, self.pipeline.submit, batch_max, within)

    def _wire_feedback_and_trainer(self, batch_max: int, within: float) -> None:
        app = self.app

        @app.agent(self.feedback_topic, name="feedback", concurrency=1)
        async def feedback(stream):
            # Feedback is keyed however its producer chose: re-key it by rollout onto the rollout topic, so it is
            # applied in order with the rollout's other events, by the instance that owns the rollout.
            async for events in acked_batches(stream, batch_max, within):
                out = Outputs()
                for message, event in self._decode([e.message for e in events], out):
                    rollout_id = feedback_rollout_id(event.feedback)
                    if not rollout_id:
                        out.dead_letters.append((message, "feedback names no rollout: call_id must be '<rollout_id>/<seq>@<run>' as the gateway gave it"))
                        continue
                    self.metrics.events_in.labels("feedback").inc()
                    out.send(self.names.rollout_events, rollout_id, event)
                await self.write(out)

        @app.agent(self.trainer_topic, name="trainer-events", concurrency=1)
        async def trainer_events(stream):
            async for events in acked_batches(stream, batch_max, within):
                out = Outputs()
                for _, event in self._decode([e.message for e in events], out):
                    self.metrics.events_in.labels(event.WhichOneof("payload")).inc()
                    add_event_rows(out.rows, event)
                await self.write(out)

    def _wire_groups(self, batch_max: int, within: float) -> None:
        app = self.app

        # Like the rollout agent, this one receives nothing: `group_batches` does the work.
        @app.agent(self.groups_topic, name="groups", concurrency=1)
        async def groups(stream):
            await bypassed(stream, self.groups_topic.get_topic_name())

        @app.task
        async def group_batches():
            async def step(messages: list) -> None:
                await self._group_step(messages)
                app.ack_many(messages)

            await app.serve_batches(self.groups_topic.get_topic_name(), step, batch_max, within)

    def _wire_timer(self) -> None:
        app = self.app

        @app.timer(interval=0.25)
        async def tick():
            if app.rebalancing:
                self.rollouts.deadlines.clear()  # rebuilt, from the takeover time on, once the table is recovered
                return
            await self._tick_rollouts()
            await self._tick_groups()

    async def _tick_rollouts(self) -> None:
        async with self.rollout_lock():
            await self.pipeline.drain()
            now = now_ms()
            if len(self.rollouts.deadlines) != len(self.rollout_table):
                self.rollouts.rebuild_deadlines(now)
            out = Outputs()
            self.rollouts.tick(now, out)
            self._count_released(out)
            self.metrics.pending.set(len(self.rollouts.deadlines))
            await self.write(out)
            await self.changelog.apply(out)

    async def _tick_groups(self) -> None:
        async with self.group_lock():
            out = Outputs()
            self.groups.tick(now_ms(), out)
            self._count_batches(out)
            await self.write(out)
            apply_state_writes(self.group_table, out)

    # -- steps ----------------------------------------------------------------------------------------------

    def _assemble_rollouts(self, messages) -> Outputs:
        t0 = time.perf_counter()
        out = Outputs()
        decoded = [event for _, event in self._decode(messages, out)]
        kinds: dict[str, int] = {}
        for event in decoded:
            kind = event.WhichOneof("payload")
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, n in kinds.items():
            self.metrics.events_in.labels(kind).inc(n)
        self.metrics.stage_seconds.labels("decode").observe(time.perf_counter() - t0)
        t0 = time.perf_counter()
        self.rollouts.handle(decoded, now_ms(), out)
        self.metrics.stage_seconds.labels("assemble").observe(time.perf_counter() - t0)
        self._count_released(out)
        return out

    async def _group_step(self, messages) -> None:
        """Group the member trajectories, write, then apply state: the caller acknowledges only after this returns."""
        out = Outputs()
        trajectories = [event.trajectory for _, event in self._decode(messages, out)]
        async with self.group_lock():
            self.groups.handle(trajectories, now_ms(), out)
            self._count_batches(out)
            await self.write(out)
            apply_state_writes(self.group_table, out)

    def _count_released(self, out: Outputs) -> None:
        self.metrics.trajectories.follow(self.rollouts.released)
        self.metrics.late.follow(self.rollouts.late_rewards)
        self.metrics.late_events.follow(self.rollouts.late_events)

    def _count_batches(self, out: Outputs) -> None:
        self.metrics.batches.follow(self.groups.batches)
        self.metrics.groups.follow(self.groups.outcomes)
