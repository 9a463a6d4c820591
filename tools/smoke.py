"""A smoke check of the running stack: one event produced to Kafka and consumed back through the codec."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.v1 import events_pb2


async def round_trip(bootstrap: str, timeout_s: float) -> float:
    rollout_id = f"smoke-{uuid.uuid4().hex[:12]}"
    started = events_pb2.RolloutStarted(rollout_id=rollout_id, worker_id="smoke")
    event = codec.make_event("lightwire-smoke", rollout_started=started)
    consumer = AIOKafkaConsumer(topics.ROLLOUT_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="latest", group_id=None)
    await consumer.start()
    try:
        # Make sure we are positioned before producing, or "latest" could skip our own record.
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)
        t0 = time.monotonic()
        async with EventProducer(bootstrap, "lightwire-smoke") as producer:
            await producer.send(topics.ROLLOUT_EVENTS, rollout_id, event)
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    decoded = codec.decode(record.value).event
                    if decoded.event_id == event.event_id:
                        if decoded != event:
                            raise RuntimeError("the smoke event came back changed")
                        return time.monotonic() - t0
        raise TimeoutError(f"the smoke event did not come back within {timeout_s}s")
    finally:
        await consumer.stop()
