"""Critique and rewrite, the pure part (in the spirit of APO and GEPA): what a critic model is shown of failed
rollouts, how its proposed instructions are read back, and which candidates stay in the beam.

The critic is any OpenAI-compatible model (the served one through the gateway by default); optimiser.py calls it
and scores what it proposes through the real stack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lightwire.tools.prompts.candidates import Candidate

MAX_INSTRUCTIONS = 1500
_TAGGED = re.compile(r"<instructions>(.*?)(?:</instructions>|$)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Failure:
    """One failed rollout as the critic reads it: the task, what the agent ended with, what went wrong."""

    question: str
    final_reply: str
    errors: tuple[str, ...]
    reward: float


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def failure_from_rollout(detail: dict[str, Any], reward: float) -> Failure | None:
    """A Failure from the collector read API's view of one rollout (its calls and attributed errors)."""
    calls = [c for c in detail.get("calls", []) if c.get("http_status") == 200]
    if not calls:
        return None
    try:
        messages = json.loads(calls[-1]["request_json"]).get("messages", [])
        reply = json.loads(calls[-1]["response_json"])["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    question = next((_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"), "")
    said = _text(reply.get("content"))
    if reply.get("tool_calls"):
        said += " [tool call: " + json.dumps([c.get("function") for c in reply["tool_calls"]]) + "]"
    errors = tuple(f"{e.get('error_class')}: {e.get('message', '')}"[:200] for e in detail.get("errors", []))
    return Failure(question, said.strip(), errors, reward)


def system_of(detail: dict[str, Any]) -> str:
    """The agent's own system message, as its first call sent it ("" when it sent none)."""
    for call in detail.get("calls", []):
        try:
            messages = json.loads(call["request_json"]).get("messages", [])
        except (ValueError, KeyError, TypeError):
            continue
        if messages and isinstance(messages[0], dict) and messages[0].get("role") in ("system", "developer"):
            return _text(messages[0].get("content"))
        return ""
    return ""


def critique_messages(instructions: str, failures: list[Failure]) -> list[dict[str, str]]:
    """The critic's conversation: the agent's instructions, its failures with their attributed errors, and the ask."""
    shown = "\n\n".join(
        f"Task {i + 1}: {f.question}\nThe agent ended with: {f.final_reply or '(nothing)'}\nReward: {f.reward:g}"
        + (f"\nErrors: {'; '.join(f.errors)}" if f.errors else "")
        for i, f in enumerate(failures))
    return [
        {"role": "system", "content": "You improve the instructions of an AI agent so that it solves more of its tasks."},
        {"role": "user", "content": f"The agent's instructions:\n{instructions or '(none)'}\n\nTasks it failed:\n\n{shown}\n\n"
                                    "Say in one sentence what went wrong, then write better instructions for the agent "
                                    "between <instructions> and </instructions>."},
    ]


def parse_instructions(text: str, current: str) -> str | None:
    """The proposed instructions from the critic's reply; None when it proposed nothing usable (empty, too long, or
    the same as the current ones)."""
    match = _TAGGED.search(text or "")
    proposed = (match.group(1) if match else "").strip()
    if not proposed or len(proposed) > MAX_INSTRUCTIONS or proposed == current.strip():
        return None
    return proposed


def keep_beam(candidates: list[Candidate], width: int) -> list[Candidate]:
    """The `width` best-scoring candidates, ties to the lower version (the earlier, simpler one)."""
    return sorted(candidates, key=lambda c: (-c.score, c.version))[:width]
