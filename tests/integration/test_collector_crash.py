"""Kill -9 the collector in the middle of 10,000 rollouts: after a restart nothing is lost and nothing is doubled for a
reader that deduplicates by event id (the at-least-once contract), in the trajectories and in ClickHouse."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer

from lightwire import topics
from lightwire.analytics.store import AnalyticsStore
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from testing.collector_events import rollout, start_collector, task

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLLOUTS = 10_000


class TrajectoryReader:
    """Reads lw.trajectories from the start, counting records per event id."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        self.records: Counter[str] = Counter()
        self.rollouts: set[str] = set()
        self.sources: dict[str, str] = {}

    async def read_until(self, want: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.rollouts) < want and time.monotonic() < deadline:
            for records in (await self.consumer.getmany(timeout_ms=300, max_records=5000)).values():
                for r in records:
                    event = codec.decode(r.value).event
                    if event.WhichOneof("payload") == "trajectory":
                        self.records[event.event_id] += 1
                        self.sources[event.event_id] = event.source
                        self.rollouts.add(event.trajectory.rollout_id)


def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing_a_reader_sees(bootstrap, unique, tmp_path):
    names = topics.TopicNames(f"t{unique}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(4, names)))
    ids = [f"k{i:05d}" for i in range(ROLLOUTS)]

    async def produce():
        async with EventProducer(bootstrap, "tests", linger_ms=20) as producer:
            batch = []
            for i, rid in enumerate(ids):
                batch.extend((rid, e) for e in rollout(rid, task(f"kg{i // 2}", 2, i % 2), 2))
                if len(batch) >= 5000:
                    await producer.send_many(names.rollout_events, batch)
                    batch = []
            await producer.send_many(names.rollout_events, batch)

    asyncio.run(produce())
    # Every rollout scores 1.0: uniform groups are kept (LW_COLLECTOR_UNIFORM_GROUPS), so every rollout is batched.
    settings = dict(collector_batch_groups=50, collector_rollout_timeout_s=120, collector_uniform_groups="keep", log_level="INFO")
    collector = start_collector(bootstrap, names, tmp_path, instance_id="first", **settings)

    async def crash_and_recover():
        reader = TrajectoryReader(bootstrap, names.trajectories)
        await reader.consumer.start()
        try:
            await reader.read_until(ROLLOUTS // 4, timeout_s=120)
            assert len(reader.rollouts) < ROLLOUTS, "the collector finished before the crash: make the stream longer"
            collector.kill()
            killed_at = len(reader.rollouts)
            restarted = start_collector(bootstrap, names, tmp_path, instance_id="second", **settings)
            await reader.read_until(ROLLOUTS, timeout_s=300)
            await asyncio.sleep(3)  # anything still in flight would show up as a duplicate or an extra
            await reader.read_until(ROLLOUTS + 1, timeout_s=2)
            return reader, restarted, killed_at
        finally:
            await reader.consumer.stop()

    reader, restarted, killed_at = asyncio.run(crash_and_recover())
    try:
        # Groups trail trajectories (they pass through the collector's groups topic): wait until every rollout is batched.
        deadline = time.monotonic() + 120
        while True:
            batches = asyncio.run(read_batches(bootstrap, names.batches))
            batched = {t.rollout_id for b in batches.values() for g in b.groups for t in g.trajectories}
            if len(batched) >= ROLLOUTS or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        restarted.stop()
    assert 0 < killed_at < ROLLOUTS
    # A reader deduplicating by event id sees every rollout exactly once.
    assert sorted(reader.rollouts) == ids
    assert sorted(eid.removeprefix("traj-") for eid in reader.records) == ids
    raw_duplicates = sum(n - 1 for n in reader.records.values())
    print(f"killed after {killed_at} trajectories; raw duplicate records on the topic: {raw_duplicates}")
    # Training batches: whole groups, each rollout in exactly one batch id.
    in_batches = Counter(t.rollout_id for b in batches.values() for g in b.groups for t in g.trajectories)
    assert sorted(in_batches) == ids and set(in_batches.values()) == {1}
    # ClickHouse (the collector is stopped, so this process may open its chDB path).
    store = AnalyticsStore(f"chdb://{(tmp_path / 'analytics').resolve()}")
    try:
        present = {r[0] for r in store.query("SELECT rollout_id FROM rollouts FINAL")}
        missing = sorted(set(ids) - present)
        if missing:
            print("MISSING", missing[:20], store.query("SELECT rollout_id, seq FROM llm_calls FINAL WHERE rollout_id IN {m:Array(String)}", {"m": missing[:5]}))
            print("TRAJ", [(e, reader.records[e], reader.sources[e]) for e in reader.records if e.removeprefix("traj-") in missing[:5]])
            for log_file in tmp_path.glob("collector-*.log"):
                print(log_file.name, [line for line in log_file.read_text(errors="replace").splitlines() if "ERROR" in line][:20])
        assert store.query("SELECT count(), uniqExact(rollout_id) FROM rollouts FINAL") == [(ROLLOUTS, ROLLOUTS)]
        assert sorted(r[0] for r in store.query("SELECT rollout_id FROM rollouts FINAL")) == ids
        assert store.query("SELECT count(), uniqExact(event_id) FROM llm_calls FINAL") == [(2 * ROLLOUTS, 2 * ROLLOUTS)]
    finally:
        store.close()


async def read_batches(bootstrap: str, topic: str) -> dict:
    from testing.kafka_reading import read_until_end

    return {e.event_id: e.batch for e in (codec.decode(r.value).event for r in await read_until_end(bootstrap, topic))}
