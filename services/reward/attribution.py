"""Error attribution: every failure of a rollout classified and attached to the step (call seq) where it happened.

Attributors are plain callables `(RolloutView) -> list[Attribution]`, registered by name (built-ins here, more through
the `lightwire.attributors` entry point group). Step 0 means "before the first call".
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable

from lightwire.v1 import events_pb2
from services.reward.rollout_view import RolloutView

UPSTREAM_ERROR = "upstream_error"
TIMEOUT = "timeout"
TOOL_EXCEPTION = "tool_exception"
INVALID_TOOL_JSON = "invalid_tool_json"
CODE_SYNTAX_ERROR = "code_syntax_error"
LOOP = "loop"
CONTEXT_OVERFLOW = "context_overflow"
AGENT_CRASH = "agent_crash"
TAXONOMY = (UPSTREAM_ERROR, TIMEOUT, TOOL_EXCEPTION, INVALID_TOOL_JSON, CODE_SYNTAX_ERROR, LOOP, CONTEXT_OVERFLOW, AGENT_CRASH)

Attributor = Callable[[RolloutView], list[events_pb2.Attribution]]

CODE_BLOCK = re.compile(r"```(?:python|py)\s*\n(.*?)```", re.DOTALL)
CONTEXT_WORDS = re.compile(r"context (length|window)|too long|maximum context", re.IGNORECASE)
LOOP_REPEATS = 3


def _a(error_class: str, step: int, message: str, attributor: str, stack: str = "") -> events_pb2.Attribution:
    return events_pb2.Attribution(error_class=error_class, step=step, message=message[:2000], stack=stack[:8000], attributor=attributor)


def upstream_errors(view: RolloutView) -> list[events_pb2.Attribution]:
    return [
        _a(UPSTREAM_ERROR, c.seq, c.error_message or f"HTTP {c.http_status}", "upstream_errors")
        for c in view.calls
        if c.error_class == UPSTREAM_ERROR or (c.http_status >= 500 and c.error_class not in (TIMEOUT, CONTEXT_OVERFLOW))
    ]


def timeouts(view: RolloutView) -> list[events_pb2.Attribution]:
    found = [_a(TIMEOUT, c.seq, c.error_message or "the model call timed out", "timeouts")
             for c in view.calls if c.error_class == TIMEOUT or c.http_status == 504]
    if view.timed_out:
        last = view.calls[-1].seq if view.calls else 0
        found.append(_a(TIMEOUT, last, "the rollout timed out: no finish, or calls it declared never arrived", "timeouts"))
    return found


def tool_exceptions(view: RolloutView) -> list[events_pb2.Attribution]:
    return [
        _a(TOOL_EXCEPTION, s.after_seq, f"{s.name}: {s.error_type}: {s.error_message}".strip(), "tool_exceptions", s.error_stack)
        for s in view.spans
        if s.kind == "tool" and (s.error_type or s.error_message)
    ]


def _bad_tool_json(tool_calls_json: str) -> str | None:
    if not tool_calls_json:
        return None
    try:
        calls = json.loads(tool_calls_json)
        for call in calls:
            json.loads(call["function"]["arguments"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return f"tool call arguments are not valid JSON: {exc}"
    return None


def invalid_tool_json(view: RolloutView) -> list[events_pb2.Attribution]:
    found = []
    for c in view.calls:
        reason = "the model's tool call did not parse" if c.tool_call_parse_error else _bad_tool_json(c.tool_calls_json)
        if reason:
            found.append(_a(INVALID_TOOL_JSON, c.seq, f"{reason}: {c.completion_text[:300]}", "invalid_tool_json"))
    return found


def code_syntax_errors(view: RolloutView) -> list[events_pb2.Attribution]:
    found = []
    for c in view.calls:
        for block in CODE_BLOCK.findall(c.completion_text):
            try:
                ast.parse(block)
            except SyntaxError as exc:
                found.append(_a(CODE_SYNTAX_ERROR, c.seq, f"line {exc.lineno}: {exc.msg}", "code_syntax_errors", block))
    return found


def loops(view: RolloutView) -> list[events_pb2.Attribution]:
    """The same completion (text and tool calls) LOOP_REPEATS times in a row: attached where the repetition starts counting."""
    found, run, previous = [], 0, None
    for c in view.calls:
        key = (c.agent_name, c.completion_text.strip(), c.tool_calls_json)
        run = run + 1 if key == previous else 1
        previous = key
        if run == LOOP_REPEATS:
            found.append(_a(LOOP, c.seq, f"{LOOP_REPEATS} identical calls in a row: {c.completion_text[:200]}", "loops"))
    return found


def context_overflow(view: RolloutView) -> list[events_pb2.Attribution]:
    return [
        _a(CONTEXT_OVERFLOW, c.seq, c.error_message or "prompt longer than the model's context", "context_overflow")
        for c in view.calls
        if c.error_class == CONTEXT_OVERFLOW or (c.http_status == 400 and CONTEXT_WORDS.search(c.error_message or ""))
    ]


def agent_crash(view: RolloutView) -> list[events_pb2.Attribution]:
    """The agent itself failed: a failed finish with an error, or an error span that is not a tool's."""
    last = view.calls[-1].seq if view.calls else 0
    found = [
        _a(AGENT_CRASH, s.after_seq, f"{s.error_type}: {s.error_message}", "agent_crash", s.error_stack)
        for s in view.spans
        if s.kind != "tool" and (s.error_type or s.error_message)
    ]
    error = view.finish_error
    if view.status == events_pb2.ROLLOUT_STATUS_FAILED and error is not None and (error.type or error.message):
        if error.error_class not in ("", AGENT_CRASH):
            return found
        if not any(a.message == f"{error.type}: {error.message}" for a in found):
            found.append(_a(AGENT_CRASH, last, f"{error.type}: {error.message}", "agent_crash", error.stack))
    return found


BUILTIN_ATTRIBUTORS: dict[str, Attributor] = {
    "upstream_errors": upstream_errors,
    "timeouts": timeouts,
    "tool_exceptions": tool_exceptions,
    "invalid_tool_json": invalid_tool_json,
    "code_syntax_errors": code_syntax_errors,
    "loops": loops,
    "context_overflow": context_overflow,
    "agent_crash": agent_crash,
}


def attribute_all(view: RolloutView, attributors: Iterable[Attributor]) -> list[events_pb2.Attribution]:
    """Run every attributor; one attribution per (class, step, message), ordered by step."""
    seen, out = set(), []
    for attributor in attributors:
        for a in attributor(view):
            key = (a.error_class, a.step, a.message)
            if key not in seen:
                seen.add(key)
                out.append(a)
    return sorted(out, key=lambda a: (a.step, a.error_class))
