"""The collector's Faust application: agents over the rollout, feedback, trainer and group topics, a timer, web views.

Offsets: agents consume with `noack_take` and acknowledge a micro-batch themselves, after its analytics rows are
inserted and its records acknowledged by the broker; a failing sink is retried and holds the stream, and an agent
that crashes never acknowledges its batch (plain `take` would, on the way out). Faust flushes table changelogs
before it commits offsets. Concurrency stays 1 per agent (faust-streaming #606).

Rollout events, the hot path, arrive by batch delivery (batch_delivery.py) in a task that pipelines: it assembles
micro-batch N+1 while N is being written, reading N's not yet applied states through `PendingStates`; writes, state
writes and acknowledgements still happen batch by batch, in order, each after its own sinks succeeded. Group-member
records (one per released rollout) arrive by batch delivery as well, into a task that handles them like the groups agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from tenacity import AsyncRetrying, stop_never, wait_exponential
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lightwire.runtime.dead_letter import build_dead_letter, decode_or_dead_letter
from lightwire.runtime.kafka import EventProducer, send_by_partition
from lightwire.v1 import events_pb2
from lightwire.services.collector.analytics_rows import add_event_rows
from lightwire.services.collector.analytics_writer import AnalyticsWriter
from lightwire.services.collector.batch_delivery import BatchDeliveryApp
from lightwire.services.collector.group_processor import GroupProcessor
from lightwire.services.collector.grouping import GroupPolicy
from lightwire.services.collector.outputs import Outputs, PendingStates, apply_state_writes
from lightwire.services.collector.rollout_processor import Finalize, RolloutProcessor, Timing
from lightwire.services.collector.rollout_state import ROLLOUT_PAYLOADS, feedback_rollout_id
from lightwire.services.collector.settings import CollectorSettings

log = logging.getLogger(__name__)


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


def quiet_kafka_client_logs() -> None:
    """aiokafka logs every produced record at debug level, and building each record costs more than sending it.

    The Faust worker sets up logging after the app is built, so this runs once the worker is up.
    """
    root = logging.getLogger()
    logging.getLogger("aiokafka").setLevel(max(logging.INFO, root.getEffectiveLevel()))
    # Faust's topics log every changelog record they publish at debug level too.
    logging.getLogger("faust.topics").setLevel(max(logging.INFO, root.getEffectiveLevel()))


def now_ms() -> int:
    return int(time.time() * 1000)


class FollowedCounter:
    """A Prometheus counter that follows a count kept elsewhere (a processor's own tally), by its increments."""

    def __init__(self, counter: Counter):
        self.counter = counter
        self.seen = 0

    def follow(self, count: int) -> None:
        if count > self.seen:
            self.counter.inc(count - self.seen)
            self.seen = count


@dataclass
class CollectorMetrics:
    registry: CollectorRegistry

    def __post_init__(self) -> None:
        r = self.registry
        self.events_in = Counter("lw_collector_events_total", "Events consumed, by topic kind", ["kind"], registry=r)
        self.dead_letters = Counter("lw_collector_dead_letters_total", "Records sent to the dead-letter topic", registry=r)
        # Counted where they happen (RolloutProcessor, GroupProcessor); these follow those counts.
        self.trajectories = FollowedCounter(Counter("lw_collector_trajectories_total", "Trajectories released", registry=r))
        self.batches = FollowedCounter(Counter("lw_collector_batches_total", "Training batches released", registry=r))
        self.rows = Counter("lw_collector_analytics_rows_total", "Analytics rows inserted", registry=r)
        self.late = FollowedCounter(Counter("lw_collector_late_rewards_total", "Rewards and feedback that arrived after release", registry=r))
        self.pending = Gauge("lw_collector_pending_rollouts", "Rollouts held in this instance's table", registry=r)
        self.stage_seconds = Histogram(
            "lw_collector_stage_seconds", "Time per micro-batch stage", ["stage"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )


class Collector:
    def __init__(self, settings: CollectorSettings, finalize: Finalize, writer: AnalyticsWriter, partitions: int):
        self.settings = settings
        self.writer = writer
        self.names = settings.topic_names()
        self.partitions = partitions
        self.metrics = CollectorMetrics(CollectorRegistry())
        self.source = settings.instance_id or f"collector-{settings.app_id()}"
        app_id = settings.app_id()
        self.app = BatchDeliveryApp(
            app_id,
            broker=[f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(",")],
            store="memory://",
            topic_partitions=partitions,
            topic_replication_factor=1,
            table_standby_replicas=0,
            producer_acks=-1,
            producer_max_request_size=16 << 20,
            # Faust's producer carries the table changelogs: one write per rollout per batch. Its defaults (no linger,
            # 16 KiB batches) send them in many small requests, and each request costs the event loop more than
            # the records in it.
            producer_linger=0.005,
            producer_max_batch_size=1 << 20,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            broker_session_timeout=settings.collector_session_timeout_s,
            # A third of the session timeout, as Kafka advises: two heartbeats can go missing before a member is dropped.
            broker_heartbeat_interval=settings.collector_session_timeout_s / 3,
            web_enabled=True,
            web_bind=settings.collector_host,
            web_port=settings.collector_port,
            web_in_thread=False,
            datadir=str((settings.state_dir / "collector" / app_id).resolve()),
            autodiscover=False,
        )
        # Topics do not derive their codec from the type (tables do): without "raw" Faust would try JSON.
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        table_types = {"key_type": bytes, "value_type": bytes}
        self.rollout_topic = self.app.topic(self.names.rollout_events, **raw)
        self.feedback_topic = self.app.topic(self.names.feedback, **raw)
        self.trainer_topic = self.app.topic(self.names.train_steps, self.names.weights, **raw)
        self.groups_topic = self.app.topic(f"{app_id}-groups", partitions=1, internal=True, **raw)
        # The payload kinds each input topic carries; a record of any other kind is dead-lettered with the reason.
        self.accepts: dict[str, frozenset[str]] = {
            self.names.rollout_events: ROLLOUT_PAYLOADS,
            self.names.feedback: frozenset({"feedback"}),
            self.names.train_steps: frozenset({"train_step"}),
            self.names.weights: frozenset({"weight_version"}),
            self.groups_topic.get_topic_name(): frozenset({"trajectory"}),
        }
        if settings.collector_batch_delivery:
            # The group-member topic carries one record per rollout too: past Faust's per-record path as well.
            self.app.batch_topics = frozenset({self.names.rollout_events, self.groups_topic.get_topic_name()})
        # Outputs go through a plain aiokafka producer: pipelined sends, far less per-record work than Faust's.
        # Created on the worker's loop (aiokafka binds to the loop it is made on).
        self.producer: EventProducer | None = None
        self._producer_started: asyncio.Lock | None = None
        self.rollout_table = self.app.Table("rollouts", partitions=partitions, use_partitioner=True, **table_types)
        self.group_table = self.app.Table("groups", partitions=1, use_partitioner=True, **table_types)
        # Assembly reads through the states of micro-batches still being written (pipelining, see rollout_batches).
        self.pending_rollouts = PendingStates(self.rollout_table)
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
            ),
            settings.collector_batch_groups, self.names.batches, self.source,
            retention_ms=int(settings.collector_released_retention_s * 1000),
        )
        # Agents and the timer interleave at awaits; each step (decide, write, apply state) runs alone.
        self._rollout_lock: asyncio.Lock | None = None
        self._writes: set[asyncio.Future] = set()
        # Rollout micro-batches assembled but not yet written, oldest first (at most `PIPELINE_DEPTH`).
        self._rollout_pipeline: list[asyncio.Task] = []
        self._pipeline_failure: BaseException | None = None
        self._group_lock: asyncio.Lock | None = None
        self._wire()

    # -- output -----------------------------------------------------------------------------------------------

    async def write(self, out: Outputs) -> None:
        """Insert rows and send records, and wait for both: only then may the batch's offsets be committed.

        Shielded: a stopping worker cancels its agents, and a write cut off half-way would leave rows behind that
        only a restart replays; shutdown waits for writes in flight instead.
        """
        task = asyncio.ensure_future(self._write_retrying(out))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        await asyncio.shield(task)

    async def _write_retrying(self, out: Outputs) -> None:
        """A failed sink holds the stream (backpressure) and is retried; it never lets the batch be acknowledged."""
        for record, reason in out.dead_letters:
            letter = build_dead_letter(record, reason, consumer=self.settings.app_id(), source=self.source)
            out.send(self.names.dead_letter, (record.key or b"").decode(errors="replace"), letter)
            self.metrics.dead_letters.inc()
        out.dead_letters.clear()
        saved = {table: dict(rows) for table, rows in out.rows.rows.items()}
        async for attempt in AsyncRetrying(wait=wait_exponential(0.2, max=30), stop=stop_never, reraise=True,
                                           before_sleep=lambda state: log.error(
                                               "writing a micro-batch failed; retrying",
                                               extra={"attempt": state.attempt_number, "error": repr(state.outcome.exception())})):
            with attempt:
                out.rows.rows = {table: dict(rows) for table, rows in saved.items()}
                await self._write(out)

    async def _write(self, out: Outputs) -> None:
        if self.producer is None:
            await self._start_producer()
        t0 = time.perf_counter()
        by_topic: dict[str, list] = {}
        for topic, key, event in out.records:
            by_topic.setdefault(topic, []).append((key, event))
        sends = asyncio.ensure_future(self._send(by_topic, t0)) if by_topic else None
        try:
            rows, insert_s = await self.writer.flush(out.rows)
        finally:
            if sends is not None:
                await sends
        # Stages: "analytics" is the inserts' own time on the writer thread, "produce" the time until the broker
        # acknowledged the records, "write" both as the batch saw them (they run side by side).
        if rows:
            self.metrics.stage_seconds.labels("analytics").observe(insert_s)
        self.metrics.rows.inc(rows)
        self.metrics.stage_seconds.labels("write").observe(time.perf_counter() - t0)

    async def _send(self, by_topic: dict[str, list], t0: float) -> None:
        assert self.producer is not None
        await asyncio.gather(*(self.producer.send_many(topic, items) for topic, items in by_topic.items()))
        self.metrics.stage_seconds.labels("produce").observe(time.perf_counter() - t0)

    def rollout_lock(self) -> asyncio.Lock:
        self._rollout_lock = self._rollout_lock or asyncio.Lock()
        return self._rollout_lock

    def group_lock(self) -> asyncio.Lock:
        self._group_lock = self._group_lock or asyncio.Lock()
        return self._group_lock

    async def _start_producer(self) -> None:
        # Agents and the timer may write first in any order once the worker runs; start exactly once.
        self._producer_started = self._producer_started or asyncio.Lock()
        async with self._producer_started:
            if self.producer is None:
                producer = EventProducer(self.settings.kafka_bootstrap, self.source, linger_ms=2, dead_letter_topic=self.names.dead_letter)
                await producer.start()
                self.producer = producer

    def _decode(self, messages, out: Outputs) -> list[tuple[object, events_pb2.Event]]:
        """Every consumer's decoding: the (message, event) pairs of the messages that decode to a kind their topic
        accepts; the rest go to `out.dead_letters` with the reason. Plain JSON is accepted on the feedback topic only."""
        feedback = self.names.feedback
        return decode_or_dead_letter(messages, lambda message, reason: out.dead_letters.append((message, reason)), self.accepts,
                                     allow_plain_feedback=lambda message: message.topic == feedback)

    # -- agents ---------------------------------------------------------------------------------------------

    def _wire(self) -> None:
        s = self.settings
        app = self.app

        @app.on_before_shutdown.connect
        async def finish_writes(app, **kwargs) -> None:
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
            if self.producer is not None:
                await self.producer.stop()
            await self.writer.close()
        batch_max, within = s.collector_batch_max, s.collector_batch_within_s

        # With batch delivery this agent receives nothing: it stays so the topic is subscribed, acknowledged and
        # assigned exactly as before, and it is the whole path when batch delivery is off.
        @app.agent(self.rollout_topic, name="rollout-events", concurrency=1)
        async def rollout_events(stream):
            async for events in acked_batches(stream, batch_max, within):
                await self._rollout_step([event.message for event in events])

        @app.task
        async def rollout_batches():
            # Pipelined: batch N+1 is assembled (reading N's states through `pending_rollouts`) while N's outputs
            # are written. Writes run one after another in batch order; each batch's states are applied and its
            # records acknowledged only after its own write, so offsets still follow the sinks.
            quiet_kafka_client_logs()
            if app.batch_topics:
                await app.serve_batches(self.names.rollout_events, self._rollout_pipelined, batch_max, within)

        @app.agent(self.feedback_topic, name="feedback", concurrency=1)
        async def feedback(stream):
            # Feedback is keyed however its producer chose: re-key it by rollout onto the rollout topic, so it is
            # applied in order with the rollout's other events, by the instance that owns the rollout.
            async for events in acked_batches(stream, batch_max, within):
                out = Outputs()
                for message, event in self._decode([e.message for e in events], out):
                    rollout_id = feedback_rollout_id(event.feedback)
                    if not rollout_id:
                        out.dead_letters.append((message, "feedback names no rollout: call_id must be '<rollout_id>/<seq>'"))
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

        # Like the rollout agent: with batch delivery it receives nothing and `group_batches` does the work.
        @app.agent(self.groups_topic, name="groups", concurrency=1)
        async def groups(stream):
            async for events in acked_batches(stream, batch_max, within):
                await self._group_step([event.message for event in events])

        @app.task
        async def group_batches():
            async def step(messages: list) -> None:
                await self._group_step(messages)
                app.ack_many(messages)

            topic = self.groups_topic.get_topic_name()
            if topic in app.batch_topics:
                await app.serve_batches(topic, step, batch_max, within)

        @app.timer(interval=0.25)
        async def tick():
            if app.rebalancing:
                return
            async with self.rollout_lock():
                await self._drain_rollout_pipeline()
                now = now_ms()
                if len(self.rollouts.deadlines) != len(self.rollout_table):
                    self.rollouts.rebuild_deadlines(now)
                out = Outputs()
                self.rollouts.tick(now, out)
                self._count_released(out)
                self.metrics.pending.set(len(self.rollouts.deadlines))
                await self.write(out)
                await self._apply_rollout_states(out)
            async with self.group_lock():
                out = Outputs()
                self.groups.tick(now_ms(), out)
                self._count_batches(out)
                await self.write(out)
                apply_state_writes(self.group_table, out)

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

    async def _rollout_step(self, messages) -> None:
        """Assemble, write, then apply state: the caller acknowledges the messages only after this returns."""
        async with self.rollout_lock():
            await self._drain_rollout_pipeline()
            out = self._assemble_rollouts(messages)
            await self.write(out)
            await self._apply_rollout_states(out)

    PIPELINE_DEPTH = 2

    async def _rollout_pipelined(self, messages) -> None:
        """Assemble now; write, apply the states and acknowledge `messages` in a task that follows the previous one."""
        pipeline = self._rollout_pipeline
        while len(pipeline) >= self.PIPELINE_DEPTH:
            await asyncio.shield(pipeline[0])
        if self._pipeline_failure is not None:
            raise self._pipeline_failure
        async with self.rollout_lock():
            out = self._assemble_rollouts(messages)
            handle = self.pending_rollouts.stage(out)
            before = pipeline[-1] if pipeline else None
            task = asyncio.ensure_future(self._write_in_order(before, out, handle, messages))
            pipeline.append(task)
            task.add_done_callback(self._rollout_written)

    def _rollout_written(self, task: asyncio.Task) -> None:
        self._rollout_pipeline.remove(task)
        if not task.cancelled() and task.exception() is not None and self._pipeline_failure is None:
            self._pipeline_failure = task.exception()

    async def _write_in_order(self, before: asyncio.Task | None, out: Outputs, handle, messages) -> None:
        if before is not None:
            await asyncio.shield(before)  # raises if it failed: nothing after a failed batch is acknowledged
        if self._pipeline_failure is not None:
            raise self._pipeline_failure
        await self.write(out)
        await self._apply_rollout_states(out)
        self.pending_rollouts.applied(handle)
        self.app.ack_many(messages)

    async def _apply_rollout_states(self, out: Outputs) -> None:
        """`apply_state_writes` for the rollout table, with its changelog records handed straight to Faust's producer.

        A table assignment sends its changelog record through Faust's buffered publishing (a future, serializer
        look-ups and a log record per write), which cost more than the rest of a rollout's state handling. Here the
        value goes into the table's store and the records, one batch per changelog partition, to the producer's
        accumulator: the same topic, keys, values and partitioning (by key, as the table's use_partitioner), and
        Faust's flush before each offset commit still waits for them. A batch the producer fails to deliver stops the
        worker, so no offset after it is committed. Every write to the rollout table goes this way (deletions too): records
        of one key never take two paths, whose order in the changelog would not be the order they were made in.
        """
        table = self.rollout_table
        data = table.data

        def changes():
            for key, value in out.state_writes.items():
                if value is None:
                    if key not in data:
                        continue
                    del data[key]  # and a tombstone, as a table deletion sends
                else:
                    data[key] = value
                yield key, value

        producer = self.app.producer._ensure_producer()  # the aiokafka producer under Faust's
        for sent in await send_by_partition(producer, table.changelog_topic.get_topic_name(), changes()):
            sent.add_done_callback(self._changelog_sent)
        out.state_writes.clear()

    def _changelog_sent(self, sent: asyncio.Future) -> None:
        if not sent.cancelled() and sent.exception() is not None:
            log.error("a rollout changelog record was not delivered; stopping the worker", extra={"error": repr(sent.exception())})
            asyncio.ensure_future(self.app.crash(sent.exception()))

    async def _drain_rollout_pipeline(self) -> None:
        while self._rollout_pipeline:
            await asyncio.shield(self._rollout_pipeline[-1])
        if self._pipeline_failure is not None:
            raise self._pipeline_failure

    def _count_released(self, out: Outputs) -> None:
        self.metrics.trajectories.follow(self.rollouts.released)
        self.metrics.late.follow(self.rollouts.late_rewards)

    def _count_batches(self, out: Outputs) -> None:
        self.metrics.batches.follow(self.groups.batches)
