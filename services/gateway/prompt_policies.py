"""Prompt policies: versioned edits of a task type's chat messages, applied by the gateway before the model sees them.

A policy comes from lw.prompts (one PromptPolicy event per version). Validating it (`parse_policy`) is where a bad
one is refused, with a reason the listener dead-letters; applying it (`apply_policy`) is pure and cannot fail.

Which version a call gets (`PromptPolicies.choose`): a task may ask for one by its metadata "lw.prompt_version"
("0": the agent's own messages), which is how an optimiser scores a candidate; otherwise the newest version marked
serving. A rollout keeps the version of its first call (the caller pins it), so a multi-turn exchange never changes
its prompt halfway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from lightwire.v1 import events_pb2
from lightwire.services.gateway.protocol import ChatMessage

VERSION_KEY = "lw.prompt_version"
SYSTEM_MODES = ("keep", "replace", "extend")
_SYSTEM_ROLES = ("system", "developer")


class InvalidPolicy(ValueError):
    """A prompt policy the gateway will not serve; the message is the dead letter's reason."""


@dataclass(frozen=True)
class PromptPolicy:
    task_type: str
    version: int
    system_mode: str
    system: str
    demonstrations: tuple[tuple[ChatMessage, ...], ...]
    serving: bool
    optimiser: str = ""
    score: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.task_type}/{self.version}"


def parse_policy(event: events_pb2.PromptPolicy, task_types: frozenset[str]) -> PromptPolicy:
    """The policy as the gateway serves it, or InvalidPolicy saying what is wrong with it."""
    if not task_types:
        raise InvalidPolicy("prompt policies are off on this gateway: LW_GATEWAY_PROMPT_TASK_TYPES names no task type")
    if event.task_type not in task_types:
        raise InvalidPolicy(f"unknown task type {event.task_type!r}: this gateway serves prompt policies for "
                            f"{', '.join(sorted(task_types))} (LW_GATEWAY_PROMPT_TASK_TYPES)")
    if event.version < 1:
        raise InvalidPolicy(f"prompt version must be 1 or more (0 means the agent's own messages), not {event.version}")
    mode = event.system_mode or "keep"
    if mode not in SYSTEM_MODES:
        raise InvalidPolicy(f"system_mode must be one of {', '.join(SYSTEM_MODES)}, not {event.system_mode!r}")
    if mode != "keep" and not event.system.strip():
        raise InvalidPolicy(f"system_mode {mode!r} needs a non-empty system text")
    demos = tuple(_demonstration(i, d.messages_json) for i, d in enumerate(event.demonstrations))
    return PromptPolicy(event.task_type, event.version, mode, event.system, demos, event.serving, event.optimiser, event.score)


def _demonstration(index: int, messages_json: str) -> tuple[ChatMessage, ...]:
    where = f"demonstrations[{index}]"
    try:
        doc = json.loads(messages_json)
    except json.JSONDecodeError as exc:
        raise InvalidPolicy(f"{where} is not JSON: {exc}") from None
    if not isinstance(doc, list) or not doc:
        raise InvalidPolicy(f"{where} must be a non-empty JSON list of chat messages")
    try:
        messages = tuple(ChatMessage.model_validate(m) for m in doc)
    except ValidationError as exc:
        raise InvalidPolicy(f"{where} holds a message that is not an OpenAI chat message: {exc.errors()[0]['msg']}") from None
    if any(m.role in _SYSTEM_ROLES for m in messages):
        raise InvalidPolicy(f"{where} holds a system message: the policy's system text is the place for instructions")
    return messages


def apply_policy(messages: list[ChatMessage], policy: PromptPolicy) -> list[ChatMessage]:
    """The messages the model sees: the leading system messages edited as the policy says, then its demonstrations,
    then the agent's conversation as it sent it (every later turn, tool results included, untouched)."""
    lead = 0
    while lead < len(messages) and messages[lead].role in _SYSTEM_ROLES:
        lead += 1
    system, rest = list(messages[:lead]), messages[lead:]
    if policy.system_mode == "replace":
        system = [ChatMessage(role="system", content=policy.system)]
    elif policy.system_mode == "extend":
        if system:
            first = system[0]
            system[0] = first.model_copy(update={"content": f"{first.text()}\n\n{policy.system}" if first.text() else policy.system})
        else:
            system = [ChatMessage(role="system", content=policy.system)]
    return [*system, *(m for demo in policy.demonstrations for m in demo), *rest]


class PromptPolicies:
    """Every prompt version this gateway has read, by task type."""

    def __init__(self, task_types: frozenset[str] = frozenset()):
        self.task_types = task_types
        self._versions: dict[str, dict[int, PromptPolicy]] = {}

    def add(self, event: events_pb2.PromptPolicy) -> PromptPolicy:
        """Validate and keep one version; a later record of the same version replaces it (a candidate that was
        chosen is announced again with `serving` set)."""
        policy = parse_policy(event, self.task_types)
        self._versions.setdefault(policy.task_type, {})[policy.version] = policy
        return policy

    def choose(self, task: events_pb2.Task | None) -> PromptPolicy | None:
        """The policy for a rollout of `task`; None: the agent's messages go to the model as they are."""
        if task is None or task.task_type not in self._versions:
            return None
        versions = self._versions[task.task_type]
        asked = task.metadata.get(VERSION_KEY, "")
        if asked:
            try:
                return versions.get(int(asked))
            except ValueError:
                return None  # a malformed request for a version is the agent's own prompt, never a guess
        serving = [v for v, p in versions.items() if p.serving]
        return versions[max(serving)] if serving else None

    def loaded(self) -> dict[str, list[int]]:
        """Task type -> its versions, for /healthz (an optimiser waits there until its candidate is readable)."""
        return {t: sorted(v) for t, v in sorted(self._versions.items())}

    def serving(self) -> dict[str, int]:
        return {t: max((v for v, p in vs.items() if p.serving), default=0) for t, vs in sorted(self._versions.items())}
