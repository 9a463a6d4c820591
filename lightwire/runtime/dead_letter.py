"""Dead letters: the one place a rejected record becomes a `DeadLetter` event, and the one decode-or-reject step.

A dead letter copies the rejected record whole (topic, partition, offset, key, value) with the reason and the
consumer that rejected it. Its event id is stable, "dl-<topic>-<partition>-<offset>-<tag>", so a re-delivered bad
record yields the same dead letter and readers deduplicate it.

A record is rejected when it does not decode (`codec.decode`'s reason) or when it is a well-formed Event of a kind
its topic does not carry: every consumer names the payload kinds each of its topics accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from lightwire.runtime import codec
from lightwire.v1 import events_pb2


class Record(Protocol):
    """What a dead letter needs of a record: aiokafka's ConsumerRecord and Faust's Message both have it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


R = TypeVar("R")

# Topic name -> the payload kinds (`Event.WhichOneof("payload")`) accepted there.
Accepts = Mapping[str, Collection[str]]


def dead_letter_id(record: Record, tag: str) -> str:
    return f"dl-{record.topic}-{record.partition}-{record.offset}-{tag}"


def build_dead_letter(record: Record, reason: str, *, consumer: str, source: str, id_tag: str | None = None) -> events_pb2.Event:
    """The dead-letter event for `record`: `consumer` is written into it, `id_tag` (default `consumer`) ends its id."""
    letter = events_pb2.DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key or b"",
        value=record.value or b"",
        reason=reason,
        consumer=consumer,
    )
    return codec.make_event(source, event_id=dead_letter_id(record, id_tag or consumer), dead_letter=letter)


def not_accepted_reason(kind: str | None, topic: str) -> str:
    return f"event kind {kind} is not accepted on {topic}"


def decode_accepted(record: Record, accepts: Accepts | None = None, *, allow_plain_feedback: bool = False) -> events_pb2.Event:
    """Decode one record and check its kind against its topic's; raises `codec.InvalidRecord` with the reason.

    With `accepts`, a topic it does not name accepts nothing. Without, any kind is accepted.
    """
    event = codec.decode(record.value, allow_plain_feedback=allow_plain_feedback).event
    if accepts is not None:
        kind = event.WhichOneof("payload")
        if kind not in accepts.get(record.topic, ()):
            raise codec.InvalidRecord(not_accepted_reason(kind, record.topic))
    return event


def decode_or_dead_letter(records: Iterable[R], reject: Callable[[R, str], Any], accepts: Accepts | None = None, *,
                          allow_plain_feedback: bool | Callable[[R], bool] = False) -> list[tuple[R, events_pb2.Event]]:
    """The (record, event) pairs of the records that decode to an accepted kind; `reject(record, reason)` gets the rest.

    `allow_plain_feedback` may be a predicate over the record (e.g. "is it on the feedback topic").
    """
    decoded = []
    plain_for = allow_plain_feedback if callable(allow_plain_feedback) else None
    plain = bool(allow_plain_feedback) if plain_for is None else False
    for record in records:
        if plain_for is not None:
            plain = plain_for(record)
        try:
            decoded.append((record, decode_accepted(record, accepts, allow_plain_feedback=plain)))
        except codec.InvalidRecord as exc:
            reject(record, str(exc))
    return decoded
