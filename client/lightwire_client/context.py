"""The rollout an agent is running: its task, its OpenAI base URL, and the calls that report rewards and spans.

`current_rollout()` finds it from anywhere in the agent's code (a contextvar), so `emit_reward(1.0)` needs no
plumbing through the agent's own functions.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from lightwire_client._gen import events_pb2 as ev_pb
from lightwire_client.hub import AgentHubClient

_CURRENT: contextvars.ContextVar["Rollout | None"] = contextvars.ContextVar("lightwire_rollout", default=None)


@dataclass
class Rollout:
    rollout_id: str
    task: ev_pb.Task
    base_url: str
    api_key: str
    hub: AgentHubClient
    loop: asyncio.AbstractEventLoop
    agent_name: str = ""
    calls: int = 0
    _counted: bool = field(default=False, repr=False)

    @property
    def input(self) -> Any:
        """The task's input, decoded from JSON."""
        return json.loads(self.task.input_json) if self.task.input_json else None

    @property
    def metadata(self) -> Mapping[str, str]:
        return dict(self.task.metadata)

    # -- reporting ---------------------------------------------------------------------------------------------

    def _submit(self, coro) -> None:
        """Run a hub call on the worker's loop from either an async agent or a sync one (in a thread), and wait."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("from async code, use `await rollout.aemit_reward(...)` / `aemit_span(...)`")
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=self.hub.timeout_s + 5)

    def _reward(self, value: float, name: str, call_id: str, comment: str) -> ev_pb.RolloutReward:
        return ev_pb.RolloutReward(rollout_id=self.rollout_id, call_id=call_id, name=name, value=float(value), source="agent", comment=comment)

    def emit_reward(self, value: float, name: str = "agent", call_id: str = "", comment: str = "") -> None:
        self._submit(self.hub.reward(self._reward(value, name, call_id, comment)))

    async def aemit_reward(self, value: float, name: str = "agent", call_id: str = "", comment: str = "") -> None:
        await self.hub.reward(self._reward(value, name, call_id, comment))

    def _span(self, name: str, kind: str, attributes: Mapping[str, Any] | None, error: BaseException | None,
              start_ms: int | None, end_ms: int | None) -> ev_pb.AgentSpan:
        now = int(time.time() * 1000)
        span = ev_pb.AgentSpan(
            rollout_id=self.rollout_id, span_id=uuid.uuid4().hex[:16], name=name, kind=kind,
            start_unix_ms=start_ms or now, end_unix_ms=end_ms or now, after_seq=self.calls, agent_name=self.agent_name,
            attributes={k: str(v) for k, v in (attributes or {}).items()},
        )
        if error is not None:
            span.error.CopyFrom(error_info(error))
        return span

    def emit_span(self, name: str, kind: str = "step", attributes: Mapping[str, Any] | None = None,
                  error: BaseException | None = None, start_ms: int | None = None, end_ms: int | None = None) -> None:
        self._submit(self.hub.span(self._span(name, kind, attributes, error, start_ms, end_ms)))

    async def aemit_span(self, name: str, kind: str = "step", attributes: Mapping[str, Any] | None = None,
                         error: BaseException | None = None, start_ms: int | None = None, end_ms: int | None = None) -> None:
        await self.hub.span(self._span(name, kind, attributes, error, start_ms, end_ms))

    # -- clients for the agent's framework --------------------------------------------------------------------

    def count_call(self, request: httpx.Request) -> None:
        """Counts `request` if it is an LLM call (for clients a framework builds itself, e.g. via a transport hook)."""
        if request.method == "POST" and request.url.path.endswith(("/chat/completions", "/completions")):
            self._counted = True
            self.calls += 1

    def _count(self, response: httpx.Response) -> None:
        self.count_call(response.request)

    async def _acount(self, response: httpx.Response) -> None:
        self._count(response)

    def http_client(self) -> httpx.Client:
        """An httpx client that counts this rollout's LLM calls (so finish can declare them)."""
        self._counted = True
        return httpx.Client(event_hooks={"response": [self._count]}, timeout=600)

    def async_http_client(self) -> httpx.AsyncClient:
        self._counted = True
        return httpx.AsyncClient(event_hooks={"response": [self._acount]}, timeout=600)

    def openai_client(self, **kwargs):
        """`openai.OpenAI` pointed at this rollout."""
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.api_key, http_client=self.http_client(), **kwargs)

    def async_openai_client(self, **kwargs):
        """`openai.AsyncOpenAI` pointed at this rollout."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, http_client=self.async_http_client(), **kwargs)

    def declared_calls(self) -> int:
        """The calls to declare at finish; 0 (the gateway's own count) when the agent used clients we did not make."""
        return self.calls if self._counted else 0


def error_info(error: BaseException) -> ev_pb.ErrorInfo:
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return ev_pb.ErrorInfo(type=type(error).__name__, message=str(error), stack=stack)


def current_rollout() -> Rollout:
    rollout = _CURRENT.get()
    if rollout is None:
        raise RuntimeError("no Lightwire rollout is running here: call this from a function the Worker runs")
    return rollout


def emit_reward(value: float, name: str = "agent", call_id: str = "", comment: str = "") -> None:
    current_rollout().emit_reward(value, name, call_id, comment)


def emit_span(name: str, kind: str = "step", attributes: Mapping[str, Any] | None = None, error: BaseException | None = None) -> None:
    current_rollout().emit_span(name, kind, attributes, error)


def bind(rollout: Rollout) -> contextvars.Token:
    return _CURRENT.set(rollout)


def unbind(token: contextvars.Token) -> None:
    _CURRENT.reset(token)
