"""The shared task pool: lw.tasks consumed in one consumer group by every gateway replica.

Each replica holds at most `prefetch` tasks no worker has asked for yet. A task's offset is committed once it
was handed out and its rollout started (or it was re-queued): at-least-once, so a crashed replica's tasks are
delivered again. A partition's committed offset never passes a task still waiting in some replica's memory.

On a rebalance, a replica drops the tasks it had not handed out (their new owner reads them again) and commits
up to the first of them. Tasks it handed out stay in its care: their rollouts time out and re-queue here.
(One gap stays: a task handed out out of order — a later task matched a worker's task_types first — and not
yet started when its partition moves can be read again by the new owner.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from lightwire.runtime import codec
from lightwire.v1 import events_pb2

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PooledTask:
    task: events_pb2.Task
    tp: TopicPartition
    offset: int


class TaskPool:
    def __init__(self, bootstrap: str, topic: str, group_id: str, prefetch: int = 4, *, on_invalid=None):
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.prefetch = prefetch
        self.on_invalid = on_invalid or (lambda record, reason: None)
        self.connected = False
        self._buffer: list[PooledTask] = []
        self._changed = asyncio.Condition()
        self._outstanding: dict[TopicPartition, set[int]] = {}  # fetched and not yet done, per partition
        self._next: dict[TopicPartition, int] = {}  # one past the highest fetched offset
        self._commit_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-pool")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def acquire(self, task_types: set[str], wait_s: float) -> PooledTask | None:
        """The oldest buffered task of one of `task_types` (any when empty), waiting up to `wait_s` for one."""
        deadline = time.monotonic() + wait_s
        async with self._changed:
            while True:
                for i, pooled in enumerate(self._buffer):
                    if not task_types or pooled.task.task_type in task_types:
                        del self._buffer[i]
                        self._changed.notify_all()  # room for the fetch loop
                        return pooled
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    async with asyncio.timeout(remaining):
                        await self._changed.wait()
                except TimeoutError:
                    return None

    async def done(self, pooled: PooledTask) -> None:
        """The task was handed out and its rollout started (or it was re-queued): its offset may be committed."""
        async with self._commit_lock:
            outstanding = self._outstanding.get(pooled.tp)
            if outstanding is None or pooled.offset not in outstanding:
                return  # its partition moved to another replica meanwhile; committed then
            outstanding.discard(pooled.offset)
            await self._commit(pooled.tp)

    async def _commit(self, tp: TopicPartition) -> None:
        outstanding = self._outstanding.get(tp)
        offset = min(outstanding) if outstanding else self._next.get(tp)
        if offset is None or self._consumer is None:
            return
        try:
            await self._consumer.commit({tp: offset})
        except (KafkaError, AssertionError) as exc:  # a rebalance in progress: the next commit or the new owner covers it
            log.warning("task offset commit failed", extra={"partition": tp.partition, "error": repr(exc)})

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group_id, enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            try:
                consumer.subscribe([self.topic], listener=_Rebalance(self))
                await consumer.start()
                self._consumer, self.connected, backoff = consumer, True, 0.5
                await self._fetch(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: start over; uncommitted tasks come again
                log.warning("task pool lost Kafka; retrying", extra={"error": repr(exc)})
            finally:
                self.connected, self._consumer = False, None
                async with self._changed:
                    self._buffer.clear()
                self._outstanding.clear()
                self._next.clear()
                try:
                    async with asyncio.timeout(5):
                        await consumer.stop()
                except Exception:
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            room = self.prefetch - len(self._buffer)
            assigned = consumer.assignment()
            # Paused partitions still let getmany() run, which keeps this member in the group while the buffer is full.
            if room <= 0:
                consumer.pause(*assigned)
            else:
                consumer.resume(*assigned)
            batches = await consumer.getmany(timeout_ms=200, max_records=max(room, 1))
            fresh: list[PooledTask] = []
            for tp, records in batches.items():
                for record in records:
                    self._next[tp] = record.offset + 1
                    self._outstanding.setdefault(tp, set()).add(record.offset)
                    try:
                        event = codec.decode(record.value).event
                        if event.WhichOneof("payload") != "task":
                            raise codec.InvalidRecord(f"expected a task on {self.topic}, got {event.WhichOneof('payload')}")
                    except codec.InvalidRecord as exc:
                        self.on_invalid(record, str(exc))
                        self._outstanding[tp].discard(record.offset)
                        continue
                    fresh.append(PooledTask(event.task, tp, record.offset))
            if fresh:
                async with self._changed:
                    self._buffer.extend(fresh)
                    self._changed.notify_all()

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._changed:
            dropped = [p for p in self._buffer if p.tp in revoked]
            self._buffer = [p for p in self._buffer if p.tp not in revoked]
        async with self._commit_lock:
            for tp in revoked:
                first_dropped = min((p.offset for p in dropped if p.tp == tp), default=None)
                if first_dropped is not None:
                    self._outstanding[tp] = {first_dropped}
                else:
                    self._outstanding.pop(tp, None)
                await self._commit(tp)
                self._outstanding.pop(tp, None)
                self._next.pop(tp, None)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, pool: TaskPool):
        self.pool = pool

    async def on_partitions_revoked(self, revoked) -> None:
        await self.pool._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        pass
