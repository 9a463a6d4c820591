"""Every event type through the real broker and back through the codec; the dead-letter path."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import json_format

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ConsumerConfig, EventConsumer, EventProducer, ensure_topics
from lightwire.v1 import events_pb2 as pb
from testing.kafka_reading import read_count, read_until_end
from testing.samples import sample_events

pytestmark = pytest.mark.integration


async def test_every_event_type_round_trips_through_the_broker(bootstrap, unique):
    topic = f"test.events.{unique}"
    await ensure_topics(bootstrap, [topics.TopicSpec(topic, 3)])
    sent = sample_events(rollout_id=f"r-{unique}")
    async with EventProducer(bootstrap, "tests") as producer:
        await producer.send_many(topic, [(f"r-{unique}", ev) for ev in sent])
    records = await read_count(bootstrap, topic, len(sent))
    # One key, so one partition: the broker keeps them in send order.
    assert len({r.partition for r in records}) == 1
    received = [codec.decode(r.value).event for r in records]
    for want, got in zip(sent, received, strict=True):
        want_fields = json_format.MessageToDict(want, preserving_proto_field_name=True)
        got_fields = json_format.MessageToDict(got, preserving_proto_field_name=True)
        assert got_fields == want_fields, f"{want.WhichOneof('payload')} changed on the way"
        assert got == want
    assert all(dict(r.headers)["content-type"] == codec.CONTENT_TYPE for r in records)


async def test_unparsable_records_are_dead_lettered_and_the_consumer_keeps_going(bootstrap, unique):
    topic = f"test.dl.{unique}"
    await ensure_topics(bootstrap, [topics.TopicSpec(topic, 1)])
    good = sample_events(rollout_id=f"r-{unique}")[:2]
    async with EventProducer(bootstrap, "tests") as producer:
        await producer.send(topic, "k", good[0])
        await producer.send_raw(topic, b"k", b"\x0a\xff\xff garbage")
        await producer.send_raw(topic, b"k", b'{"event_id": 5')
        await producer.send(topic, "k", good[1])

        handled: list[pb.Event] = []
        stop = asyncio.Event()

        async def handler(record, event):
            handled.append(event)
            if len(handled) == len(good):
                stop.set()

        consumer = EventConsumer(ConsumerConfig(bootstrap, f"test-dl-{unique}", (topic,), name="test-consumer"), producer)
        await consumer.start()
        try:
            await asyncio.wait_for(consumer.run(handler, stop), timeout=30)
        finally:
            await consumer.stop()
    assert handled == good
    assert consumer.dead_lettered == 2

    # lw.dead-letter is shared: pick this test's letters by their source topic.
    letters = [codec.decode(r.value).event.dead_letter for r in await read_until_end(bootstrap, topics.DEAD_LETTER)]
    letters = [d for d in letters if d.topic == topic]
    assert [d.offset for d in letters] == [1, 2]
    assert "not a lightwire.v1.Event protobuf" in letters[0].reason
    assert "malformed JSON" in letters[1].reason
    assert letters[0].value == b"\x0a\xff\xff garbage" and letters[0].consumer == "test-consumer"
