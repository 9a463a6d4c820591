"""A typed, read-only view of one rollout for reward functions and attributors (built from its events)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lightwire.v1 import events_pb2


@dataclass(frozen=True)
class CallView:
    seq: int
    call_id: str
    agent_name: str
    prompt_text: str
    completion_text: str
    tool_calls_json: str
    tool_call_parse_error: bool
    finish_reason: str
    error_class: str
    error_message: str
    http_status: int
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int

    @property
    def failed(self) -> bool:
        return bool(self.error_class) or self.http_status >= 400


@dataclass(frozen=True)
class SpanView:
    kind: str
    name: str
    after_seq: int
    error_type: str
    error_message: str
    error_stack: str
    error_class: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.error_type or self.error_message or self.error_class)


@dataclass(frozen=True)
class RolloutView:
    rollout_id: str
    task_type: str
    input: dict
    reference: dict
    calls: tuple[CallView, ...]
    spans: tuple[SpanView, ...]
    status: int
    timed_out: bool
    finish_error: events_pb2.ErrorInfo | None
    agent_rewards: tuple[float, ...]
    step_rewards: dict[str, float]
    feedback: tuple[float, ...]

    @property
    def final_completion(self) -> str:
        return self.calls[-1].completion_text if self.calls else ""

    @property
    def final_prompt(self) -> str:
        return self.calls[-1].prompt_text if self.calls else ""

    @property
    def last_seq(self) -> int:
        """The step a rollout-level failure is attached to: the last call made, 0 when none was."""
        return self.calls[-1].seq if self.calls else 0


def _json(text: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _prompt_text(request_json: str) -> str:
    """The last user-visible message of the request (what reward functions call the prompt)."""
    request = _json(request_json)
    messages = request.get("messages")
    if isinstance(messages, list) and messages:
        content = messages[-1].get("content") if isinstance(messages[-1], dict) else ""
        return content if isinstance(content, str) else json.dumps(content)
    prompt = request.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


def first_completion(call: events_pb2.LlmCall) -> events_pb2.Completion:
    """The completion with index 0 (the one an agent continues from), whatever order the choices arrived in."""
    completions = call.completions
    if len(completions) == 1:  # the usual single choice: it is the answer whatever its index
        return completions[0]
    for completion in completions:
        if completion.index == 0:
            return completion
    return completions[0] if completions else events_pb2.Completion()


def call_view(c: events_pb2.LlmCall) -> CallView:
    first = first_completion(c)
    # One view per call of every rollout: fill the frozen dataclass directly rather than through its generated
    # __init__ (one object.__setattr__ per field); the result is the same CallView.
    view = object.__new__(CallView)
    view.__dict__.update(
        seq=c.seq, call_id=c.call_id, agent_name=c.agent_name, prompt_text=_prompt_text(c.request_json),
        completion_text=first.text, tool_calls_json=first.tool_calls_json, tool_call_parse_error=first.tool_call_parse_error,
        finish_reason=first.finish_reason, error_class=c.error_class, error_message=c.error_message, http_status=c.http_status,
        latency_ms=c.latency_ms, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
    )
    return view


def span_view(s: events_pb2.AgentSpan) -> SpanView:
    return SpanView(kind=s.kind, name=s.name, after_seq=s.after_seq, error_type=s.error.type, error_message=s.error.message,
                    error_stack=s.error.stack, error_class=s.error.error_class, attributes=dict(s.attributes))


def rollout_view(
    rollout_id: str,
    task: events_pb2.Task,
    calls: list[events_pb2.LlmCall],
    spans: list[events_pb2.AgentSpan],
    rewards: list[events_pb2.RolloutReward],
    feedback: list[events_pb2.Feedback],
    finished: events_pb2.RolloutFinished | None,
    timed_out: bool,
) -> RolloutView:
    # Order by seq, never by arrival: calls may come through several gateway replicas (the collector passes them
    # numbered 1..n in rollout order, rollout_state.in_rollout_order).
    ordered = sorted(calls, key=lambda c: c.seq)
    status = events_pb2.ROLLOUT_STATUS_TIMED_OUT if timed_out else (finished.status if finished else events_pb2.ROLLOUT_STATUS_UNSPECIFIED)
    return RolloutView(
        rollout_id=rollout_id, task_type=task.task_type, input=_json(task.input_json), reference=_json(task.reference_json),
        calls=tuple(call_view(c) for c in ordered), spans=tuple(span_view(s) for s in spans), status=status, timed_out=timed_out,
        finish_error=finished.error if finished is not None and finished.HasField("error") else None,
        agent_rewards=tuple(r.value for r in rewards if not r.call_id and not r.late),
        step_rewards={r.call_id: r.value for r in rewards if r.call_id and not r.late},
        feedback=tuple(f.value for f in feedback),
    )


def rollout_view_from_events(
    calls: list[events_pb2.LlmCall],
    spans: list[events_pb2.AgentSpan],
    finished: events_pb2.RolloutFinished | None,
    timed_out: bool,
) -> RolloutView:
    """The view attributors need, from the events alone (no task, rewards or feedback)."""
    rollout_id = finished.rollout_id if finished is not None and finished.rollout_id else next((c.rollout_id for c in calls), "")
    return rollout_view(rollout_id, events_pb2.Task(), calls, spans, [], [], finished, timed_out)
