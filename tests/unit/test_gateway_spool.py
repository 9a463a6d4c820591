"""The spool: records survive a Kafka outage in order, each reaches Kafka (at least) once, a torn tail is dropped."""

from __future__ import annotations

import asyncio
import json

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.gateway.event_sink import EventSink, KafkaUnavailable
from lightwire.services.gateway.spool import SpoolFile


def test_spool_file_appends_reads_in_order_and_resets_when_flushed(tmp_path):
    spool = SpoolFile(tmp_path)
    spool.append([("t", b"k1", b"v1"), ("t", None, b"v2")])
    spool.append([("u", b"", b"v3")])
    records, end = spool.read(2)
    assert records == [("t", b"k1", b"v1"), ("t", None, b"v2")]
    spool.commit(end)
    assert SpoolFile(tmp_path).read(10)[0] == [("u", b"", b"v3")]  # the offset survives a restart
    records, end = spool.read(10)
    spool.commit(end)
    assert not spool.pending and spool.path.stat().st_size == 0


def test_torn_tail_is_dropped(tmp_path):
    spool = SpoolFile(tmp_path)
    spool.append([("t", b"k", b"whole")])
    with open(spool.path, "ab") as f:
        f.write(b"\x00\x00\x00\x01\x00\x01\x00")  # a crash mid-header
    spool = SpoolFile(tmp_path)
    records, end = spool.read(10)
    assert records == [("t", b"k", b"whole")]


class FlakySink(EventSink):
    """Kafka replaced by a list; `down` makes every send fail as an unreachable broker would."""

    def __init__(self, spool_dir):
        super().__init__("unused:1", spool_dir, send_timeout_s=0.2)
        self.down = False
        self.kafka: list[bytes] = []

    async def _send(self, records):
        await asyncio.sleep(0)
        if self.down:
            raise KafkaUnavailable("down")
        self.kafka.extend(value for _, _, value in records)
        self.sent += len(records)
        return []

    async def _drop_producer(self):
        pass


def event(i: int) -> events_pb2.Event:
    return codec.make_event("t", event_id=f"e{i}", reward=events_pb2.RolloutReward(rollout_id="r", value=i))


async def test_outage_goes_to_the_spool_and_everything_arrives_in_order(tmp_path):
    sink = FlakySink(tmp_path)
    await sink.start()
    for i in range(5):
        sink.publish("t", "r", event(i))
    assert await sink.drained(2)
    sink.down = True
    for i in range(5, 15):
        sink.publish("t", "r", event(i))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert sink.spool.pending and sink.spooled > 0
    sink.down = False
    assert await sink.drained(10)
    ids = [codec.decode(v).event.event_id for v in sink.kafka]
    assert ids == [f"e{i}" for i in range(15)]
    await sink.stop()


async def test_what_is_left_at_stop_waits_in_the_spool_for_the_next_start(tmp_path):
    sink = FlakySink(tmp_path)
    sink.down = True
    await sink.start()
    for i in range(3):
        sink.publish("t", "r", event(i))
    await sink.stop(drain_timeout_s=0.3)
    again = FlakySink(tmp_path)
    await again.start()
    assert await again.drained(5)
    assert [codec.decode(v).event.event_id for v in again.kafka] == ["e0", "e1", "e2"]
    await again.stop()


async def test_unreachable_broker_spools_instead_of_blocking(tmp_path):
    sink = EventSink("127.0.0.1:1", tmp_path, send_timeout_s=0.5)
    await sink.start()
    sink.publish("t", "r", event(1))
    assert not await sink.drained(1.5)
    assert sink.spool.pending and not sink.kafka_ok
    await sink.stop(drain_timeout_s=0.1)
    assert codec.decode(SpoolFile(tmp_path).read(10)[0][0][2]).event.event_id == "e1"


# Records that can never go: too large for the producer or the broker, or not encodable. Each must leave the stream
# behind it moving (before the fix the sink took them for "Kafka unavailable" and retried them at the spool's head).

class SizeLimitedSink(FlakySink):
    """Kafka whose broker refuses any record over `broker_limit` bytes, as MessageSizeTooLargeError does."""

    def __init__(self, spool_dir, broker_limit=1 << 30, **kw):
        super().__init__(spool_dir)
        self.broker_limit = broker_limit
        self.topics: list[str] = []
        self.__dict__.update(kw)

    async def _send(self, records):
        await asyncio.sleep(0)
        if self.down:
            raise KafkaUnavailable("down")
        rejected = []
        for i, (topic, _, value) in enumerate(records):
            if len(value) > self.broker_limit:
                rejected.append((i, "MessageSizeTooLargeError()"))
            else:
                self.kafka.append(value)
                self.topics.append(topic)
        self.sent += len(records) - len(rejected)
        return rejected

    def events(self):
        return [codec.decode(v).event for v in self.kafka]


def big_call(i: int, json_bytes: int) -> events_pb2.Event:
    call = events_pb2.LlmCall(rollout_id="r", call_id=f"r/{i}", seq=i, request_json="x" * json_bytes, response_json="{}",
                              prompt_token_ids=range(100), http_status=200)
    call.completions.add(index=0, text="hello", token_ids=[7, 8, 9])
    return codec.make_event("t", event_id=f"e{i}", llm_call=call)


