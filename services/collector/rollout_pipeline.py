"""The rollout pipeline: assemble micro-batch N+1 while N is being written, and keep writes, states and acks in order.

Why: rollout events are the hot path, and assembling a batch need not wait for the previous batch's sinks.
Correctness still needs offsets to follow the sinks, so writes run one after another in batch order, and each
batch's states are applied and its records acknowledged only after its own write; nothing after a failed batch
is acknowledged.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from lightwire.services.collector.outputs import Outputs, PendingStates


class RolloutPipeline:
    # Rollout micro-batches assembled but not yet written, at most this many, oldest first.
    PIPELINE_DEPTH = 2

    def __init__(self, app, pending: PendingStates, assemble: Callable[[list], Outputs],
                 write: Callable[[Outputs], Awaitable[None]], apply_states: Callable[[Outputs], Awaitable[None]]):
        self.app = app
        self.pending = pending
        self.assemble = assemble
        self.write = write
        self.apply_states = apply_states
        # Agents and the timer interleave at awaits; each step (decide, write, apply state) runs alone.
        self._lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task] = []
        self._failure: BaseException | None = None

    def lock(self) -> asyncio.Lock:
        # Made lazily: it must belong to the worker's loop, which does not exist yet when the app is built.
        self._lock = self._lock or asyncio.Lock()
        return self._lock

    async def submit(self, messages) -> None:
        """Assemble now; write, apply the states and acknowledge `messages` in a task that follows the previous one."""
        pipeline = self._tasks
        while len(pipeline) >= self.PIPELINE_DEPTH:
            await asyncio.shield(pipeline[0])
        if self._failure is not None:
            raise self._failure
        async with self.lock():
            out = self.assemble(messages)
            handle = self.pending.stage(out)
            before = pipeline[-1] if pipeline else None
            task = asyncio.ensure_future(self._write_in_order(before, out, handle, messages))
            pipeline.append(task)
            task.add_done_callback(self._written)

    async def drain(self) -> None:
        """Wait for every batch in flight; raise the first failure, so the caller acknowledges nothing after it."""
        while self._tasks:
            await asyncio.shield(self._tasks[-1])
        if self._failure is not None:
            raise self._failure

    def _written(self, task: asyncio.Task) -> None:
        self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def _write_in_order(self, before: asyncio.Task | None, out: Outputs, handle, messages) -> None:
        if before is not None:
            await asyncio.shield(before)  # raises if it failed: nothing after a failed batch is acknowledged
        if self._failure is not None:
            raise self._failure
        await self.write(out)
        await self.apply_states(out)
        self.pending.applied(handle)
        self.app.ack_many(messages)
