"""Every input topic of the collector has the payload kinds it accepts; anything else is dead-lettered with the reason
(issue 13 item 8: a well-formed Task on the rollout topic used to be dropped without a dead letter)."""

from __future__ import annotations

import asyncio

import pytest

from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.v1 import events_pb2 as pb
from testing.collector_events import by_id, rollout, start_collector, task, wait_for

pytestmark = pytest.mark.integration


def test_events_of_a_kind_a_topic_does_not_carry_are_dead_lettered_with_the_reason(bootstrap, collector_env, tmp_path):
    names = collector_env
    wrong = codec.make_event("tests", event_id="a-task", task=task("dlG", 1, 0))
    step = codec.make_event("tests", event_id="a-step", train_step=pb.TrainStep())

    async def produce():
        async with EventProducer(bootstrap, "tests") as producer:
            await producer.send(names.rollout_events, b"dl-r1", wrong)
            await producer.send(names.feedback, b"k", wrong)
            await producer.send(names.train_steps, b"k", wrong)
            await producer.send(names.train_steps, b"k", step)  # accepted there
            await producer.send(names.rollout_events, b"dl-r0", step)  # but not on the rollout topic
            await producer.send_many(names.rollout_events, [("dl-r1", e) for e in rollout("dl-r1", task("dlG", 1, 0), 1)])

    asyncio.run(produce())
    collector = start_collector(bootstrap, names, tmp_path)
    try:
        trajectories = asyncio.run(wait_for(bootstrap, names.trajectories, lambda ev: bool(by_id(ev, "trajectory")), timeout_s=60))
        letters = asyncio.run(wait_for(bootstrap, names.dead_letter, lambda ev: len(by_id(ev, "dead_letter")) >= 4, timeout_s=30))
    finally:
        collector.stop()

    # The rollout around the rejected records is assembled as usual.
    assert [e.trajectory.rollout_id for e in by_id(trajectories, "trajectory").values()] == ["dl-r1"]
    got = sorted((d.dead_letter.topic, d.dead_letter.reason) for d in by_id(letters, "dead_letter").values())
    assert got == sorted([
        (names.rollout_events, f"event kind task is not accepted on {names.rollout_events}"),
        (names.rollout_events, f"event kind train_step is not accepted on {names.rollout_events}"),
        (names.feedback, f"event kind task is not accepted on {names.feedback}"),
        (names.train_steps, f"event kind task is not accepted on {names.train_steps}"),
    ])
    # The record travels whole in its dead letter.
    [letter] = [d.dead_letter for d in by_id(letters, "dead_letter").values()
                if d.dead_letter.topic == names.rollout_events and "task" in d.dead_letter.reason]
    assert (letter.key, codec.decode(letter.value).event) == (b"dl-r1", wrong)
