"""The Worker: takes tasks from the gateway, runs the agent function once per rollout, finishes each rollout.

N rollouts run at once (`concurrency`); a gateway restart is ridden out with exponential backoff; SIGTERM/SIGINT
stop taking new tasks and let the running ones finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, stop_never, stop_when_event_set, wait_exponential

from lightwire_client._gen import events_pb2 as ev_pb
from lightwire_client.context import Rollout, bind, error_info, unbind
from lightwire_client.hub import AgentHubClient

log = logging.getLogger("lightwire_client")

AgentFn = Callable[[Rollout], Any] | Callable[[Rollout], Awaitable[Any]]


@dataclass(frozen=True)
class WorkerConfig:
    target: str = "127.0.0.1:50052"
    api_key: str = ""
    task_types: tuple[str, ...] = ()
    concurrency: int = 1
    worker_id: str = ""
    poll_wait_ms: int = 2000
    max_tasks: int | None = None
    reconnect_max_s: float = 10.0
    # How long a rollout's start/finish keeps retrying while the gateway is away before the rollout is given up.
    report_retry_s: float = 120.0


@dataclass
class WorkerStats:
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Worker:
    def __init__(self, fn: AgentFn, config: WorkerConfig | None = None, **overrides):
        self.fn = fn
        self.config = config or WorkerConfig(**overrides)
        self.worker_id = self.config.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stats = WorkerStats()
        self._taken = 0
        self._running: dict[str, asyncio.Task] = {}

    async def run(self, stop: asyncio.Event | None = None) -> WorkerStats:
        stop = stop or asyncio.Event()
        hub = AgentHubClient(self.config.target, self.config.api_key or None)
        await hub.connect()
        heartbeat = asyncio.create_task(self._heartbeat(hub, stop))
        try:
            await asyncio.gather(*(self._slot(hub, stop) for _ in range(self.config.concurrency)))
        finally:
            heartbeat.cancel()
            await hub.close()
        return self.stats

    def run_forever(self) -> WorkerStats:
        async def main() -> WorkerStats:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            return await self.run(stop)

        return asyncio.run(main())

    def _quota_left(self) -> bool:
        return self.config.max_tasks is None or self._taken < self.config.max_tasks

    async def _retrying(self, call: Callable[[], Awaitable[Any]], stop: asyncio.Event | None = None, max_s: float | None = None):
        """`call()` until it gets through a gateway restart (backoff up to reconnect_max_s); gives up when `stop` is
        set or after `max_s`, re-raising the last error."""

        give_up = stop_never
        if stop is not None:
            give_up = give_up | stop_when_event_set(stop)  # tenacity only calls is_set(), which asyncio.Event has
        if max_s is not None:
            give_up = give_up | stop_after_delay(max_s)
        async for attempt in AsyncRetrying(retry=retry_if_exception(_transient), wait=wait_exponential(0.2, max=self.config.reconnect_max_s),
                                           stop=give_up, reraise=True):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("retrying the gateway", extra={"attempt": attempt.retry_state.attempt_number})
                return await call()

    async def _slot(self, hub: AgentHubClient, stop: asyncio.Event) -> None:
        while not stop.is_set() and self._quota_left():
            try:
                got = await self._retrying(lambda: hub.acquire(self.worker_id, self.config.task_types, self.config.poll_wait_ms), stop)
            except grpc.aio.AioRpcError:
                if stop.is_set():  # shutting down while the gateway is away: nothing was taken
                    return
                raise
            if got is None or not self._quota_left():
                continue
            self._taken += 1
            task = asyncio.create_task(self._run_one(hub, got))
            self._running[got.rollout_id] = task
            try:
                await task
            except asyncio.CancelledError:
                self.stats.abandoned += 1
            except grpc.aio.AioRpcError as exc:  # the gateway stayed away past report_retry_s: it re-queues the task
                self.stats.abandoned += 1
                log.warning("rollout given up: the gateway did not answer", extra={"rollout_id": got.rollout_id, "code": str(exc.code())})
            finally:
                self._running.pop(got.rollout_id, None)

    async def _run_one(self, hub: AgentHubClient, got) -> None:
        # Reporting ignores the shutdown request (no `stop` here): a rollout that ran is finished, not dropped.
        report = dict(max_s=self.config.report_retry_s)
        started = await self._retrying(lambda: hub.start(got.rollout_id, self.worker_id), **report)
        rollout = Rollout(
            rollout_id=got.rollout_id, task=got.task, base_url=started.base_url or got.base_url,
            api_key=self.config.api_key or "lightwire", hub=hub, loop=asyncio.get_running_loop(),
        )
        token = bind(rollout)
        try:
            if inspect.iscoroutinefunction(self.fn):
                await self.fn(rollout)
            else:
                # A sync agent runs in a thread with the rollout bound there too.
                ctx = contextvars.copy_context()
                await asyncio.to_thread(ctx.run, self.fn, rollout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the agent's failure is data: report it and go on with the next task
            info = error_info(exc)
            self.stats.failed += 1
            self.stats.errors.append(f"{info.type}: {info.message}")
            log.warning("rollout failed", extra={"rollout_id": rollout.rollout_id, "error": info.type})
            crash = ev_pb.AgentSpan(rollout_id=rollout.rollout_id, span_id="crash", name="agent", kind="error",
                                    after_seq=rollout.calls, agent_name=rollout.agent_name, error=info)
            await self._retrying(lambda: hub.span(crash), **report)
            await self._retrying(lambda: hub.finish(rollout.rollout_id, ev_pb.ROLLOUT_STATUS_FAILED, rollout.declared_calls(), info),
                                 **report)
        else:
            self.stats.succeeded += 1
            await self._retrying(lambda: hub.finish(rollout.rollout_id, ev_pb.ROLLOUT_STATUS_SUCCEEDED, rollout.declared_calls()),
                                 **report)
        finally:
            unbind(token)

    async def _heartbeat(self, hub: AgentHubClient, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        while not stop.is_set():
            await asyncio.sleep(interval_s)
            if not self._running:
                continue
            try:
                unknown = await hub.heartbeat(self.worker_id, list(self._running))
            except grpc.aio.AioRpcError:
                continue  # the slot loop handles reconnection; a missed heartbeat is not fatal
            for rollout_id in unknown:
                # The gateway timed this rollout out and re-queued its task: stop working on it.
                task = self._running.get(rollout_id)
                if task is not None:
                    task.cancel()
