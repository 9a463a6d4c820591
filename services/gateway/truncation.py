"""Cutting an event down to what Kafka takes: an LlmCall loses its request/response JSON (replaced by a marker that
says so), then its texts, keeping the token ids and logprobs that training needs."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from lightwire.runtime import codec
from lightwire.v1 import events_pb2

HEADERS = [("content-type", codec.CONTENT_TYPE)]
_KEPT_ERROR_CHARS = 4096


def record_size(key: bytes | None, value: bytes) -> int:
    """The size aiokafka checks against max_request_size."""
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, HEADERS)


def _marker(field: str, original: str, reason: str) -> str:
    return orjson.dumps({"lightwire_truncated": True, "field": field, "original_chars": len(original), "reason": reason}).decode()


def truncated(event: events_pb2.Event, fits: Callable[[events_pb2.Event], bool], reason: str) -> events_pb2.Event | None:
    """A smaller copy of `event` that `fits`, or None. Only an LlmCall can be cut: first its request/response JSON
    (replaced by a {"lightwire_truncated": true, ...} marker) and error text, then its completion texts; its token
    ids and logprobs, what training needs, are kept whole."""
    if event.WhichOneof("payload") != "llm_call":
        return None
    small = events_pb2.Event()
    small.CopyFrom(event)
    call = small.llm_call
    for field in ("request_json", "response_json"):
        value = getattr(call, field)
        if value and len(value) > 256:
            setattr(call, field, _marker(field, value, reason))
    if len(call.error_message) > _KEPT_ERROR_CHARS:
        call.error_message = call.error_message[:_KEPT_ERROR_CHARS] + " [truncated]"
    if fits(small):
        return small
    for completion in call.completions:
        completion.text = ""
        completion.tool_calls_json = ""
    return small if fits(small) else None
