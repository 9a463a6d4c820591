"""Demonstration selection, the pure part: whole exchanges read back from successful rollouts, candidate sets of them
drawn from a seed, and the choice among scored candidates (in the spirit of DSPy's bootstrap few-shot).

Nothing here does I/O: the optimiser (optimiser.py) runs the rollouts and reads the calls; these functions decide.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

_SYSTEM_ROLES = ("system", "developer")
# What of a message a demonstration keeps: what the chat template renders.
_KEPT = ("role", "content", "tool_calls", "tool_call_id", "name")


@dataclass(frozen=True)
class Demonstration:
    messages: tuple[dict[str, Any], ...]
    rollout_id: str
    reward: float

    @property
    def tool_calls(self) -> int:
        return sum(len(m.get("tool_calls") or ()) for m in self.messages)

    def messages_json(self) -> str:
        return json.dumps(list(self.messages), ensure_ascii=False)


@dataclass
class Candidate:
    """One prompt version under test: its demonstrations and every validation reward it earned."""

    version: int
    demonstrations: tuple[Demonstration, ...]
    rewards: dict[str, float] = field(default_factory=dict)  # validation problem id -> reward
    # Instructions that replace the agent's system message; "" keeps the agent's own.
    system: str = ""
    # The validation rollouts' ids and rewards (a critic reads the failed ones).
    rollouts: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return statistics.fmean(self.rewards.values()) if self.rewards else float("-inf")


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: message[k] for k in _KEPT if message.get(k) not in (None, "", [])}
    if message.get("role") == "assistant":
        out.setdefault("content", message.get("content") or "")
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [{"id": c.get("id"), "type": c.get("type", "function"),
                              "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                             for c in out["tool_calls"]]
    return out


def demonstration_from_calls(calls: list[dict[str, Any]], rollout_id: str, reward: float) -> Demonstration | None:
    """The rollout's whole exchange as the agent held it at its last answered call: that call's messages after the
    system message (the agent's own, never a policy's: request_json is what the agent sent), then the reply it got.
    None when the rollout has no answered chat call."""
    answered = [c for c in calls if c.get("http_status") == 200 and c.get("endpoint") == "chat.completions"]
    if not answered:
        return None
    last = answered[-1]
    try:
        request = json.loads(last["request_json"])
        reply = json.loads(last["response_json"])["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
    while messages and messages[0].get("role") in _SYSTEM_ROLES:
        messages.pop(0)
    if not messages or any(m.get("role") in _SYSTEM_ROLES for m in messages):
        return None
    exchange = tuple(_clean(m) for m in (*messages, reply))
    return Demonstration(exchange, rollout_id, reward)


def candidate_sets(pool: list[Demonstration], k: int, n: int, seed: int) -> list[tuple[Demonstration, ...]]:
    """Up to `n` distinct sets of `k` demonstrations (fewer when the pool is small), the same for the same seed and pool.

    Each set is drawn from the pool in a seeded order; within a set the demonstrations keep the order of the pool as
    given (the caller ranks it), so the prompt does not depend on the draw's order.
    """
    ranked = sorted(pool, key=lambda d: (-d.reward, d.rollout_id))
    if not ranked or k < 1:
        return []
    k = min(k, len(ranked))
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[Demonstration, ...]] = []
    for _ in range(n * 20):  # a small pool has fewer distinct sets than asked for: stop trying after a while
        if len(out) == n:
            break
        picked = sorted(rng.sample(range(len(ranked)), k))
        key = tuple(ranked[i].rollout_id for i in picked)
        if key not in seen:
            seen.add(key)
            out.append(tuple(ranked[i] for i in picked))
    return out


def best(candidates: list[Candidate], baseline: dict[str, float]) -> Candidate | None:
    """The candidate to serve: the highest mean validation reward, ties to the fewer demonstrations (a shorter
    prompt) and then the lower version; None when none beats the agent's own prompt on the same problems."""
    if not candidates:
        return None
    top = max(candidates, key=lambda c: (c.score, -len(c.demonstrations), -c.version))
    floor = statistics.fmean(baseline.values()) if baseline else float("-inf")
    return top if top.score > floor else None
