"""Hands the rollout and group-member topics' records to the collector in whole fetched batches, past Faust's
per-record stream path.

Faust delivers every record on its own: two tasks and an `asyncio.wait` in the fetch loop, a lock, a channel queue
and a stream step, about 100 µs of CPU per record here, more than all the collector's own work on a call event.
For the topics named in `BatchDeliveryApp.batch_topics` the fetch loop below instead hands each fetched batch
as one list to a bounded queue (backpressure: the loop waits while it is full, and gives up the batch when a
rebalance suspends the flow, as Faust's own loop does with a record).

Everything else stays Faust's: the group membership and partition assignment (the topic keeps its agent, so it is
subscribed and co-partitioned with the tables as before), the tables and their changelogs, and the offset commits,
which still follow acknowledgements: the reader `track`s a record before working on it (so a rebalance waits for
it) and `ack`s it only after its outputs are written. Records fetched before a rebalance are dropped untracked and
unacknowledged, as Faust's streams drop them, and fetched again from the committed offset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger(__name__)


class BatchRecord:
    """A fetched record of a batch topic: what the collector and Faust's offset bookkeeping read of a Faust Message.

    Faust's ConsumerMessage keeps twenty fields (sizes, timings, tracing) for its streams; building one per record cost
    more than decoding the event in it. Weak-referenceable and hashable by identity, as Faust's set of unacknowledged
    messages needs.
    """

    __slots__ = ("topic", "partition", "offset", "tp", "key", "value", "generation_id", "acked", "refcount", "tracked", "__weakref__")

    def __init__(self, tp, record, generation_id: int) -> None:
        self.topic = tp.topic
        self.partition = tp.partition
        self.offset = record.offset
        self.tp = tp
        self.key = record.key
        self.value = record.value
        self.generation_id = generation_id
        self.acked = False
        self.refcount = 0
        self.tracked = False


class BatchConsumer(faust_aiokafka.Consumer):
    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover - replaces Faust's fetch loop
        # Follows faust.transport.consumer.Consumer._drain_messages and getmany (faust-streaming 0.15) with one
        # change: records of the batch topics are handed over per fetch, one list per topic, not one `callback`
        # each; and, for them, what Faust does per record but depends only on the partition (the highwater for the
        # monitor, the generation and flow checks) is done once per partition and fetch.
        app = cast(BatchDeliveryApp, self.app)
        batch_topics = app.batch_topics
        queues = {topic: app.batch_queue(topic) for topic in batch_topics}
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(faust_consumer.CONSUMER_FETCHING)
                records, active_partitions = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    try:
                        await self.perform_seek()  # as Faust's getmany: back to the committed offsets
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    continue
                generation_id = app.consumer_generation_id
                batches: dict[str, list[BatchRecord]] = {}
                others: dict[Any, list] = {}
                for tp, tp_records in records.items():
                    if not (active_partitions is None or tp in active_partitions or tp in self._buffered_partitions):
                        continue
                    if tp.topic not in batch_topics:
                        others[tp] = tp_records
                        continue
                    if not self.flow_active or app.consumer_generation_id != generation_id:
                        break
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    batch = batches.setdefault(tp.topic, [])
                    acks_enabled = acks_enabled_for(tp.topic)
                    generation = app.consumer_generation_id
                    for record in tp_records:
                        offset = record.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # already read (Faust drops these too)
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled:
                            await self._add_gap(tp, r_offset + 1, offset)
                        batch.append(BatchRecord(tp, record, generation))
                        set_read_offset(tp, offset)
                # Other topics: record by record, round-robin over topics, as Faust delivers them.
                for tp, record in self.scheduler.iterate(others) if others else ():
                    if not self.flow_active or app.consumer_generation_id != generation_id:
                        break
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    message = to_message(tp, record)
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        continue
                    gap = offset - (r_offset or 0)
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                for topic, batch in batches.items():
                    if not batch:
                        continue
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await self.wait_first(queues[topic].put(batch), self.suspend_flow.wait())
                unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            unset_flag(faust_consumer.CONSUMER_FETCHING)

    def ack_many(self, messages: list[BatchRecord]) -> None:
        """`Message.ack` for each of `messages` (records no stream holds a reference to), under one lock and with one
        wake-up of the waiters, as faust.transport.consumer.Consumer.ack does them one by one."""
        with ack_lock:
            acks_enabled_for = self.app.topics.acks_enabled_for
            committed_offsets, acked_index, acked, unacked = self._committed_offset, self._acked_index, self._acked, self._unacked_messages
            n = 0
            for message in messages:
                if message.acked:
                    continue
                message.refcount = 0
                message.acked = True
                if not acks_enabled_for(message.topic):
                    continue
                tp, offset = message.tp, message.offset
                committed = committed_offsets[tp]
                if committed is None or offset >= committed:
                    index = acked_index[tp]
                    if offset not in index:
                        unacked.discard(message)
                        index.add(offset)
                        acked[tp].append(offset)
                        n += 1
            self._n_acked += n
            notify(self._waiting_for_ack)


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


class BatchDeliveryApp(faust.App):
    """A Faust app whose fetch loop delivers `batch_topics` records in batches, one queue per topic (`batch_queue`)."""

    batch_topics: frozenset[str] = frozenset()
    batch_queue_chunks: int = 16
    _batch_queues: dict[str, asyncio.Queue] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rest: dict[str, list[BatchRecord]] = {}  # records taken from a queue beyond the last `take`'s batch_max

    def _new_transport(self):
        return BatchTransport(self.conf.broker_consumer, self)

    def batch_queue(self, topic: str) -> asyncio.Queue:
        # Made on first use, on the worker's loop.
        if self._batch_queues is None:
            self._batch_queues = {}
        if topic not in self._batch_queues:
            self._batch_queues[topic] = asyncio.Queue(maxsize=self.batch_queue_chunks)
        return self._batch_queues[topic]

    def current(self, message: BatchRecord) -> bool:
        """Whether a fetched record may still be worked on: fetched in this generation, and no rebalance under way."""
        return self.flow_control.is_active() and message.generation_id == self.consumer_generation_id

    def track(self, messages: list[BatchRecord]) -> None:
        """From now on a rebalance waits for these records, and their offsets are committed only once acknowledged."""
        for message in messages:
            message.tracked = True
        # A rebalance waits while Faust's set of unacknowledged records is not empty. A batch is acknowledged all at
        # once, its last record last (`_write_in_order`, `group_batches`), so that record alone holds the rebalance as long as all of
        # them would: one weak-set entry per batch instead of one per record (about 9 µs each).
        if messages:
            cast(Any, self.consumer)._unacked_messages.add(messages[-1])
        # What a stream would tell the monitor: Faust's slow-processing check reads it per partition.
        monitor = self.monitor
        now = time.monotonic()
        for tp in {message.tp for message in messages}:
            monitor.stream_inbound_time[tp] = now
        monitor.events_total += len(messages)

    def ack_many(self, messages: list[BatchRecord]) -> None:
        """Acknowledge a batch at once (see BatchConsumer.ack_many)."""
        cast(BatchConsumer, self.consumer).ack_many(messages)

    async def serve_batches(self, topic: str, step: Callable[[list[BatchRecord]], Awaitable[None]], batch_max: int,
                            within: float) -> None:
        """Run `step` on every batch of `topic` this worker may still work on, until a step fails.

        A failed batch is never acknowledged, so never committed: the worker crashes and a restart replays it.
        Carrying on would skip it. Acknowledging is the step's job, after its writes.
        """
        while True:
            messages = [m for m in await self.take(topic, batch_max, within) if self.current(m)]
            if not messages:
                continue
            self.track(messages)
            try:
                await step(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("batch of %s failed; stopping the worker", topic)
                await self.crash(exc)
                return

    async def take(self, topic: str, batch_max: int, within: float) -> list[BatchRecord]:
        """Up to `batch_max` records of `topic`: what is queued now, waiting at most `within` for more."""
        queue = self.batch_queue(topic)
        messages = self._rest.pop(topic, None) or list(await queue.get())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(messages) < batch_max:
            if queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    messages.extend(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            else:
                messages.extend(queue.get_nowait())
        if len(messages) > batch_max:
            # One fetch can hold several micro-batches' worth; smaller steps let writes progress between them.
            self._rest[topic] = messages[batch_max:]
            del messages[batch_max:]
        return messages
