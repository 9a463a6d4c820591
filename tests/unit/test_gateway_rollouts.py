"""Rollout supervision: start, finish, heartbeat, and the timeout path that re-queues a task with attempt + 1."""

from __future__ import annotations

from aiokafka import TopicPartition

from lightwire.v1 import events_pb2
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.rollouts import Rollouts
from lightwire.services.gateway.task_pool import PooledTask
from testing.recording_sink import RecordingSink


class FakePool:
    def __init__(self):
        self.done_offsets: list[int] = []

    async def done(self, pooled):
        self.done_offsets.append(pooled.offset)


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def setup(max_attempts=3):
    sink, pool, clock = RecordingSink(), FakePool(), Clock()
    rollouts = Rollouts(Recorder(sink, "events", "gw"), pool, "tasks", timeout_s=10, max_attempts=max_attempts, clock=clock)
    return rollouts, sink, pool, clock


def pooled(attempt=0, offset=5) -> PooledTask:
    return PooledTask(events_pb2.Task(task_id="t1", group_id="g1", attempt=attempt, index_in_group=2), TopicPartition("tasks", 0), offset)


def payloads(sink):
    return [(topic, e.WhichOneof("payload")) for topic, _, e in sink.events]


async def test_start_emits_once_and_commits_and_finish_counts_calls():
    rollouts, sink, pool, _ = setup()
    rollouts.handed_out("r1", pooled(), "w")
    await rollouts.start("r1", "w", None)
    await rollouts.start("r1", "w", None)  # a retried RPC
    rollouts.recorder.begin("chat.completions", "r1", "", "{}", False)
    await rollouts.finish("r1", events_pb2.ROLLOUT_STATUS_SUCCEEDED, 0, None)
    assert payloads(sink) == [("events", "rollout_started"), ("events", "rollout_finished")]
    finished = sink.events[1][2]
    assert finished.event_id == "finish-r1" and finished.rollout_finished.num_calls == 1 and finished.rollout_finished.task_id == "t1"
    assert pool.done_offsets == [5] and not rollouts.active


async def test_silent_rollout_times_out_and_its_task_is_requeued_with_the_next_attempt():
    rollouts, sink, pool, clock = setup()
    rollouts.handed_out("r1", pooled(attempt=0), "w")
    await rollouts.start("r1", "w", None)
    clock.now += 8
    assert rollouts.touch("r1")  # a heartbeat
    clock.now += 8
    assert await rollouts.expire() == []
    clock.now += 11
    assert await rollouts.expire() == ["r1"]
    assert payloads(sink)[1:] == [("events", "rollout_finished"), ("tasks", "task")]
    finished, requeued = sink.events[1][2], sink.events[2][2]
    assert finished.event_id == "finish-r1" and finished.rollout_finished.status == events_pb2.ROLLOUT_STATUS_TIMED_OUT
    assert finished.rollout_finished.error.error_class == "timeout"
    assert (requeued.task.task_id, requeued.task.attempt, sink.events[2][1]) == ("t1", 1, "g1")
    assert requeued.event_id == "task-g1-2-a1"
    assert not rollouts.touch("r1") and rollouts.timed_out == 1


async def test_last_attempt_is_not_requeued_and_unstarted_handouts_time_out_too():
    rollouts, sink, pool, clock = setup(max_attempts=2)
    rollouts.handed_out("r1", pooled(attempt=1, offset=9), "w")
    clock.now += 11
    assert await rollouts.expire() == ["r1"]
    assert payloads(sink) == [("events", "rollout_finished")]
    assert pool.done_offsets == [9]


async def test_agent_started_rollouts_are_never_requeued():
    rollouts, sink, pool, clock = setup()
    await rollouts.start("own", "w", events_pb2.Task(task_id="mine"))
    clock.now += 11
    await rollouts.expire()
    assert payloads(sink) == [("events", "rollout_started"), ("events", "rollout_finished")]
    assert sink.events[0][2].rollout_started.task.task_id == "mine"
