"""Async Kafka I/O on aiokafka: a typed event producer, a consumer that dead-letters what it cannot parse, topic setup.

Consumers commit offsets only after the handler returned, so a crash re-delivers (at-least-once) and sinks
deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.dead_letter import Accepts, build_dead_letter, decode_accepted
from lightwire.v1 import events_pb2

# The largest record a Lightwire producer sends (its max_request_size); the local broker takes up to 16 MiB.
MAX_RECORD_BYTES = 8 << 20

log = logging.getLogger(__name__)

Handler = Callable[[ConsumerRecord, events_pb2.Event], Awaitable[None]]

# What AIOKafkaProducer partitions keyed records with by default (murmur2 of the key): `send_by_partition` uses it.
_PARTITIONER = DefaultPartitioner()


async def send_by_partition(producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[bytes | None, bytes | None]],
                            headers: list[tuple[str, bytes]] | None = None) -> list[asyncio.Future]:
    """Put records into one batch per partition and submit each batch whole; returns the delivery futures.

    Partitions are chosen by key, as the producer's `send` does by default (and Faust's producer for table changelogs),
    so records of one key keep their order. `send` costs a coroutine, a metadata check and a future per record.
    """
    headers = headers or []  # a list: aiokafka's C batch builder takes no other sequence
    partitions = sorted(await producer.partitions_for(topic))
    builders: dict[int, Any] = {}
    futures = []
    for key, value in records:
        partition = _PARTITIONER(key, partitions, partitions)
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            # Full: submit it and start the next (a batch's first record always fits).
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(timestamp=None, key=key, value=value, headers=headers)
    for partition, builder in builders.items():
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures


def event_key(key: str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return key.encode()


class EventProducer:
    """Sends Events; `send` waits for the broker's acknowledgement (acks=all, idempotent)."""

    def __init__(self, bootstrap: str, source: str, *, linger_ms: int = 5, dead_letter_topic: str = topics.DEAD_LETTER):
        self.source = source
        self.dead_letter_topic = dead_letter_topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            max_batch_size=1 << 20,
            max_request_size=MAX_RECORD_BYTES,
            compression_type=None,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> "EventProducer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def send(self, topic: str, key: str | bytes | None, event: events_pb2.Event) -> None:
        await self._producer.send_and_wait(topic, codec.encode(event), key=event_key(key), headers=[("content-type", codec.CONTENT_TYPE)])

    async def send_many(self, topic: str, items: Iterable[tuple[str | bytes | None, events_pb2.Event]]) -> None:
        """Pipelines sends and waits for all acknowledgements: much faster than awaiting each."""
        headers = [("content-type", codec.CONTENT_TYPE)]
        records = ((event_key(key), codec.encode(ev)) for key, ev in items)
        await asyncio.gather(*await send_by_partition(self._producer, topic, records, headers))

    async def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        await self._producer.send_and_wait(topic, value, key=key)

    async def dead_letter(self, record: ConsumerRecord, reason: str, consumer: str) -> None:
        # Stable id: re-delivery of the same bad record yields the same dead letter.
        await self.send(self.dead_letter_topic, record.key, build_dead_letter(record, reason, consumer=consumer, source=self.source))


@dataclass
class ConsumerConfig:
    bootstrap: str
    group_id: str | None
    topics: tuple[str, ...]
    name: str
    auto_offset_reset: str = "earliest"
    # Topics whose records may also be plain JSON feedback (the feedback topic).
    plain_feedback_topics: tuple[str, ...] = ()
    # Topic -> the payload kinds accepted there (see dead_letter.py); None accepts any kind.
    accepts: Accepts | None = None


class EventConsumer:
    """Consumes Events one at a time; bad records go to lw.dead-letter with the reason and the loop goes on."""

    def __init__(self, config: ConsumerConfig, producer: EventProducer):
        self.config = config
        self._producer = producer
        self._consumer = AIOKafkaConsumer(
            *config.topics,
            bootstrap_servers=config.bootstrap,
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=config.auto_offset_reset,
            max_poll_records=500,
        )
        self.dead_lettered = 0

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    @property
    def raw(self) -> AIOKafkaConsumer:
        return self._consumer

    async def run(self, handler: Handler, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    await self.handle(record, handler)
                if self.config.group_id:
                    await self._consumer.commit({tp: records[-1].offset + 1})

    async def handle(self, record: ConsumerRecord, handler: Handler) -> None:
        allow_json = record.topic in self.config.plain_feedback_topics
        try:
            event = decode_accepted(record, self.config.accepts, allow_plain_feedback=allow_json)
        except codec.InvalidRecord as exc:
            self.dead_lettered += 1
            log.warning("dead-lettered record", extra={"topic": record.topic, "offset": record.offset, "reason": str(exc)})
            await self._producer.dead_letter(record, str(exc), self.config.name)
            return
        await handler(record, event)

    async def seek_to_end(self) -> None:
        await self._consumer.seek_to_end()

    def assignment(self) -> set[TopicPartition]:
        return self._consumer.assignment()


async def ensure_topics(bootstrap: str, specs: Iterable[topics.TopicSpec], *, timeout_s: float = 60.0) -> list[str]:
    """Create the missing topics; existing ones are left as they are. Returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(timeout_s), wait=wait_exponential(max=2), retry=retry_if_exception_type(KafkaConnectionError), reraise=True
    ):
        with attempt:
            await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replicas, topic_configs=s.configs) for s in wanted]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def describe_topics(bootstrap: str) -> dict[str, int]:
    """Topic name -> partition count, for `stack status` and tests."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if not n.startswith("__")]
        described = await admin.describe_topics(names)
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
