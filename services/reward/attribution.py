"""Error attribution: every failure of a rollout classified and attached to the step (call seq) where it happened.

Attributors are plain callables `(RolloutView) -> list[Attribution]`, registered by name in the `lightwire.attributors`
entry point group (these built-ins in pyproject.toml, like any third-party one). Step 0 means "before the first call". A failure the reporter already
classified (ErrorInfo.error_class) is attributed to that class by the attributor that owns it, never guessed again.
"""

from __future__ import annotations

import ast
import json
import re


from lightwire.v1 import events_pb2
from lightwire.error_classes import (
    AGENT_CRASH,
    CODE_SYNTAX_ERROR,
    CONTEXT_OVERFLOW,
    CONTEXT_OVERFLOW_WORDS,
    INVALID_TOOL_JSON,
    LOOP,
    TAXONOMY,
    TIMEOUT,
    TOOL_EXCEPTION,
    UPSTREAM_ERROR,
)
from lightwire.plugins.rollout_view import CallView, RolloutView

CODE_BLOCK = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
LOOP_REPEATS = 3
NO_TOOL_CALLS = json.dumps([])  # the signature of a call without tool calls


def _a(error_class: str, step: int, message: str, attributor: str, stack: str = "") -> events_pb2.Attribution:
    # Bounded evidence: an attribution is analytics, not a log store.
    return events_pb2.Attribution(error_class=error_class, step=step, message=message[:2000], stack=stack[:8000], attributor=attributor)


def _reported(view: RolloutView, error_class: str, attributor: str) -> list[events_pb2.Attribution]:
    """Errors the agent reported with this class (any span kind, or the finish error)."""
    found = [_a(error_class, s.after_seq, f"{s.name}: {s.error_type}: {s.error_message}", attributor, s.error_stack)
             for s in view.spans if s.error_class == error_class]
    error = view.finish_error
    if error is not None and error.error_class == error_class:
        found.append(_a(error_class, view.last_seq, f"{error.type}: {error.message}", attributor, error.stack))
    return found


def upstream_errors(view: RolloutView) -> list[events_pb2.Attribution]:
    """Model/serving failures: the gateway's error class, or any 5xx that is not a timeout (504) or overflow."""
    return [
        _a(UPSTREAM_ERROR, c.seq, c.error_message or f"HTTP {c.http_status}", "upstream_errors")
        for c in view.calls
        if c.error_class == UPSTREAM_ERROR
        or (c.http_status >= 500 and c.error_class not in TAXONOMY and not (c.http_status == 504 and not c.error_class))
    ]


def timeouts(view: RolloutView) -> list[events_pb2.Attribution]:
    found = [_a(TIMEOUT, c.seq, c.error_message or "the model call timed out", "timeouts")
             for c in view.calls if c.error_class == TIMEOUT or (not c.error_class and c.http_status == 504)]
    found += _reported(view, TIMEOUT, "timeouts")
    if view.timed_out or view.status == events_pb2.ROLLOUT_STATUS_TIMED_OUT:
        found.append(_a(TIMEOUT, view.last_seq, "the rollout timed out: no finish, or calls it declared never arrived", "timeouts"))
    return found


def tool_exceptions(view: RolloutView) -> list[events_pb2.Attribution]:
    """Failed tool spans, attached to the call after which the tool ran (the one that asked for it)."""
    found = [
        _a(TOOL_EXCEPTION, s.after_seq, f"{s.name}: {s.error_type}: {s.error_message}", "tool_exceptions", s.error_stack)
        for s in view.spans
        if s.kind == "tool" and s.failed and s.error_class in ("", TOOL_EXCEPTION)
    ]
    return found + [a for a in _reported(view, TOOL_EXCEPTION, "tool_exceptions")
                    if not any(f.step == a.step and f.message == a.message for f in found)]


def bad_tool_json(tool_calls_json: str) -> str | None:
    """Why OpenAI-style `tool_calls` JSON (a list of {"function": {"name", "arguments": "<json>"}}) is unusable, or None."""
    if not tool_calls_json:
        return None
    try:
        calls = json.loads(tool_calls_json)
        if not isinstance(calls, list):
            return "tool_calls is not a list"
        for call in calls:
            arguments = call["function"]["arguments"]
            # Some servers hand arguments over already parsed; only text needs to parse.
            if isinstance(arguments, str):
                json.loads(arguments)
            elif not isinstance(arguments, dict):
                return f"tool call arguments are a {type(arguments).__name__}, not a JSON object"
    except json.JSONDecodeError as exc:
        return f"tool call arguments are not valid JSON: {exc}"
    except (KeyError, TypeError) as exc:
        return f"tool call is missing its function or arguments: {exc!r}"
    return None


