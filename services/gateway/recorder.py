"""Every call becomes one LlmCall event keyed by its rollout, with a per-rollout sequence number."""

from __future__ import annotations

import time
import uuid

from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.v1 import events_pb2


class Recorder:
    def __init__(self, producer: EventProducer, topic: str, gateway_id: str):
        self.producer = producer
        self.topic = topic
        self.gateway_id = gateway_id
        self._seq: dict[str, int] = {}

    def next_call(self, rollout_id: str) -> tuple[int, str]:
        if not rollout_id:
            return 0, f"unattributed/{uuid.uuid4().hex}"
        seq = self._seq.get(rollout_id, 0) + 1
        self._seq[rollout_id] = seq
        return seq, f"{rollout_id}/{seq}"

    def calls_seen(self, rollout_id: str) -> int:
        return self._seq.get(rollout_id, 0)

    def forget(self, rollout_id: str) -> None:
        self._seq.pop(rollout_id, None)

    async def record(self, call: events_pb2.LlmCall) -> None:
        call.gateway_id = self.gateway_id
        event = codec.make_event(self.gateway_id, event_id=f"call-{call.call_id}", llm_call=call)
        await self.producer.send(self.topic, call.rollout_id or call.call_id, event)

    async def emit(self, key: str, event_id: str, **payload) -> str:
        event = codec.make_event(self.gateway_id, event_id=event_id, **payload)
        await self.producer.send(self.topic, key, event)
        return event.event_id


def now_ms() -> int:
    return int(time.time() * 1000)
