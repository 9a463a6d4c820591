"""The collector on the real broker and the real ClickHouse engine (chDB), run as its own process."""

from __future__ import annotations

import asyncio
import random

import httpx
import orjson
import pytest

from lightwire.runtime.kafka import EventProducer
from lightwire.v1 import events_pb2 as pb
from testing.collector_events import by_id, rollout, start_collector, task, wait_for

pytestmark = pytest.mark.integration


# Batch delivery takes rollout events past Faust's per-record streams (the collector's one hot path).
# Small batches: the records are all produced before the collector starts, so one fetch holds them and is split into
# micro-batches of 7, and most rollouts are assembled across several of them.
@pytest.mark.parametrize("batch_max", [5000, 7], ids=["one-batch", "small-batches"])
def test_interleaved_rollouts_become_exactly_the_expected_trajectories_groups_and_batches(bootstrap, collector_env, tmp_path,
                                                                                         batch_max):
    names = collector_env
    rng = random.Random(7)
    sizes = {"gA": 3, "gB": 3, "gC": 2, "gD": 2}
    expected: dict[str, tuple[str, int, int]] = {}  # rollout -> (group, calls, status)
    streams = []
    for group, size in sizes.items():
        for i in range(size):
            rid = f"{group}-r{i}"
            calls = 1 + (i % 3)
            declared = calls + 1 if rid == "gC-r1" else None  # gC-r1 declares a call that never comes
            streams.append(rollout(rid, task(group, size, i), calls, declared, reward=float(i)))
            expected[rid] = (group, calls, pb.ROLLOUT_STATUS_TIMED_OUT if declared else pb.ROLLOUT_STATUS_SUCCEEDED)
    # Interleave rollouts (each keeps its own order, as one partition does), then duplicate a fifth of the records.
    merged: list[pb.Event] = []
    cursors = [0] * len(streams)
    while any(c < len(s) for c, s in zip(cursors, streams)):
        k = rng.choice([i for i, s in enumerate(streams) if cursors[i] < len(s)])
        merged.append(streams[k][cursors[k]])
        cursors[k] += 1
    records = [(rollout_key(e), e) for e in merged]
    records += [records[i] for i in rng.sample(range(len(records)), len(records) // 5)]

    async def produce():
        async with EventProducer(bootstrap, "tests") as producer:
            await producer.send_many(names.rollout_events, records)
            await producer.send_raw(names.rollout_events, b"gA-r0", b"\xff\x00 not an event")

    asyncio.run(produce())
    collector = start_collector(bootstrap, names, tmp_path, collector_rollout_timeout_s=4, collector_batch_groups=2,
                                collector_group_timeout_s=60, collector_batch_max=batch_max)
    try:
        trajectories = asyncio.run(wait_for(bootstrap, names.trajectories, lambda ev: len(by_id(ev, "trajectory")) >= len(expected)))
        batches = asyncio.run(wait_for(bootstrap, names.batches, lambda ev: len(by_id(ev, "batch")) >= 2))
        letters = asyncio.run(wait_for(bootstrap, names.dead_letter, lambda ev: len(ev) >= 1, timeout_s=10))
        counts = httpx.get(collector.health_url.replace("/healthz", "/api/counts"), timeout=30).json()
        one = httpx.get(collector.health_url.replace("/healthz", "/api/rollouts/gA-r2"), timeout=30).json()
    finally:
        collector.stop()

    got = {e.trajectory.rollout_id: e.trajectory for e in by_id(trajectories, "trajectory").values()}
    assert set(got) == set(expected)
    for rid, (group, calls, status) in expected.items():
        t = got[rid]
        assert (t.group_id, t.num_calls, t.status) == (group, calls, status), rid
        assert t.transitions, rid
        assert all(tr.response_token_ids and len(tr.response_mask) == len(tr.response_token_ids) for tr in t.transitions)
    # Batches hold whole groups only, two per batch, each group once.
    batch_groups = [g for b in by_id(batches, "batch").values() for g in b.batch.groups]
    assert sorted(g.group_id for g in batch_groups) == sorted(sizes)
    for g in batch_groups:
        assert sorted(t.rollout_id for t in g.trajectories) == sorted(r for r, v in expected.items() if v[0] == g.group_id)
    assert [d.dead_letter.reason for d in letters if d.dead_letter.topic == names.rollout_events][0].startswith("not a lightwire.v1.Event")
    # ClickHouse: each rollout once, each call once, despite the duplicates.
    assert counts["rollouts"] == {"n": len(expected), "distinct_ids": len(expected)}
    want_calls = sum(c for _, c, _ in expected.values())
    assert counts["llm_calls"] == {"n": want_calls, "distinct_ids": want_calls}
    assert [c["seq"] for c in one["calls"]] == [1, 2, 3] and one["rollout"][0]["status"] == "succeeded"


def rollout_key(event: pb.Event) -> str:
    kind = event.WhichOneof("payload")
    return getattr(event, kind).rollout_id


def test_feedback_on_time_is_applied_and_late_feedback_is_recorded_as_a_correction(bootstrap, collector_env, tmp_path):
    names = collector_env
    collector = start_collector(bootstrap, names, tmp_path, collector_feedback_grace_s=3,
                                collector_rewards="task_completion,user_feedback")
    try:
        async def scenario():
            async with EventProducer(bootstrap, "tests") as producer:
                await producer.send_many(names.rollout_events, [("fb-r1", e) for e in rollout("fb-r1", task("fbG", 1, 0), 2, reward=1.0)])
                # On time: plain JSON naming a call, keyed by whatever the producer likes.
                await producer.send_raw(names.feedback, b"anything", orjson.dumps({"call_id": "fb-r1/2", "name": "thumbs", "value": 0.5}))
                await producer.send_raw(names.feedback, None, b'{"name": "thumbs"}')  # names no target: dead letter
            first = await wait_for(bootstrap, names.trajectories, lambda ev: bool(by_id(ev, "trajectory")), timeout_s=30)
            async with EventProducer(bootstrap, "tests") as producer:
                await producer.send_raw(names.feedback, b"k", orjson.dumps({"rollout_id": "fb-r1", "name": "thumbs", "value": -1, "feedback_id": "late-1"}))
            after = await wait_for(bootstrap, names.trajectories, lambda ev: any(e.WhichOneof("payload") == "reward" for e in ev), timeout_s=30)
            return first, after

        first, after = asyncio.run(scenario())
        letters = asyncio.run(wait_for(bootstrap, names.dead_letter, lambda ev: len(ev) >= 1, timeout_s=10))
        summary = httpx.get(collector.health_url.replace("/healthz", "/api/summary"), timeout=30).json()
    finally:
        collector.stop()
    [trajectory] = [e.trajectory for e in by_id(first, "trajectory").values()]
    assert trajectory.reward_components["user_feedback"] == 0.5
    assert trajectory.reward_components["task_completion"] == 1.0
    corrections = [e.reward for e in after if e.WhichOneof("payload") == "reward"]
    assert [(c.rollout_id, c.value, c.late, c.source) for c in corrections] == [("fb-r1", -1.0, True, "feedback")]
    assert summary["late_rewards"] == [{"name": "thumbs", "rewards": 1, "value_mean": -1.0}]
    assert "exactly one of rollout_id or call_id" in letters[0].dead_letter.reason
