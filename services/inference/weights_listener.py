"""Follows lw.weights and reloads the engine. Each instance has its own consumer group, so every replica
reloads every version (a shared group would split the announcements between replicas).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import ConsumerRecord

from lightwire.runtime.kafka import ConsumerConfig, EventConsumer, EventProducer
from lightwire.v1 import events_pb2
from lightwire.services.inference.engine import Engine, InferenceError

log = logging.getLogger(__name__)


class WeightsListener:
    def __init__(self, engine: Engine, served_name: str):
        self._engine = engine
        self._served_name = served_name
        self.loaded: list[int] = []  # versions loaded, in order (tests and logs)

    async def handle(self, record: ConsumerRecord, event: events_pb2.Event) -> None:
        if event.WhichOneof("payload") != "weight_version":
            return
        wv = event.weight_version
        if wv.model and wv.model != self._served_name:
            log.info("weights for another model ignored", extra={"model": wv.model, "serving": self._served_name})
            return
        if wv.version <= self._engine.model_version:
            return  # replayed from the compacted topic, or already loaded through the LoadWeights RPC
        try:
            await self._engine.load_weights(wv.version, wv.uri, wv.format or "full")
        except InferenceError as exc:
            # A bad announcement must not stop the listener: the next version may be fine.
            log.error("weight reload failed", extra={"version": wv.version, "uri": wv.uri, "error": str(exc)})
            return
        self.loaded.append(wv.version)


async def run_weights_listener(engine: Engine, *, bootstrap: str, topic: str, dead_letter_topic: str,
                               group_id: str, served_name: str, instance: str, stop: asyncio.Event) -> None:
    producer = EventProducer(bootstrap, instance, dead_letter_topic=dead_letter_topic)
    consumer = EventConsumer(ConsumerConfig(bootstrap=bootstrap, group_id=group_id, topics=(topic,), name=instance), producer)
    listener = WeightsListener(engine, served_name)
    await producer.start()
    try:
        await consumer.start()
        try:
            await consumer.run(listener.handle, stop)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
