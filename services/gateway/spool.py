"""Ordered, non-blocking event publishing that survives Kafka outages.

`EventSink.publish` never waits: events go to an in-memory queue that one task sends to Kafka in order. When
a send fails or is not acknowledged in time, that batch and everything after it go to an append-only spool
file instead (a local disk write), and keep going there, so order is kept, until the flusher has sent the whole
spool to Kafka; then sending goes direct again. A record whose acknowledgement was lost may be sent twice;
its event id is the same, so readers deduplicate (delivery is at-least-once, never lossy).

"Kafka unavailable" (a timeout, a lost connection) is told apart from "this record can never go" (larger than
the producer or the broker accepts, or not encodable): only the first is spooled and retried. A record that can
never go is sent truncated instead (an LlmCall loses its request/response JSON, then its texts, keeping the token
ids; the JSON fields then say so), or, when even that does not fit, replaced by a DeadLetter naming why, so the
records behind it never wait on it.

Spool frame: crc32 (4 bytes), topic length (2), key length (2, 0xFFFF = no key), value length (4), then the
bytes. A torn last frame (a crash mid-write) fails its crc and is dropped with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidTopicError, MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from lightwire.runtime import codec
from lightwire.runtime.kafka import MAX_RECORD_BYTES
from lightwire.v1 import events_pb2

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IHHI")
_NO_KEY = 0xFFFF
_HEADERS = [("content-type", codec.CONTENT_TYPE)]
Record = tuple[str, bytes | None, bytes]
# Failures that sending the same record again cannot cure.
_NEVER_GOES = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, InvalidTopicError)
_KEPT_ERROR_CHARS = 4096


def record_size(key: bytes | None, value: bytes) -> int:
    """The size aiokafka checks against max_request_size."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, _HEADERS)


def _marker(field: str, original: str, reason: str) -> str:
    return orjson.dumps({"lightwire_truncated": True, "field": field, "original_chars": len(original), "reason": reason}).decode()


def truncated(event: events_pb2.Event, fits: Callable[[events_pb2.Event], bool], reason: str) -> events_pb2.Event | None:
    """A smaller copy of `event` that `fits`, or None. Only an LlmCall can be cut: first its request/response JSON
    (replaced by a {"lightwire_truncated": true, ...} marker) and error text, then its completion texts; its token
    ids and logprobs, what training needs, are kept whole."""
    if event.WhichOneof("payload") != "llm_call":
        return None
    small = events_pb2.Event()
    small.CopyFrom(event)
    call = small.llm_call
    for field in ("request_json", "response_json"):
        value = getattr(call, field)
        if value and len(value) > 256:
            setattr(call, field, _marker(field, value, reason))
    if len(call.error_message) > _KEPT_ERROR_CHARS:
        call.error_message = call.error_message[:_KEPT_ERROR_CHARS] + " [truncated]"
    if fits(small):
        return small
    for completion in call.completions:
        completion.text = ""
        completion.tool_calls_json = ""
    return small if fits(small) else None


class SpoolFile:
    """An append-only file of records plus the byte offset up to which they reached Kafka."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "events.spool"
        self.offset_path = directory / "events.offset"
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.offset = int(self.offset_path.read_text() or 0) if self.offset_path.exists() else 0
        if self.offset >= self.size:
            self._reset()

    @property
    def pending(self) -> bool:
        return self.size > self.offset

    def append(self, records: list[Record]) -> None:
        frames = bytearray()
        for topic, key, value in records:
            t = topic.encode()
            k = key or b""
            frames += _HEADER.pack(zlib.crc32(t + k + value), len(t), _NO_KEY if key is None else len(k), len(value)) + t + k + value
        with open(self.path, "ab") as f:
            f.write(frames)
            f.flush()
            os.fsync(f.fileno())
        self.size += len(frames)

    def read(self, max_records: int) -> tuple[list[Record], int]:
        """Up to `max_records` records from the flushed offset on, and the offset after the last one."""
        out: list[Record] = []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            position = self.offset
            while len(out) < max_records and position < self.size:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                crc, tlen, klen, vlen = _HEADER.unpack(header)
                body = f.read(tlen + (0 if klen == _NO_KEY else klen) + vlen)
                if zlib.crc32(body) != crc:
                    log.warning("dropping a torn record at the end of the spool", extra={"offset": position})
                    return out, self.size
                key = None if klen == _NO_KEY else body[tlen:tlen + klen]
                out.append((body[:tlen].decode(), key, body[len(body) - vlen:]))
                position += _HEADER.size + len(body)
        return out, position

    def commit(self, offset: int) -> None:
        if offset >= self.size:
            self._reset()
            return
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.offset_path)
        self.offset = offset

    def _reset(self) -> None:
        # Truncate first, then the offset: a crash between the two leaves offset >= size, which loads as empty.
        self.path.write_bytes(b"")
        self.offset_path.write_text("0")
        self.size = self.offset = 0


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
        self._queue: deque[tuple[str, bytes | None, events_pb2.Event]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def kafka_ok(self) -> bool:
        return self._producer is not None and not self.spool.pending

    def publish(self, topic: str, key: str | bytes | None, event: events_pb2.Event) -> None:
        if not event.event_id or event.WhichOneof("payload") is None:
            raise ValueError("an Event needs an event_id (readers deduplicate on it) and a payload")
        self._queue.append((topic, key.encode() if isinstance(key, str) else key, event))
        self._idle.clear()
        self._wake.set()

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
            self.spool.append(self._take_all())
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
                        self.spool.append(self._take_all())
                    records, end = self.spool.read(self.batch_size)
                    await self._send_all(records)
                    self.spool.commit(end)
                    if not self.spool.pending:
                        log.info("spool flushed to Kafka")
                else:
                    batch = self._take(self.batch_size)
                    try:
                        await self._send_all(batch)
                    except KafkaUnavailable:
                        self.spooled += len(batch) + len(self._queue)
                        self.spool.append(batch + self._take_all())
                        log.warning("Kafka unreachable; spooling events", extra={"spool": str(self.spool.path)})
                        raise
                backoff = 0.2
            except KafkaUnavailable:
                await self._drop_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug here must not end recording for good: log it, back off, go on
                log.exception("event sink failed; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _take(self, n: int) -> list[Record]:
        """Up to n queued events, encoded; one too big for the producer is truncated or dead-lettered here, before it
        can reach the spool."""
        out = []
        while self._queue and len(out) < n:
            topic, key, event = self._queue.popleft()
            try:
                value = codec.encode(event)
            except Exception as exc:  # noqa: BLE001 (whatever the encoder raises, this event never encodes)
                out.extend(self._never_goes(topic, key, b"", event, f"not encodable: {exc!r}"))
                continue
            if record_size(key, value) > self.max_record_bytes:
                out.extend(self._never_goes(topic, key, value, event, f"{len(value)} bytes, over the {self.max_record_bytes}-byte record limit"))
                continue
            out.append((topic, key, value))
        return out

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

    def _take_all(self) -> list[Record]:
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
                        futures.append((i, await producer.send(topic, value, key=key, headers=_HEADERS)))
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