async def test_a_call_too_large_for_the_producer_goes_truncated_with_its_token_ids_and_the_next_follows(tmp_path):
    sink = SizeLimitedSink(tmp_path, max_record_bytes=64 << 10)
    await sink.start()
    sink.publish("t", "r", big_call(1, 1 << 20))
    sink.publish("t", "r", event(2))
    assert await sink.drained(2)
    first, second = sink.events()
    call = first.llm_call
    assert first.event_id == "e1" and list(call.prompt_token_ids) == list(range(100)) and list(call.completions[0].token_ids) == [7, 8, 9]
    assert json.loads(call.request_json)["lightwire_truncated"] is True and call.response_json == "{}"  # a small field stays
    assert second.event_id == "e2" and (sink.truncated, sink.undeliverable) == (1, 0) and not sink.spool.pending
    await sink.stop()


async def test_an_oversized_record_at_the_head_of_the_spool_does_not_block_what_follows(tmp_path):
    """The broker's own limit is below the producer's: the spooled record is refused for good, sent cut down, and
    the spool moves on to the records behind it."""
    sink = SizeLimitedSink(tmp_path, broker_limit=200_000)
    sink.down = True
    await sink.start()
    sink.publish("t", "r", big_call(1, 300_000))
    for i in range(2, 5):
        sink.publish("t", "r", event(i))
    await asyncio.sleep(0.3)
    assert sink.spool.pending
    sink.down = False
    assert await sink.drained(5)
    assert [e.event_id for e in sink.events()] == ["e2", "e3", "e4", "e1"]  # e1 goes again, cut down, after its batch
    assert json.loads(sink.events()[-1].llm_call.request_json)["lightwire_truncated"] and sink.truncated == 1
    await sink.stop()


async def test_what_cannot_be_cut_down_is_dead_lettered_with_its_reason(tmp_path):
    sink = SizeLimitedSink(tmp_path, max_record_bytes=4096, dead_letter_topic="dlq", source="gw")
    await sink.start()
    span = events_pb2.AgentSpan(rollout_id="r", span_id="s", attributes={"blob": "y" * 10_000})
    sink.publish("t", "r", codec.make_event("t", event_id="big-span", span=span))
    sink.publish("t", "r", event(2))
    assert await sink.drained(2)
    letter, after = sink.events()
    assert sink.topics == ["dlq", "t"] and after.event_id == "e2" and sink.undeliverable == 1
    assert letter.event_id == "dl-t-producer-big-span" and letter.dead_letter.topic == "t" and letter.dead_letter.key == b"r"
    assert "big-span" in letter.dead_letter.reason and "record limit" in letter.dead_letter.reason
    await sink.stop()


async def test_an_unencodable_event_is_dead_lettered_and_the_sink_keeps_going(tmp_path, monkeypatch):
    real = codec.encode

    def encode(e):
        if e.event_id == "bad":
            raise ValueError("cannot encode")
        return real(e)

    monkeypatch.setattr(codec, "encode", encode)
    sink = SizeLimitedSink(tmp_path, dead_letter_topic="dlq")
    await sink.start()
    sink.publish("t", "r", events_pb2.Event(event_id="bad", reward=events_pb2.RolloutReward(rollout_id="r")))
    sink.publish("t", "r", event(2))
    assert await sink.drained(2)
    assert sink.topics == ["dlq", "t"] and "cannot encode" in sink.events()[0].dead_letter.reason
    await sink.stop()


async def test_the_real_producer_refusing_a_record_as_too_large_is_not_kafka_unavailable(tmp_path):
    """aiokafka raises MessageSizeTooLargeError from send() itself; that record is reported, the rest are sent."""
    from aiokafka.errors import MessageSizeTooLargeError

    class Producer:
        def __init__(self):
            self.sent = []

        async def send(self, topic, value, key=None, headers=None):
            if len(value) > 100:
                raise MessageSizeTooLargeError("too big")
            self.sent.append(value)
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    sink = EventSink("unused:1", tmp_path)
    sink._producer = Producer()
    rejected = await sink._send([("t", None, b"a" * 10), ("t", None, b"b" * 1000), ("t", None, b"c")])
    assert [i for i, _ in rejected] == [1] and sink._producer.sent == [b"a" * 10, b"c"] and sink.sent == 2


# Durability: what `publish` returns is done only once the event is in Kafka or fsynced to the spool, so the gateway
# can answer a call knowing a kill -9 after the answer cannot lose it.

async def test_publish_is_durable_only_after_kafka_has_it(tmp_path):
    sink = FlakySink(tmp_path)
    published = sink.publish("t", "r", event(1))
    assert not published.done()  # queued, not yet sent: a crash now would lose it, so nobody may rely on it yet
    await sink.start()
    await asyncio.wait_for(published, 2)
    assert [codec.decode(v).event.event_id for v in sink.kafka] == ["e1"]
    await sink.stop()


async def test_publish_during_an_outage_is_durable_once_on_disk(tmp_path):
    sink = FlakySink(tmp_path)
    sink.down = True
    await sink.start()
    published = sink.publish("t", "r", event(2))
    await asyncio.wait_for(published, 2)
    assert not sink.kafka and codec.decode(SpoolFile(tmp_path).read(10)[0][0][2]).event.event_id == "e2"
    await sink.stop(drain_timeout_s=0.1)


class BrokenSink(FlakySink):
    """A send that fails with something other than an outage (a bug, a cancelled task)."""

    async def _send(self, records):
        raise RuntimeError("a bug in sending")


async def test_a_send_that_fails_for_any_reason_spools_the_batch_rather_than_dropping_it(tmp_path):
    sink = BrokenSink(tmp_path)
    await sink.start()
    published = sink.publish("t", "r", event(3))
    await asyncio.wait_for(published, 2)
    await sink.stop(drain_timeout_s=0.1)
    assert codec.decode(SpoolFile(tmp_path).read(10)[0][0][2]).event.event_id == "e3"
