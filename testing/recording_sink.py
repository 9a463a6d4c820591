"""An in-memory stand-in for the gateway's EventSink in pure-logic unit tests: keeps what is published, in order."""

from __future__ import annotations

import asyncio

from lightwire.v1 import events_pb2


class RecordingSink:
    def __init__(self, durable: bool = True):
        self.events: list[tuple[str, str, events_pb2.Event]] = []
        self.durable = durable  # False: no event ever becomes durable (a sink that cannot reach Kafka or its disk)

    def publish(self, topic, key, event) -> asyncio.Future:
        self.events.append((topic, key, event))
        published = asyncio.get_running_loop().create_future()
        if self.durable:
            published.set_result(None)
        return published

    def calls(self) -> list[events_pb2.LlmCall]:
        return [e.llm_call for _, _, e in self.events if e.WhichOneof("payload") == "llm_call"]
