"""Every LLM call becomes one LlmCall event keyed by its rollout, with a per-rollout sequence number from 1.

Call ids are "<rollout_id>/<seq>@<run>" (feedback naming only a call can be routed to its rollout), or
"unattributed/<uuid>" outside any rollout. `run` names this gateway process: its sequence counters live in memory,
so after a restart, or on another replica, a rollout's count starts again at 1, and the run keeps those calls' ids
apart from the ones before (the collector orders a rollout's calls by start time, then seq). Event ids are fresh
uuids, stable across spool retries.

A call is answered only once its event is durable (`durable`): in Kafka, or fsynced to the spool.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.event_sink import EventSink

# Sequence counters of rollouts that never finish are evicted oldest-first beyond this many.
_MAX_TRACKED_ROLLOUTS = 100_000


class Recorder:
    def __init__(self, sink: EventSink, topic: str, gateway_id: str, durable_timeout_s: float = 30.0):
        self.sink = sink
        self.topic = topic
        self.gateway_id = gateway_id
        self.run = uuid.uuid4().hex[:8]
        self.durable_timeout_s = durable_timeout_s
        self._seq: OrderedDict[str, int] = OrderedDict()

    def begin(self, endpoint: str, rollout_id: str, agent_name: str, request_json: str, stream: bool) -> events_pb2.LlmCall:
        if rollout_id:
            seq = self._seq.pop(rollout_id, 0) + 1
            self._seq[rollout_id] = seq
            if len(self._seq) > _MAX_TRACKED_ROLLOUTS:
                self._seq.popitem(last=False)
            call_id = f"{rollout_id}/{seq}@{self.run}"
        else:
            seq, call_id = 0, f"unattributed/{uuid.uuid4().hex}"
        return events_pb2.LlmCall(
            rollout_id=rollout_id, call_id=call_id, seq=seq, endpoint=endpoint, request_json=request_json, agent_name=agent_name,
            started_unix_ms=int(time.time() * 1000), gateway_id=self.gateway_id, stream=stream,
        )

    def calls_seen(self, rollout_id: str) -> int:
        return self._seq.get(rollout_id, 0)

    def forget(self, rollout_id: str) -> None:
        self._seq.pop(rollout_id, None)

    def succeeded(self, call: events_pb2.LlmCall, result, response_json: str, latency_ms: float) -> asyncio.Future:
        """`result` is the upstream's GenerateResponse."""
        call.model = result.model or call.model
        call.model_version = result.model_version
        call.prompt_token_ids.extend(result.prompt_token_ids)
        call.completions.extend(result.completions)
        call.prompt_tokens = len(result.prompt_token_ids)
        call.completion_tokens = sum(len(c.token_ids) for c in result.completions)
        call.response_json = response_json
        call.latency_ms = latency_ms
        call.http_status = 200
        return self.record(call)

    def failed(self, call: events_pb2.LlmCall, error: GatewayError, latency_ms: float, response_json: str = "") -> asyncio.Future:
        call.http_status = error.status
        call.error_class = error.error_class
        call.error_message = error.message
        call.response_json = response_json
        call.latency_ms = latency_ms
        return self.record(call)

    def record(self, call: events_pb2.LlmCall) -> asyncio.Future:
        event = codec.make_event(self.gateway_id, llm_call=call)
        return self.sink.publish(self.topic, call.rollout_id or call.call_id, event)

    def emit(self, key: str, event_id: str | None = None, **payload) -> tuple[str, asyncio.Future]:
        """Publish one event; its id and the future that is done once it is durable."""
        event = codec.make_event(self.gateway_id, event_id=event_id, **payload)
        return event.event_id, self.sink.publish(self.topic, key, event)

    async def durable(self, published: asyncio.Future) -> None:
        """Wait until a published event is durable. Past the bound the caller answers 503 rather than a success
        whose record could still be lost; the event itself stays queued and is delivered when it can be."""
        try:
            await asyncio.wait_for(asyncio.shield(published), self.durable_timeout_s)
        except TimeoutError:
            raise GatewayError(503, f"the call could not be recorded within {self.durable_timeout_s:g}s; try again",
                               "service_unavailable", code="recording_unavailable") from None
