"""Every LLM call becomes one LlmCall event keyed by its rollout, with a per-rollout sequence number from 1.

Call ids are "<rollout_id>/<seq>" (feedback naming only a call can be routed to its rollout), or
"unattributed/<uuid>" outside any rollout. Event ids are fresh uuids, stable across spool retries.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.spool import EventSink

# Sequence counters of rollouts that never finish are evicted oldest-first beyond this many.
_MAX_TRACKED_ROLLOUTS = 100_000


class Recorder:
    def __init__(self, sink: EventSink, topic: str, gateway_id: str):
        self.sink = sink
        self.topic = topic
        self.gateway_id = gateway_id
        self._seq: OrderedDict[str, int] = OrderedDict()

    def begin(self, endpoint: str, rollout_id: str, agent_name: str, request_json: str, stream: bool) -> events_pb2.LlmCall:
        if rollout_id:
            seq = self._seq.pop(rollout_id, 0) + 1
            self._seq[rollout_id] = seq
            if len(self._seq) > _MAX_TRACKED_ROLLOUTS:
                self._seq.popitem(last=False)
            call_id = f"{rollout_id}/{seq}"
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

    def succeeded(self, call: events_pb2.LlmCall, result, response_json: str, latency_ms: float) -> None:
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
        self.record(call)

    def failed(self, call: events_pb2.LlmCall, error: GatewayError, latency_ms: float, response_json: str = "") -> None:
        call.http_status = error.status
        call.error_class = error.error_class
        call.error_message = error.message
        call.response_json = response_json
        call.latency_ms = latency_ms
        self.record(call)

    def record(self, call: events_pb2.LlmCall) -> None:
        event = codec.make_event(self.gateway_id, llm_call=call)
        self.sink.publish(self.topic, call.rollout_id or call.call_id, event)

    def emit(self, key: str, event_id: str | None = None, **payload) -> str:
        event = codec.make_event(self.gateway_id, event_id=event_id, **payload)
        self.sink.publish(self.topic, key, event)
        return event.event_id
