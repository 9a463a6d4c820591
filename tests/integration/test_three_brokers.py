"""A three-node KRaft cluster as `lightwire stack up --brokers 3` runs it: every topic in three copies, two of which
must have a write before it is acknowledged, so a broker killed under load loses no acknowledged event.

The kill test keeps the killed broker down until everything is read back: with one copy per partition, the events
acknowledged on its partitions could not be read (and its partitions would take no more writes), so the test fails.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from lightwire.v1 import events_pb2 as pb
from testing.kafka_cluster import describe_replication, kill_leader

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("LW_TEST_BROKER_KILL_EVENTS", "20000"))
SENDERS = 16
PARTITIONS = 4
# How long the stream may take, retries included (about 35 s on 2 cores): a leader election takes seconds.
# Past it the senders give up, and the events they never had acknowledged fail the test.
STREAM_DEADLINE_S = 120.0


def test_every_topic_has_three_copies_and_needs_two_in_sync(three_brokers, unique):
    settings = three_brokers.settings
    names = topics.TopicNames(f"r{unique}.")
    asyncio.run(ensure_topics(settings.bootstrap, topics.topic_specs(PARTITIONS, names, settings.replication())))
    wanted = [spec.name for spec in topics.topic_specs(PARTITIONS, names)]
    asyncio.run(commit_an_offset(settings.bootstrap, names.tasks, f"g{unique}"))  # makes Kafka create __consumer_offsets
    described = asyncio.run(describe_replication(settings.bootstrap, [*wanted, "__consumer_offsets"]))
    for name, topic in described.items():
        assert all(sorted(r) == [1, 2, 3] for r in topic.replicas.values()), f"{name}: {topic.replicas}"
        assert topic.min_insync == 2, f"{name}: min.insync.replicas={topic.min_insync}"
        if name != "__consumer_offsets":  # a broker restarted by an earlier test may still be catching up on that one
            assert all(sorted(r) == [1, 2, 3] for r in topic.in_sync.values()), f"{name}: {topic.in_sync}"


async def commit_an_offset(bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
        await consumer.commit({tp: 0 for tp in consumer.assignment()})
    finally:
        await consumer.stop()


@dataclass
class Acks:
    """What the producers were told: the event ids Kafka acknowledged, and how long the slowest send waited."""

    acked: set[str] = field(default_factory=set)
    failed_sends: int = 0
    slowest_s: float = 0.0
    slowest_after_kill_s: float = 0.0
    killed_at: float | None = None


async def produce(bootstrap: str, topic: str, ids: list[str], acks: Acks) -> None:
    """SENDERS producers' worth of concurrent acks=all sends; an event whose send failed is sent again (same id)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for event_id in ids:
        queue.put_nowait(event_id)
    deadline = time.monotonic() + STREAM_DEADLINE_S

    async def sender(producer: EventProducer) -> None:
        while not queue.empty() and time.monotonic() < deadline:
            event_id = queue.get_nowait()
            key = event_id.rsplit("-", 1)[0]  # a few hundred rollout-like keys over every partition
            event = codec.make_event("broker-kill-test", event_id=event_id,
                                     rollout_finished=pb.RolloutFinished(rollout_id=key, num_calls=1))
            started = time.monotonic()
            try:
                await producer.send(topic, key, event)
            except Exception:  # noqa: BLE001 - a timeout or a lost leader: what a real client retries
                acks.failed_sends += 1
                queue.put_nowait(event_id)
                await asyncio.sleep(0.1)
                continue
            waited = time.monotonic() - started
            acks.slowest_s = max(acks.slowest_s, waited)
            if acks.killed_at is not None and started + waited > acks.killed_at:
                acks.slowest_after_kill_s = max(acks.slowest_after_kill_s, waited)
            acks.acked.add(event_id)

    async with EventProducer(bootstrap, "broker-kill-test") as producer:
        await asyncio.gather(*(sender(producer) for _ in range(SENDERS)))


async def read_ids(bootstrap: str, topic: str, want: set[str], timeout_s: float) -> tuple[set[str], int]:
    """The event ids on `topic`, read until every one of `want` came or the timeout; and how many records repeated one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: set[str] = set()
    repeats = 0
    try:
        deadline = time.monotonic() + timeout_s
        while not want <= seen and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    event_id = codec.decode(record.value).event.event_id
                    repeats += event_id in seen
                    seen.add(event_id)
    finally:
        await consumer.stop()
    return seen, repeats


def test_a_broker_killed_under_load_loses_no_acknowledged_event(three_brokers, unique):
    cluster, settings = three_brokers, three_brokers.settings
    names = topics.TopicNames(f"b{unique}.")
    asyncio.run(ensure_topics(settings.bootstrap, topics.topic_specs(PARTITIONS, names, settings.replication())))
    topic = names.rollout_events
    ids = [f"r{i % 400:03d}-{i:06d}" for i in range(EVENTS)]
    acks = Acks()
    killed: list[int] = []
    log: list[str] = []

    async def kill_a_third_of_the_way() -> None:
        while len(acks.acked) < EVENTS // 3:
            await asyncio.sleep(0.01)
        acks.killed_at = time.monotonic()
        node, led = await asyncio.to_thread(kill_leader, cluster, topic)
        killed.append(node.node_id)
        log.append(f"kill -9 of node {node.node_id} (leader of partitions {led}) after {len(acks.acked)} acks")

    async def stream() -> None:
        killer = asyncio.create_task(kill_a_third_of_the_way())
        await produce(settings.bootstrap, topic, ids, acks)
        await killer

    t0 = time.monotonic()
    asyncio.run(stream())
    streamed_s = time.monotonic() - t0
    after = asyncio.run(describe_replication(settings.bootstrap, [topic]))[topic]
    seen, repeats = asyncio.run(read_ids(settings.bootstrap, topic, acks.acked, timeout_s=90))
    print(f"{'; '.join(log)}; {EVENTS} events in {streamed_s:.1f}s; slowest acknowledgement {acks.slowest_s:.1f}s "
          f"({acks.slowest_after_kill_s:.1f}s of those in flight at the kill); failed sends retried: {acks.failed_sends}; "
          f"records read twice: {repeats}; leaders after the kill {after.leaders}, in sync {after.in_sync}")

    assert len(killed) == 1, "a broker was killed during the stream"
    assert killed[0] not in after.leaders.values() and all(killed[0] not in isr for isr in after.in_sync.values()), \
        "the killed broker leads nothing and is in no partition's in-sync set"
    lost = sorted(acks.acked - seen)
    assert not lost, f"{len(lost)} acknowledged events are not on the topic with a broker down, e.g. {lost[:5]}"
    assert acks.acked == set(ids), f"{len(set(ids) - acks.acked)} events were never acknowledged: writes stopped with a broker down"
