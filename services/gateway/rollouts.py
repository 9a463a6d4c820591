"""The rollouts one gateway supervises: handed out or started, alive while signs of life come.

A heartbeat, any AgentHub call naming the rollout, or an LLM call through its URL keeps it alive. A rollout
silent for longer than the timeout is finished as ROLLOUT_STATUS_TIMED_OUT and, when its task came from the
pool and attempts are left, the task is published to lw.tasks again with attempt + 1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lightwire.runtime import codec
from lightwire.v1 import events_pb2
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.task_pool import PooledTask, TaskPool

log = logging.getLogger(__name__)


@dataclass
class ActiveRollout:
    rollout_id: str
    task: events_pb2.Task
    pooled: PooledTask | None
    worker_id: str
    started: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    # The prompt policy its first call was served under (None: the agent's own messages), kept for its later calls.
    prompt: object = None
    prompt_pinned: bool = False


def finish_event_id(rollout_id: str) -> str:
    # One finish per rollout: a late FinishRollout after a timeout carries the same id and readers drop it.
    return f"finish-{rollout_id}"


class Rollouts:
    def __init__(self, recorder: Recorder, pool: TaskPool | None, tasks_topic: str, timeout_s: float, max_attempts: int,
                 clock: Callable[[], float] = time.monotonic):
        self.recorder = recorder
        self.pool = pool
        self.tasks_topic = tasks_topic
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.clock = clock
        self.active: dict[str, ActiveRollout] = {}
        self.timed_out = 0
        self.requeued = 0

    def handed_out(self, rollout_id: str, pooled: PooledTask, worker_id: str) -> None:
        self.active[rollout_id] = ActiveRollout(rollout_id, pooled.task, pooled, worker_id, last_seen=self.clock())

    def pinned_prompt(self, rollout_id: str, choose: Callable[[events_pb2.Task], object]):
        """The prompt policy of a rollout this gateway supervises, chosen at its first call; None for any other."""
        rollout = self.active.get(rollout_id)
        if rollout is None:
            return None
        if not rollout.prompt_pinned:
            rollout.prompt, rollout.prompt_pinned = choose(rollout.task), True
        return rollout.prompt

    def touch(self, rollout_id: str) -> bool:
        rollout = self.active.get(rollout_id)
        if rollout is not None:
            rollout.last_seen = self.clock()
        return rollout is not None

    async def start(self, rollout_id: str, worker_id: str, task: events_pb2.Task | None) -> ActiveRollout:
        rollout = self.active.get(rollout_id)
        if rollout is None:  # an agent's own rollout, not from the pool
            rollout = self.active[rollout_id] = ActiveRollout(rollout_id, task or events_pb2.Task(), None, worker_id)
        rollout.last_seen = self.clock()
        if not rollout.started:
            rollout.started = True
            started = events_pb2.RolloutStarted(rollout_id=rollout_id, task=rollout.task, worker_id=worker_id or rollout.worker_id,
                                                gateway_id=self.recorder.gateway_id)
            _, published = self.recorder.emit(rollout_id, f"start-{rollout_id}", rollout_started=started)
            await self.recorder.durable(published)
            if rollout.pooled is not None and self.pool is not None:
                await self.pool.done(rollout.pooled)
        return rollout

    async def finish(self, rollout_id: str, status: int, num_calls: int, error: events_pb2.ErrorInfo | None) -> str:
        rollout = self.active.pop(rollout_id, None)
        task = rollout.task if rollout is not None else events_pb2.Task()
        finished = events_pb2.RolloutFinished(
            rollout_id=rollout_id, status=status, task_id=task.task_id, group_id=task.group_id, error=error,
            # The agent's own count when it knows it, else the calls this gateway served for the rollout.
            num_calls=num_calls or self.recorder.calls_seen(rollout_id),
        )
        event_id, published = self.recorder.emit(rollout_id, finish_event_id(rollout_id), rollout_finished=finished)
        self.recorder.forget(rollout_id)
        if rollout is not None and not rollout.started and rollout.pooled is not None and self.pool is not None:
            await self.pool.done(rollout.pooled)
        await self.recorder.durable(published)
        return event_id

    async def expire(self) -> list[str]:
        """Time out every rollout silent for longer than the timeout; returns their ids."""
        now = self.clock()
        silent = [r for r in self.active.values() if now - r.last_seen > self.timeout_s]
        for rollout in silent:
            await self._time_out(rollout)
        return [r.rollout_id for r in silent]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with asyncio.timeout(min(1.0, self.timeout_s / 4)):
                    await stop.wait()
            except TimeoutError:
                pass
            await self.expire()

    async def _time_out(self, rollout: ActiveRollout) -> None:
        self.timed_out += 1
        self.active.pop(rollout.rollout_id, None)
        task = rollout.task
        error = events_pb2.ErrorInfo(type="RolloutTimeout", message=f"no heartbeat for {self.timeout_s:g}s", error_class="timeout")
        finished = events_pb2.RolloutFinished(rollout_id=rollout.rollout_id, status=events_pb2.ROLLOUT_STATUS_TIMED_OUT, task_id=task.task_id,
                                              group_id=task.group_id, error=error, num_calls=self.recorder.calls_seen(rollout.rollout_id))
        self.recorder.emit(rollout.rollout_id, finish_event_id(rollout.rollout_id), rollout_finished=finished)
        self.recorder.forget(rollout.rollout_id)
        log.warning("rollout timed out", extra={"rollout_id": rollout.rollout_id, "task_id": task.task_id, "attempt": task.attempt})
        if rollout.pooled is None:
            return
        if task.attempt + 1 < self.max_attempts:
            again = events_pb2.Task()
            again.CopyFrom(task)
            again.attempt = task.attempt + 1
            key = task.group_id or task.task_id
            event = codec.make_event(self.recorder.gateway_id, event_id=f"task-{key}-{task.index_in_group}-a{again.attempt}", task=again)
            self.recorder.sink.publish(self.tasks_topic, key, event)
            self.requeued += 1
        else:
            log.warning("task gave up after its last attempt", extra={"task_id": task.task_id, "attempts": self.max_attempts})
        if self.pool is not None:
            await self.pool.done(rollout.pooled)  # re-queued (or given up): the original record is done with
