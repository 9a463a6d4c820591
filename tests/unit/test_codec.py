import orjson
import pytest
from google.protobuf import json_format

from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb
from testing.samples import sample_events, sample_payloads


def test_every_payload_type_has_a_sample():
    payload_fields = {f.name for f in pb.Event.DESCRIPTOR.oneofs_by_name["payload"].fields}
    assert payload_fields == set(sample_payloads())


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.WhichOneof("payload"))
def test_protobuf_round_trip_keeps_every_field(event):
    decoded = codec.decode(codec.encode(event))
    assert not decoded.was_json
    assert decoded.event == event
    assert decoded.event.schema_version == codec.SCHEMA_VERSION


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.WhichOneof("payload"))
def test_json_form_of_an_event_is_accepted(event):
    value = json_format.MessageToJson(event).encode()
    decoded = codec.decode(value)
    assert decoded.was_json and decoded.event == event


def test_plain_json_feedback_becomes_a_feedback_event():
    value = orjson.dumps({"call_id": "r-1/3", "name": "thumbs", "value": 1, "user_id": "u"})
    event = codec.decode(value, allow_plain_feedback=True).event
    assert event.WhichOneof("payload") == "feedback"
    assert event.feedback.call_id == "r-1/3" and event.feedback.value == 1.0 and event.feedback.user_id == "u"
    # The same record delivered twice gets the same event id, so sinks count it once.
    assert codec.decode(value, allow_plain_feedback=True).event.event_id == event.event_id


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty record value"),
        (b"\xff\xff\xff", "not a lightwire.v1.Event protobuf"),
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be an object"),
        (pb.Event(event_id="x").SerializeToString(), "without a payload"),
        (pb.Event(task=pb.Task(task_id="t")).SerializeToString(), "without event_id"),
        (b'{"rollout_id": "r", "value": 1}', "only accepted on the feedback topic"),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(value, reason):
    with pytest.raises(codec.InvalidRecord, match=reason):
        codec.decode(value)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"value": 1}, "exactly one of rollout_id or call_id"),
        ({"rollout_id": "r", "call_id": "c", "value": 1}, "exactly one of rollout_id or call_id"),
        ({"rollout_id": "r", "value": "high"}, "finite number"),
        ({"rollout_id": "r", "value": True}, "finite number"),
        ({"rollout_id": "r", "value": 1, "name": ""}, "non-empty string"),
    ],
)
def test_bad_plain_feedback_is_rejected_with_a_reason(doc, reason):
    with pytest.raises(codec.InvalidRecord, match=reason):
        codec.decode(orjson.dumps(doc), allow_plain_feedback=True)


def test_make_event_needs_exactly_one_payload():
    with pytest.raises(TypeError):
        codec.make_event("x", task=pb.Task(), reward=pb.RolloutReward())
    with pytest.raises(ValueError):
        codec.encode(pb.Event(event_id="x"))
