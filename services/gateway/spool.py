"""Ordered, non-blocking event publishing that survives Kafka outages.

`EventSink.publish` never waits: events go to an in-memory queue that one task sends to Kafka in order. When
a send fails or is not acknowledged in time, that batch and everything after it go to an append-only spool
file instead (a local disk write), and keep going there, so order is kept, until the flusher has sent the whole
spool to Kafka; then sending goes direct again. A record whose acknowledgement was lost may be sent twice;
its event id is the same, so readers deduplicate (delivery is at-least-once, never lossy).

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
from pathlib import Path

from aiokafka import AIOKafkaProducer

from lightwire.runtime import codec
from lightwire.v1 import events_pb2

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IHHI")
_NO_KEY = 0xFFFF
_HEADERS = [("content-type", codec.CONTENT_TYPE)]
Record = tuple[str, bytes | None, bytes]


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
    def __init__(self, bootstrap: str, spool_dir: Path, *, send_timeout_s: float = 5.0, batch_size: int = 512, linger_ms: int = 20):
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self.spool = SpoolFile(spool_dir)
        self.send_timeout_s = send_timeout_s
        self.batch_size = batch_size
        self.sent = 0
        self.spooled = 0
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
                    await self._send(records)
                    self.spool.commit(end)
                    if not self.spool.pending:
                        log.info("spool flushed to Kafka")
                else:
                    batch = self._take(self.batch_size)
                    try:
                        await self._send(batch)
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

    def _take(self, n: int) -> list[Record]:
        out = []
        while self._queue and len(out) < n:
            topic, key, event = self._queue.popleft()
            out.append((topic, key, codec.encode(event)))
        return out

    def _take_all(self) -> list[Record]:
        return self._take(len(self._queue))

    async def _send(self, records: list[Record]) -> None:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                producer = await self._ready_producer()
                futures = [await producer.send(topic, value, key=key, headers=_HEADERS) for topic, key, value in records]
                await asyncio.gather(*futures)
        except Exception as exc:  # timeouts, connection errors, a broker that went away mid-batch
            raise KafkaUnavailable(repr(exc)) from exc
        self.sent += len(records)

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=self.linger_ms,
                                        max_batch_size=1 << 20, max_request_size=8 << 20, request_timeout_ms=int(self.send_timeout_s * 1000))
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
