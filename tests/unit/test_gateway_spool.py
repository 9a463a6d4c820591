"""The spool: records survive a Kafka outage in order, each reaches Kafka (at least) once, a torn tail is dropped."""

from __future__ import annotations

import asyncio

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.gateway.spool import EventSink, KafkaUnavailable, SpoolFile


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
