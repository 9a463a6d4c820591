"""Writing a micro-batch's outputs (analytics rows, records, dead letters), retried until it succeeds.

Offsets follow the sinks: a batch is acknowledged only after its write returned, so a failing sink is retried and
holds the stream (backpressure) rather than letting a batch be committed with its outputs missing.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tenacity import AsyncRetrying, stop_never, wait_exponential

from lightwire.runtime.dead_letter import build_dead_letter
from lightwire.runtime.kafka import EventProducer
from lightwire.services.collector.analytics_writer import AnalyticsWriter
from lightwire.services.collector.metrics import CollectorMetrics
from lightwire.services.collector.outputs import Outputs
from lightwire.services.collector.settings import CollectorSettings

# Logged under the app's name, as before this module was split out of it: log filters and alerts match on it.
log = logging.getLogger("lightwire.services.collector.app")


class OutputWriter:
    def __init__(self, settings: CollectorSettings, writer: AnalyticsWriter, names, source: str, metrics: CollectorMetrics):
        self.settings = settings
        self.writer = writer
        self.names = names
        self.source = source
        self.metrics = metrics
        # Outputs go through a plain aiokafka producer: pipelined sends, far less per-record work than Faust's.
        # Created on the worker's loop (aiokafka binds to the loop it is made on).
        self.producer: EventProducer | None = None
        self._producer_started: asyncio.Lock | None = None
        self._writes: set[asyncio.Future] = set()

    async def write(self, out: Outputs) -> None:
        """Insert rows and send records, and wait for both: only then may the batch's offsets be committed.

        Shielded: a stopping worker cancels its agents, and a write cut off half-way would leave rows behind that
        only a restart replays; shutdown waits for writes in flight instead.
        """
        task = asyncio.ensure_future(self._write_retrying(out))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        await asyncio.shield(task)

    async def finish(self) -> None:
        """Shutdown: let writes in flight end, then stop the producer and the analytics writer."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()
        await self.writer.close()

    async def _write_retrying(self, out: Outputs) -> None:
        """A failed sink holds the stream (backpressure) and is retried; it never lets the batch be acknowledged."""
        for record, reason in out.dead_letters:
            letter = build_dead_letter(record, reason, consumer=self.settings.app_id(), source=self.source)
            out.send(self.names.dead_letter, (record.key or b"").decode(errors="replace"), letter)
            self.metrics.dead_letters.inc()
        out.dead_letters.clear()
        # Each attempt starts from the rows as they were: a failed flush may have consumed some of them.
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

    async def _start_producer(self) -> None:
        # Agents and the timer may write first in any order once the worker runs; start exactly once.
        self._producer_started = self._producer_started or asyncio.Lock()
        async with self._producer_started:
            if self.producer is None:
                producer = EventProducer(self.settings.kafka_bootstrap, self.source, linger_ms=2, dead_letter_topic=self.names.dead_letter)
                await producer.start()
                self.producer = producer
