"""The one dead-letter builder and the one decode-or-dead-letter step (lightwire/runtime/dead_letter.py)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from lightwire.runtime import codec
from lightwire.runtime.dead_letter import build_dead_letter, decode_accepted, decode_or_dead_letter
from lightwire.v1 import events_pb2 as pb


@dataclass
class Rec:
    topic: str
    value: bytes | None
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"k"


def event(**payload) -> bytes:
    return codec.encode(codec.make_event("tests", event_id="e1", **payload))


def test_a_dead_letter_copies_the_record_and_has_a_stable_id():
    letter = build_dead_letter(Rec("t.rollout-events", b"\xff"), "bad", consumer="t.collector", source="collector-1")
    assert letter.event_id == "dl-t.rollout-events-2-41-t.collector" and letter.source == "collector-1"
    d = letter.dead_letter
    assert (d.topic, d.partition, d.offset, d.key, d.value, d.reason, d.consumer) == (
        "t.rollout-events", 2, 41, b"k", b"\xff", "bad", "t.collector")
    # The gateway's form: consumer and id tag differ.
    other = build_dead_letter(Rec("t.tasks", b"x", key=None), "bad", consumer="t.gateway", source="gw", id_tag="gateway")
    assert other.event_id == "dl-t.tasks-2-41-gateway" and other.dead_letter.key == b""
    assert codec.decode(codec.encode(letter)).event == letter


def test_a_well_formed_event_of_a_kind_its_topic_does_not_carry_is_rejected_with_the_reason():
    accepts = {"lw.rollout-events": {"llm_call"}, "lw.feedback": {"feedback"}}
    task = Rec("lw.rollout-events", event(task=pb.Task(task_id="t")))
    call = Rec("lw.rollout-events", event(llm_call=pb.LlmCall(rollout_id="r")))
    broken = Rec("lw.rollout-events", b"\xff\x00 not an event")
    plain = Rec("lw.feedback", orjson.dumps({"rollout_id": "r", "value": 1}))
    elsewhere = Rec("lw.other", event(llm_call=pb.LlmCall(rollout_id="r")))
    rejected: list[tuple[Rec, str]] = []
    kept = decode_or_dead_letter([task, call, broken, plain, elsewhere], lambda r, why: rejected.append((r, why)), accepts,
                                 allow_plain_feedback=lambda r: r.topic == "lw.feedback")
    assert [(r, e.WhichOneof("payload")) for r, e in kept] == [(call, "llm_call"), (plain, "feedback")]
    assert [(r, why.split(":")[0]) for r, why in rejected] == [
        (task, "event kind task is not accepted on lw.rollout-events"), (broken, "not a lightwire.v1.Event protobuf"),
        (elsewhere, "event kind llm_call is not accepted on lw.other")]
    # Without `accepts` any kind passes; plain JSON only where allowed.
    assert decode_accepted(task).WhichOneof("payload") == "task"
    assert decode_or_dead_letter([plain], lambda r, why: rejected.append((r, why))) == []
    assert "only accepted on the feedback topic" in rejected[-1][1]
