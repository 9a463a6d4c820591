"""Built-in reward functions, TRL style: `fn(prompts, completions, **context) -> list[float | None]`.

One entry per sample; None means "does not apply" (the pipeline then leaves the component out). Per-sample context
is a list as long as `completions`. The keys a rollout supplies are built by lightwire.plugins.interface.reward_context:

- reference: dict, the task's reference data (e.g. {"answer": 42})
- agent_rewards: list[float], rewards the agent reported for the whole rollout, in arrival order
- feedback: list[float], external feedback values (users, labelers)
- latencies_ms: list[float], latency of each LLM call
- tool_results: list[bool], one per tool span, True when the tool succeeded
- attributions: list[str], the error classes attributed to the rollout
- calls / spans: the CallView / SpanView objects (local rewards only: they do not cross the Reward service)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from lightwire.answer_format import ANSWER_LINE

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def _per_sample(completions: Sequence[str], key: str, context: dict) -> list:
    values = context.get(key)
    if values is None:
        return [None] * len(completions)
    values = list(values)
    if len(values) != len(completions):
        raise ValueError(f"context {key!r} has {len(values)} entries for {len(completions)} completions; give one per sample")
    return values


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".")


def _reference_answer(ref) -> object | None:
    return ref.get("answer") if isinstance(ref, dict) else None


def last_number(text: str) -> float | None:
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def exact_match(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """1.0 when the completion equals the reference answer (case, outer spacing and a final period ignored)."""
    out: list[float | None] = []
    for c, ref in zip(completions, _per_sample(completions, "reference", context)):
        answer = _reference_answer(ref)
        out.append(None if answer is None else float(_normalise(c) == _normalise(str(answer))))
    return out


def numeric_match(prompts: Sequence[str], completions: Sequence[str], tolerance: float = 1e-6,
                  relative_tolerance: float = 0.0, **context) -> list[float | None]:
    """1.0 when the last number in the completion equals the numeric reference answer within the tolerances.

    The last number, because models reason first and conclude last ("40 + 2 = 42").
    """
    out: list[float | None] = []
    for c, ref in zip(completions, _per_sample(completions, "reference", context)):
        try:
            expected = float(str(_reference_answer(ref)).replace(",", ""))
        except ValueError:  # no answer, or not a number: this reward does not judge it
            out.append(None)
            continue
        got = last_number(c)
        out.append(float(got is not None and math.isclose(got, expected, abs_tol=float(tolerance), rel_tol=float(relative_tolerance))))
    return out


def task_completion(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """The agent's own verdict: the last reward it reported for the whole rollout."""
    return [float(r[-1]) if r else None for r in _per_sample(completions, "agent_rewards", context)]


def tool_success_rate(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Share of tool calls that succeeded; None when no tool ran. Reads `tool_results`, else the tool `spans`."""
    if context.get("tool_results") is not None:
        results = _per_sample(completions, "tool_results", context)
    else:
        results = [None if spans is None else [not s.failed for s in spans if s.kind == "tool"]
                   for spans in _per_sample(completions, "spans", context)]
    return [sum(map(bool, r)) / len(r) if r else None for r in results]


def latency_penalty(prompts: Sequence[str], completions: Sequence[str], budget_ms: float = 10_000.0, **context) -> list[float | None]:
    """0 within the budget, down to -1 at twice the budget: -(total - budget) / budget, clipped.

    Reads `latencies_ms`, else the `calls`; None without any call.
    """
    if context.get("latencies_ms") is not None:
        latencies = _per_sample(completions, "latencies_ms", context)
    else:
        latencies = [None if calls is None else [c.latency_ms for c in calls] for calls in _per_sample(completions, "calls", context)]
    budget = float(budget_ms)
    return [None if not ms else -min(1.0, max(0.0, (sum(ms) - budget) / budget)) for ms in latencies]


def format_validity(prompts: Sequence[str], completions: Sequence[str], pattern: str = ANSWER_LINE, **context) -> list[float | None]:
    """1.0 when the completion states its result in the expected format (default: an 'Answer: <number>' line).

    A task's reference may carry its own regex as {"format": "..."}; it wins over `pattern`.
    """
    out: list[float | None] = []
    for c, ref in zip(completions, _per_sample(completions, "reference", context)):
        regex = ref.get("format") if isinstance(ref, dict) and ref.get("format") else pattern
        out.append(float(re.search(regex, c, re.IGNORECASE) is not None))
    return out


def brevity(prompts: Sequence[str], completions: Sequence[str], budget_chars: float = 200.0, **context) -> list[float | None]:
    """Prefers short answers: 1 - len(completion) / budget_chars, clipped to [0, 1] (empty scores 1, the budget 0).

    Characters, not tokens, so it needs nothing but the text and means the same under any tokenizer.
    """
    budget = float(budget_chars)
    if budget <= 0:
        raise ValueError(f"budget_chars must be > 0, got {budget_chars}")
    return [max(0.0, 1.0 - len(c) / budget) for c in completions]


def numeric_closeness(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Partial credit for a near miss: 1 - |got - expected| / max(1, |expected|), clipped to [0, 1], for the last number.

    0 without a number; None without a numeric reference. Denser than numeric_match, so a GRPO group whose members
    are all wrong still has a gradient towards the right answer.
    """
    out: list[float | None] = []
    for c, ref in zip(completions, _per_sample(completions, "reference", context)):
        try:
            expected = float(str(_reference_answer(ref)).replace(",", ""))
        except ValueError:
            out.append(None)
            continue
        got = last_number(c)
        out.append(0.0 if got is None else max(0.0, 1.0 - abs(got - expected) / max(1.0, abs(expected))))
    return out


def user_feedback(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Mean of the external feedback values; None without feedback."""
    return [sum(f) / len(f) if f else None for f in _per_sample(completions, "feedback", context)]


# Graceful degradation: how bad each failure is, so that, added to a correctness reward (0 for a wrong answer),
# a crash scores below a wrong but well-formed answer. Upstream errors are the serving stack's fault, not the policy's.
SEVERITY = {"agent_crash": 1.0, "loop": 0.75, "context_overflow": 0.5, "invalid_tool_json": 0.5, "code_syntax_error": 0.5,
            "timeout": 0.5, "tool_exception": 0.25, "upstream_error": 0.0}
UNKNOWN_SEVERITY = 0.5


def graceful_degradation(prompts: Sequence[str], completions: Sequence[str], **context) -> list[float | None]:
    """Minus the worst attributed failure's severity: 0 when nothing failed, -1 for a crash."""
    return [None if classes is None else -max((SEVERITY.get(c, UNKNOWN_SEVERITY) for c in classes), default=0.0)
            for classes in _per_sample(completions, "attributions", context)]
