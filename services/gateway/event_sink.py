"""Ordered event publishing that survives Kafka outages, with a durability promise per event.

`EventSink.publish` never blocks the caller: events go to an in-memory queue that one task sends to Kafka in order,
and it returns a future that is done once the event is durable: acknowledged by Kafka (acks=all), or fsynced to the
spool (spool.py). The gateway awaits it before it answers a call, so a `kill -9` after a response never loses the
call's event. When a send fails or is not acknowledged in time, that batch and everything after it go to the spool,
and keep going there, so order is kept, until the flusher has sent the whole spool to Kafka; then sending goes
direct again. A record whose acknowledgement was lost may be sent twice; its event id is the same, so readers
deduplicate (delivery is at-least-once, never lossy).

"Kafka unavailable" (a timeout, a lost connection) is told apart from "this record can never go" (larger than
the producer or the broker accepts, or not encodable): only the first is spooled and retried. A record that can
never go is sent truncated instead (truncation.py), or, when even that does not fit, replaced by a DeadLetter
naming why, so the records behind it never wait on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError

from lightwire.runtime import codec
from lightwire.runtime.kafka import MAX_RECORD_BYTES
from lightwire.v1 import events_pb2
from lightwire.services.gateway.spool import Record, SpoolFile
from lightwire.services.gateway.truncation import HEADERS, record_size, truncated

log = logging.getLogger(__name__)

# Failures that sending the same record again cannot cure.
_NEVER_GOES = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, InvalidTopicError)


class KafkaUnavailable(Exception):
    pass


class EventSink:
    def __init__(self, bootstrap: str, spool_dir: Path, *, send_timeout_s: float = 5.0, batch_size: int = 512, linger_ms: int = 20,
                 max_record_bytes: int = MAX_RECORD_BYTES, dead_letter_topic: str = "", source: str = "gateway"):
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self.spool = SpoolFile(spool_dir)
        self.send_timeout_s = send_timeout_s
        self.batch_size = batch_size
        self.max_record_bytes = max_record_bytes
        self.dead_letter_topic = dead_letter_topic  # where records that can never go are reported; "" logs them only
        self.source = source
        self.sent = 0
        self.spooled = 0
        self.truncated = 0  # records sent cut down because whole they could never go
        self.undeliverable = 0  # records that could not go even cut down (dead-lettered, or dropped with a log line)
        self._queue: deque[tuple[str, bytes | None, events_pb2.Event, asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def kafka_ok(self) -> bool:
        return self._producer is not None and not self.spool.pending

    def publish(self, topic: str, key: str | bytes | None, event: events_pb2.Event) -> asyncio.Future:
        """Queue `event`; the future returned is done once it is durable (in Kafka or in the fsynced spool)."""
        if not event.event_id or event.WhichOneof("payload") is None:
            raise ValueError("an Event needs an event_id (readers deduplicate on it) and a payload")
        durable = asyncio.get_running_loop().create_future()
        self._queue.append((topic, key.encode() if isinstance(key, str) else key, event, durable))
        self._idle.clear()
        self._wake.set()
        return durable

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-sink")

    async def drained(self, timeout_s: float) -> bool:
        """True once every published event reached Kafka (nothing queued, nothing spooled)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._queue or self.spool.pending or not self._idle.is_set():
                    self._wake.set()
                    await asyncio.sleep(0.05)
            return True
        except TimeoutError:
            return False

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Send what is queued if Kafka lets us; whatever is left waits in the spool for the next start."""
        await self.drained(drain_timeout_s)
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._queue:
            self._spool(*self._take_all())
        await self._drop_producer()

    async def _run(self) -> None:
        backoff = 0.2
        while not self._closing:
            if not self._queue and not self.spool.pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if self.spool.pending:
                    if self._queue:  # keep order: nothing goes direct while older records wait in the spool
                        self.spooled += len(self._queue)
                        self._spool(*self._take_all())
                    records, end = self.spool.read(self.batch_size)
                    await self._send_all(records)
                    self.spool.commit(end)
                    if not self.spool.pending:
                        log.info("spool flushed to Kafka")
                else:
                    batch, waiters = self._take(self.batch_size)
                    try:
                        await self._send_all(batch)
                    except BaseException:
                        # Kafka unreachable, a bug, or the sink stopping mid-send: the batch may or may not be in
                        # Kafka, so it goes to the spool (a copy in both is deduplicated by readers), never nowhere.
                        self.spooled += len(batch) + len(self._queue)
                        rest, rest_waiters = self._take_all()
                        self._spool(batch + rest, waiters + rest_waiters)
                        log.warning("Kafka send failed; spooling events", extra={"spool": str(self.spool.path)})
                        raise
                    _done(waiters)
                backoff = 0.2
            except KafkaUnavailable:
                await self._drop_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug here must not end recording for good: log it, back off, go on
                log.exception("event sink failed; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _spool(self, records: list[Record], waiters: list[asyncio.Future]) -> None:
        self.spool.append(records)
        _done(waiters)

    def _take(self, n: int) -> tuple[list[Record], list[asyncio.Future]]:
        """Up to n queued events, encoded, and their durability futures; one too big for the producer is truncated
        or dead-lettered here, before it can reach the spool."""
        out: list[Record] = []
        waiters: list[asyncio.Future] = []
        while self._queue and len(waiters) < n:
            topic, key, event, durable = self._queue.popleft()
            waiters.append(durable)
            try:
                value = codec.encode(event)
            except Exception as exc:  # noqa: BLE001 (whatever the encoder raises, this event never encodes)
                out.extend(self._never_goes(topic, key, b"", event, f"not encodable: {exc!r}"))
                continue
            if record_size(key, value) > self.max_record_bytes:
                out.extend(self._never_goes(topic, key, value, event, f"{len(value)} bytes, over the {self.max_record_bytes}-byte record limit"))
                continue
            out.append((topic, key, value))
        return out, waiters

    def _never_goes(self, topic: str, key: bytes | None, value: bytes, event: events_pb2.Event | None, reason: str,
                    fits: Callable[[events_pb2.Event], bool] | None = None) -> list[Record]:
        """What goes instead of a record that can never go as it is: its truncated copy, else a dead letter, else nothing."""
        if fits is None:
            fits = lambda e: record_size(key, codec.encode(e)) <= self.max_record_bytes  # noqa: E731
        if event is None:
            try:
                event = codec.decode(value).event
            except Exception:  # noqa: BLE001 (an undecodable record cannot be cut down either)
                event = None
        small = None
        if event is not None:
            try:
                small = truncated(event, fits, reason)
            except Exception:  # noqa: BLE001
                log.exception("truncating an event failed")
        if small is not None:
            self.truncated += 1
            log.warning("event too large for Kafka; sending it truncated",
                        extra={"topic": topic, "event_id": event.event_id, "reason": reason})
            return [(topic, key, codec.encode(small))]
        self.undeliverable += 1
        event_id = event.event_id if event is not None else ""
        log.error("event can never be delivered; dead-lettering it",
                  extra={"topic": topic, "event_id": event_id, "reason": reason, "dead_letter_topic": self.dead_letter_topic})
        if not self.dead_letter_topic:
            return []
        kind = event.WhichOneof("payload") if event is not None else "unknown"
        letter = events_pb2.DeadLetter(topic=topic, partition=-1, offset=-1, key=key or b"", consumer=f"{self.source}-producer",
                                       reason=f"never delivered ({kind} event {event_id or '?'}): {reason}")
        dead = codec.make_event(self.source, event_id=f"dl-{topic}-producer-{event_id or codec.new_event_id()}", dead_letter=letter)
        return [(self.dead_letter_topic, key, codec.encode(dead))]

    async def _send_all(self, records: list[Record]) -> None:
        """Send `records`. One Kafka refuses for good (the broker's own size limit may be below ours) goes again cut
        down, then as a dead letter, then is dropped with a log line; nothing is retried for ever. Raises
        KafkaUnavailable when Kafka is the problem (the caller spools or keeps the spool)."""
        pending = records
        for attempt in range(3):
            rejected = await self._send(pending) or []
            instead: list[Record] = []
            for i, reason in rejected:
                topic, key, value = pending[i]
                if attempt == 2 or topic == self.dead_letter_topic:
                    self._dropped(pending[i], reason)
                    continue
                # The broker's limit is not known here: aim below its default (1 MB) and below what it refused.
                target = min(len(value) - 1, 1_000_000)
                instead.extend(self._never_goes(topic, key, value, None, reason,
                                                fits=lambda e, key=key, target=target: record_size(key, codec.encode(e)) <= target))
            if not instead:
                return
            pending = instead

    def _dropped(self, record: Record, reason: str) -> None:
        self.undeliverable += 1
        log.error("record refused by Kafka for good; dropped", extra={"topic": record[0], "bytes": len(record[2]), "reason": reason})

    def _take_all(self) -> tuple[list[Record], list[asyncio.Future]]:
        return self._take(len(self._queue))

    async def _send(self, records: list[Record]) -> list[tuple[int, str]]:
        """Send and await acknowledgement; returns (index, reason) of the records Kafka refuses for good (too large,
        a bad topic), raises KafkaUnavailable for everything else."""
        rejected: list[tuple[int, str]] = []
        try:
            async with asyncio.timeout(self.send_timeout_s):
                producer = await self._ready_producer()
                futures = []
                for i, (topic, key, value) in enumerate(records):
                    try:
                        futures.append((i, await producer.send(topic, value, key=key, headers=HEADERS)))
                    except _NEVER_GOES as exc:
                        rejected.append((i, repr(exc)))
                results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
                for (i, _), result in zip(futures, results):
                    if isinstance(result, _NEVER_GOES):
                        rejected.append((i, repr(result)))
                    elif isinstance(result, BaseException):
                        raise result
        except Exception as exc:  # timeouts, connection errors, a broker that went away mid-batch
            raise KafkaUnavailable(repr(exc)) from exc
        self.sent += len(records) - len(rejected)
        return rejected

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=self.linger_ms,
                                        max_batch_size=1 << 20, max_request_size=self.max_record_bytes, request_timeout_ms=int(self.send_timeout_s * 1000))
            try:
                await producer.start()
            except BaseException:
                await _quietly_stop(producer)
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        async with asyncio.timeout(2.0):
            await producer.stop()
    except Exception:  # a producer that cannot reach its broker may not stop cleanly; it is dropped anyway
        pass


def _done(waiters: list[asyncio.Future]) -> None:
    for durable in waiters:
        if not durable.done():
            durable.set_result(None)
