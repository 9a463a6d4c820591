"""Pure logic over one rollout's state: apply events once, decide completeness, list what it holds.

A rollout is complete when its finish event arrived and every call it declares has been seen (calls may come
through several gateway replicas and out of order). A call is known by its call id; its place in the rollout is
its start time, then the gateway's seq, never its arrival. A gateway numbers calls from 1 in each run (call ids
"<rollout>/<seq>@<run>"), so a rollout that outlived a gateway restart, or spread over replicas, holds two calls
with one seq: both are kept, and the trajectory numbers its calls 1..n in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightwire.v1 import collector_pb2, events_pb2

ROLLOUT_PAYLOADS = frozenset({"llm_call", "span", "reward", "rollout_started", "rollout_finished", "feedback"})


@dataclass(frozen=True)
class RolloutContents:
    started: events_pb2.RolloutStarted | None
    finished: events_pb2.RolloutFinished | None
    calls: list[events_pb2.LlmCall]
    spans: list[events_pb2.AgentSpan]
    rewards: list[events_pb2.RolloutReward]
    feedback: list[events_pb2.Feedback]


def rollout_key(event: events_pb2.Event) -> str:
    """The rollout an event belongs to ('' when it names none)."""
    kind = event.WhichOneof("payload")
    if kind == "feedback":
        return feedback_rollout_id(event.feedback)
    if kind in ROLLOUT_PAYLOADS:
        return getattr(event, kind).rollout_id
    return ""


def feedback_rollout_id(feedback: events_pb2.Feedback) -> str:
    # Call ids are "<rollout_id>/<seq>@<run>", so feedback naming only a call routes without a lookup.
    if feedback.WhichOneof("target") == "rollout_id":
        return feedback.rollout_id
    call_id = feedback.call_id
    return call_id.rsplit("/", 1)[0] if "/" in call_id else ""


def new_state(rollout_id: str, now_ms: int) -> collector_pb2.RolloutState:
    return collector_pb2.RolloutState(rollout_id=rollout_id, first_seen_unix_ms=now_ms)


def apply(state: collector_pb2.RolloutState, event: events_pb2.Event, now_ms: int, *, check_complete: bool = True) -> bool:
    """Add the event unless it was applied before; returns whether it was new. Released rollouts take nothing.

    A caller applying several events at one `now_ms` may pass check_complete=False and call `mark_complete` once
    after the last: same result, without rescanning the rollout's events for each one.
    """
    if event.event_id in state.seen_event_ids:
        return False
    state.seen_event_ids.append(event.event_id)
    state.last_event_unix_ms = now_ms
    if not state.released:
        state.events.append(event)
        if check_complete:
            mark_complete(state, now_ms)
    return True


def mark_complete(state: collector_pb2.RolloutState, now_ms: int) -> None:
    if not state.released and not state.completed_unix_ms and is_complete(state):
        state.completed_unix_ms = now_ms


def contents(state: collector_pb2.RolloutState) -> RolloutContents:
    started = finished = None
    calls: dict[str, events_pb2.LlmCall] = {}
    spans, rewards, feedback = [], [], []
    for event in state.events:
        kind = event.WhichOneof("payload")
        if kind == "rollout_started":
            started = event.rollout_started
        elif kind == "rollout_finished":
            finished = finished or event.rollout_finished
        elif kind == "llm_call":
            # One call under two event ids would be a gateway bug; keep the first, never both.
            calls.setdefault(event.llm_call.call_id, event.llm_call)
        elif kind == "span":
            spans.append(event.span)
        elif kind == "reward":
            rewards.append(event.reward)
        elif kind == "feedback":
            feedback.append(event.feedback)
    return RolloutContents(started, finished, in_rollout_order(calls.values()), spans, rewards, feedback)


def in_rollout_order(calls) -> list[events_pb2.LlmCall]:
    """Calls by start time, then seq; renumbered 1..n (copies) when their seqs are not that already."""
    ordered = sorted(calls, key=lambda c: (c.started_unix_ms, c.seq, c.call_id))
    if all(c.seq == i for i, c in enumerate(ordered, 1)):
        return ordered
    renumbered = []
    for i, call in enumerate(ordered, 1):
        copy = events_pb2.LlmCall()
        copy.CopyFrom(call)
        copy.seq = i
        renumbered.append(copy)
    return renumbered


def is_complete(state: collector_pb2.RolloutState) -> bool:
    finished = None
    calls = set()
    for event in state.events:
        kind = event.WhichOneof("payload")
        if kind == "rollout_finished" and finished is None:
            finished = event.rollout_finished
        elif kind == "llm_call":
            calls.add(event.llm_call.call_id)
    return finished is not None and len(calls) >= finished.num_calls


def due_for_release(state: collector_pb2.RolloutState, now_ms: int, grace_ms: int, timeout_ms: int,
                    silent_since_ms: int = 0) -> tuple[bool, bool]:
    """(release now?, as timed out?) for an unreleased rollout. Silence counts from its last event, or from
    `silent_since_ms` when that is later (the time this collector took its partition over)."""
    if state.released:
        return False, False
    if state.completed_unix_ms:
        return now_ms - state.completed_unix_ms >= grace_ms, False
    return now_ms - max(state.last_event_unix_ms, silent_since_ms) >= timeout_ms, True


def mark_released(state: collector_pb2.RolloutState, now_ms: int, status: events_pb2.RolloutStatus) -> None:
    """Keep only what recognises re-deliveries: the payloads have gone out in the trajectory."""
    state.released = True
    state.released_unix_ms = now_ms
    state.released_status = status
    del state.events[:]
