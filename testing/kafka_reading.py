"""Reading a topic back in tests: everything up to its current end, or until N records came."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer


async def read_until_end(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list:
    """Every record of `topic` up to the end offsets seen at the start of the call."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            while not consumer.assignment():
                await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        out: list = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(records)
        return out
    finally:
        await consumer.stop()


async def read_count(bootstrap: str, topic: str, count: int, timeout_s: float = 30.0) -> list:
    """The first `count` records of `topic`, waiting for them to arrive."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: list = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out
