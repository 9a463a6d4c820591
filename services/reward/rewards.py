"""Built-in reward functions, TRL style: `fn(prompts, completions, **context) -> list[float | None]`.

One entry per sample; None means "does not apply" (the pipeline then leaves the component out). Context keys a
rollout supplies (see services/collector/finalize.py): reference (dict), agent_rewards (list[float]), feedback
(list[float]), calls (list[CallView]), attributions (list[str] error classes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

RewardFn = Callable[..., list[float | None]]

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*[:=]\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _per_sample(completions: Sequence[str], key: str, context: dict) -> list:
    values = context.get(key)
    if values is None:
        return [None] * len(completions)
    return list(values)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".")


def last_number(text: str) -> float | None:
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def exact_match(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """1.0 when the completion equals the reference answer (case and spacing ignored)."""
    refs = _per_sample(completions, "reference", context)
    return [None if not ref or "answer" not in ref else float(_normalise(c) == _normalise(str(ref["answer"])))
            for c, ref in zip(completions, refs)]


def numeric_match(prompts: Sequence[str], completions: Sequence[str], tolerance: float = 1e-6, **context) -> list[float | None]:
    """1.0 when the last number in the completion equals the reference answer within a tolerance."""
    refs = _per_sample(completions, "reference", context)
    out: list[float | None] = []
    for c, ref in zip(completions, refs):
        if not ref or "answer" not in ref:
            out.append(None)
            continue
        got = last_number(c)
        out.append(float(got is not None and math.isclose(got, float(ref["answer"]), abs_tol=tolerance)))
    return out


def task_completion(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """The agent's own verdict: the last reward it reported for the whole rollout."""
    return [float(r[-1]) if r else None for r in _per_sample(completions, "agent_rewards", context)]


def tool_success_rate(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Share of tool spans that succeeded; None when no tool ran."""
    out: list[float | None] = []
    for spans in _per_sample(completions, "spans", context):
        tools = [s for s in (spans or []) if s.kind == "tool"]
        out.append(None if not tools else sum(1 for s in tools if not (s.error_type or s.error_message)) / len(tools))
    return out


def latency_penalty(prompts: Sequence[str], completions: Sequence[str], budget_ms: float = 10_000.0, **context) -> list[float | None]:
    """0 within the budget, down to -1 at twice the budget: -(total - budget) / budget, clipped."""
    out: list[float | None] = []
    for calls in _per_sample(completions, "calls", context):
        if not calls:
            out.append(None)
            continue
        total = sum(c.latency_ms for c in calls)
        out.append(-min(1.0, max(0.0, (total - budget_ms) / budget_ms)))
    return out


def format_validity(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """1.0 when the completion states its result on an 'Answer: <number>' line."""
    return [float(bool(ANSWER_LINE.search(c))) for c in completions]


def user_feedback(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Mean of the external feedback values; None without feedback."""
    return [sum(f) / len(f) if f else None for f in _per_sample(completions, "feedback", context)]


# Graceful degradation: how bad each failure is, so a crash scores below a wrong but well-formed answer.
SEVERITY = {"agent_crash": 1.0, "loop": 0.75, "context_overflow": 0.5, "invalid_tool_json": 0.5, "code_syntax_error": 0.5,
            "tool_exception": 0.25, "timeout": 0.5, "upstream_error": 0.0}


def graceful_degradation(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Minus the worst failure's severity (0 when nothing failed); upstream errors are not the policy's fault."""
    return [-max((SEVERITY.get(c, 0.5) for c in classes), default=0.0) for classes in _per_sample(completions, "attributions", context)]


BUILTIN_REWARDS: dict[str, RewardFn] = {
    "exact_match": exact_match,
    "numeric_match": numeric_match,
    "task_completion": task_completion,
    "tool_success_rate": tool_success_rate,
    "latency_penalty": latency_penalty,
    "format_validity": format_validity,
    "user_feedback": user_feedback,
    "graceful_degradation": graceful_degradation,
}
