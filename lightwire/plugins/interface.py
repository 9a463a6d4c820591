"""What a reward function and an attributor are, and what a rollout supplies to them.

Reward functions are TRL style: `fn(prompts, completions, **context) -> list[float | None]`, one entry per sample,
None meaning "does not apply". Attributors are `(RolloutView) -> list[Attribution]`. Both are found by name through
entry points (lightwire.plugins.registry); the built-ins live in the reward service's package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from lightwire.plugins.rollout_view import RolloutView
from lightwire.v1 import events_pb2

RewardFn = Callable[..., list[float | None]]
Attributor = Callable[[RolloutView], list[events_pb2.Attribution]]


def reward_context(view: RolloutView, attribution_classes: Sequence[str]) -> dict:
    """The context one rollout supplies to every reward function (one sample: every list has length 1).

    reference (the task's reference data), agent_rewards, feedback, latencies_ms (one per call), tool_results (one
    bool per tool span), attributions (error classes), calls / spans (views; local rewards only), task_type, rollout_id.
    """
    return {
        "reference": [view.reference],
        "agent_rewards": [list(view.agent_rewards)],
        "feedback": [list(view.feedback)],
        "latencies_ms": [[c.latency_ms for c in view.calls]],
        "tool_results": [[not s.failed for s in view.spans if s.kind == "tool"]],
        "attributions": [list(attribution_classes)],
        "calls": [list(view.calls)],
        "spans": [list(view.spans)],
        "task_type": view.task_type,
        "rollout_id": view.rollout_id,
    }


def attribute_all(view: RolloutView, attributors: Iterable[Attributor]) -> list[events_pb2.Attribution]:
    """Run every attributor; one attribution per (class, step, message), ordered by step then class."""
    seen, out = set(), []
    for attributor in attributors:
        for a in attributor(view):
            key = (a.error_class, a.step, a.message)
            if key not in seen:
                seen.add(key)
                out.append(a)
    return sorted(out, key=lambda a: (a.step, a.error_class))