def invalid_tool_json(view: RolloutView) -> list[events_pb2.Attribution]:
    found = []
    for c in view.calls:
        reason = "the model's tool call did not parse" if c.tool_call_parse_error else bad_tool_json(c.tool_calls_json)
        if reason:
            found.append(_a(INVALID_TOOL_JSON, c.seq, f"{reason}: {c.completion_text[:300]}", "invalid_tool_json", c.tool_calls_json))
    return found


def code_syntax_errors(view: RolloutView) -> list[events_pb2.Attribution]:
    """Python code blocks the model wrote that do not parse (compile-time only: nothing is executed)."""
    found = []
    for c in view.calls:
        if "```" not in c.completion_text:  # most completions hold no fence: skip the regex
            continue
        for block in CODE_BLOCK.findall(c.completion_text):
            try:
                ast.parse(block)
            except SyntaxError as exc:
                found.append(_a(CODE_SYNTAX_ERROR, c.seq, f"line {exc.lineno}: {exc.msg}", "code_syntax_errors", block))
    return found


def _tool_call_signature(tool_calls_json: str) -> str:
    """Tool calls without their ids (fresh on every call), so that repeating the same call is recognised."""
    if not tool_calls_json:
        return NO_TOOL_CALLS
    try:
        calls = json.loads(tool_calls_json) if tool_calls_json else []
        return json.dumps([(c["function"]["name"], c["function"]["arguments"]) for c in calls], sort_keys=True)
    except (json.JSONDecodeError, KeyError, TypeError):
        return tool_calls_json


def _loop_key(c: CallView) -> tuple[str, str, str]:
    return c.agent_name, c.completion_text.strip(), _tool_call_signature(c.tool_calls_json)


def loops(view: RolloutView, repeats: int = LOOP_REPEATS) -> list[events_pb2.Attribution]:
    """The same completion (text and tool calls) `repeats` times in a row: attached to the call that reaches the count.

    Failed calls break a run: identical empty answers to repeated upstream errors are not the policy looping.
    """
    found, run, previous = [], 0, None
    for c in view.calls:
        key = None if c.failed else _loop_key(c)
        run = run + 1 if key is not None and key == previous else 1
        previous = key
        if run == repeats:
            what = c.completion_text[:200] or c.tool_calls_json[:200]
            found.append(_a(LOOP, c.seq, f"{repeats} identical calls in a row: {what}", "loops"))
    return found


def context_overflow(view: RolloutView) -> list[events_pb2.Attribution]:
    """The prompt no longer fits: the gateway says so, a 400 names the context, or generation stopped for length
    without producing a single token (the prompt filled the window)."""
    found = []
    for c in view.calls:
        if (c.error_class == CONTEXT_OVERFLOW or (c.http_status == 400 and CONTEXT_OVERFLOW_WORDS.search(c.error_message or ""))
                or (not c.failed and c.finish_reason == "length" and c.completion_tokens == 0)):
            message = c.error_message or f"prompt of {c.prompt_tokens} tokens left no room"
            found.append(_a(CONTEXT_OVERFLOW, c.seq, message, "context_overflow"))
    return found


def agent_crash(view: RolloutView) -> list[events_pb2.Attribution]:
    """The rollout FAILED because the agent itself broke: its finish error, or its non-tool error spans, unless the
    reporter classified them as something else (a tool exception, a timeout)."""
    if view.status != events_pb2.ROLLOUT_STATUS_FAILED:
        return []
    found = [
        _a(AGENT_CRASH, s.after_seq, f"{s.name}: {s.error_type}: {s.error_message}", "agent_crash", s.error_stack)
        for s in view.spans
        if s.kind != "tool" and s.failed and s.error_class in ("", AGENT_CRASH)
    ]
    error = view.finish_error
    if error is not None and (error.type or error.message) and error.error_class in ("", AGENT_CRASH):
        # The same exception is often reported twice (an error span, then the finish): keep the span's step.
        if not any(error.message and error.message in a.message for a in found):
            found.append(_a(AGENT_CRASH, view.last_seq, f"{error.type}: {error.message}", "agent_crash", error.stack))
    if error is None and not any(s.failed for s in view.spans):
        found.append(_a(AGENT_CRASH, view.last_seq, "the rollout failed without reporting an error", "agent_crash"))
    return found
