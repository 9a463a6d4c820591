"""Encoding and decoding of `lightwire.v1.Event` records, with a reason for every record that is rejected.

Values on lw.* topics are serialized `Event` protobufs. `decode` also accepts the JSON form of an Event, and
on lw.feedback the plain JSON feedback form, so any producer can send user ratings without our protos.
A JSON record can never be mistaken for a protobuf one: "{" and "[" open deprecated group fields, which
proto3 parsing rejects.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from lightwire.v1 import events_pb2

SCHEMA_VERSION = 1
CONTENT_TYPE = b"application/x-protobuf; message=lightwire.v1.Event"

Event = events_pb2.Event


class InvalidRecord(ValueError):
    """A record that cannot become an Event; the message is the reason written to the dead letter."""


@dataclass(frozen=True)
class DecodedRecord:
    event: Event
    was_json: bool


def new_event_id() -> str:
    return uuid.uuid4().hex


def make_event(source: str, *, event_id: str | None = None, **payload) -> Event:
    """Build an envelope around exactly one payload, e.g. `make_event("gateway-1", llm_call=call)`."""
    if len(payload) != 1:
        raise TypeError(f"an Event carries exactly one payload, got {sorted(payload)}")
    (field_name, message), = payload.items()
    event = Event(
        event_id=event_id or new_event_id(),
        time_unix_ms=int(time.time() * 1000),
        source=source,
        schema_version=SCHEMA_VERSION,
    )
    getattr(event, field_name).CopyFrom(message)
    return event


def encode(event: Event) -> bytes:
    if not event.event_id:
        raise ValueError("an Event needs an event_id: sinks deduplicate on it")
    if event.WhichOneof("payload") is None:
        raise ValueError("an Event needs a payload")
    return event.SerializeToString(deterministic=True)


def decode(value: bytes | None, *, allow_plain_feedback: bool = False) -> DecodedRecord:
    """Parse one record value; raise InvalidRecord with a human-readable reason if it is unusable."""
    if not value:
        raise InvalidRecord("empty record value")
    if value.lstrip()[:1] in (b"{", b"["):
        return DecodedRecord(_decode_json(value, allow_plain_feedback), was_json=True)
    event = Event()
    try:
        event.ParseFromString(value)
    except DecodeError as exc:
        raise InvalidRecord(f"not a lightwire.v1.Event protobuf: {exc}") from None
    _validate(event)
    return DecodedRecord(event, was_json=False)


def _decode_json(value: bytes, allow_plain_feedback: bool) -> Event:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRecord("JSON record must be an object")
    if "event_id" in doc or "eventId" in doc:
        event = Event()
        try:
            json_format.ParseDict(doc, event)
        except json_format.ParseError as exc:
            raise InvalidRecord(f"JSON is not a lightwire.v1.Event: {exc}") from None
        _validate(event)
        return event
    if allow_plain_feedback:
        return feedback_from_json(doc)
    raise InvalidRecord("JSON record has no event_id and plain JSON is only accepted on the feedback topic")


def feedback_from_json(doc: dict) -> Event:
    """The plain feedback form: {"rollout_id" | "call_id", "name", "value", "comment"?, "user_id"?, "feedback_id"?}."""
    rollout_id, call_id = doc.get("rollout_id"), doc.get("call_id")
    if bool(rollout_id) == bool(call_id):
        raise InvalidRecord("feedback must name exactly one of rollout_id or call_id")
    for key, val in (("rollout_id", rollout_id), ("call_id", call_id)):
        if val is not None and not isinstance(val, str):
            raise InvalidRecord(f"feedback {key} must be a string")
    value = doc.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRecord("feedback value must be a finite number")
    name = doc.get("name", "user_feedback")
    if not isinstance(name, str) or not name:
        raise InvalidRecord("feedback name must be a non-empty string")
    feedback = events_pb2.Feedback(
        feedback_id=str(doc.get("feedback_id") or ""),
        name=name,
        value=float(value),
        comment=str(doc.get("comment") or ""),
        user_id=str(doc.get("user_id") or ""),
    )
    if rollout_id:
        feedback.rollout_id = rollout_id
    else:
        feedback.call_id = call_id
    # A producer that sends the same feedback twice with its own id is deduplicated; without one, every
    # record counts once per delivery of this exact content.
    event_id = feedback.feedback_id or uuid.uuid5(uuid.NAMESPACE_URL, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()).hex
    return make_event(str(doc.get("source") or "external"), event_id=f"fb-{event_id}", feedback=feedback)


def _validate(event: Event) -> None:
    if not event.event_id:
        raise InvalidRecord("Event without event_id")
    if event.WhichOneof("payload") is None:
        raise InvalidRecord("Event without a payload (unknown payload type or wrong schema)")
