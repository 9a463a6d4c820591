"""The Worker against an in-process AgentHub stand-in on a real gRPC server (the gateway's tests cover the real one)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from lightwire_client import Worker, WorkerConfig, current_rollout, emit_reward
from lightwire_client._gen import agent_hub_pb2 as hub_pb
from lightwire_client._gen import agent_hub_pb2_grpc as hub_grpc
from lightwire_client._gen import events_pb2 as ev_pb


class FakeHub(hub_grpc.AgentHubServicer):
    """Hands out the given tasks once each and records what the worker reports."""

    def __init__(self, tasks: list[ev_pb.Task]):
        self.tasks = list(tasks)
        self.started, self.rewards, self.spans, self.finished = [], [], [], []
        self.unknown: set[str] = set()

    async def AcquireTask(self, request, context):
        if not self.tasks:
            await asyncio.sleep(request.wait_ms / 1000)
            await context.abort(grpc.StatusCode.NOT_FOUND, "no task")
        task = self.tasks.pop(0)
        rid = f"r-{task.task_id}"
        return hub_pb.AcquireTaskResponse(task=task, rollout_id=rid, base_url=f"http://gw/rollouts/{rid}/v1", heartbeat_interval_ms=1000)

    async def StartRollout(self, request, context):
        self.started.append(request.rollout_id)
        return hub_pb.StartRolloutResponse(rollout_id=request.rollout_id, base_url=f"http://gw/rollouts/{request.rollout_id}/v1", model_version=1)

    async def EmitReward(self, request, context):
        self.rewards.append(request.reward)
        return hub_pb.Ack()

    async def EmitSpan(self, request, context):
        self.spans.append(request.span)
        return hub_pb.Ack()

    async def FinishRollout(self, request, context):
        self.finished.append(request)
        return hub_pb.Ack()

    async def Heartbeat(self, request, context):
        return hub_pb.HeartbeatResponse(unknown_rollout_ids=[r for r in request.rollout_ids if r in self.unknown])


async def serve(hub: FakeHub, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    hub_grpc.add_AgentHubServicer_to_server(hub, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, port


def tasks(n: int) -> list[ev_pb.Task]:
    return [ev_pb.Task(task_id=f"t{i}", input_json=f'{{"i": {i}}}') for i in range(n)]


async def test_each_task_runs_once_and_finishes_with_its_status_and_reward():
    hub = FakeHub(tasks(4))
    server, port = await serve(hub)

    def agent(rollout):
        if rollout.input["i"] == 2:
            raise ValueError("the agent broke on task 2")
        assert current_rollout() is rollout and rollout.base_url.endswith(f"/rollouts/{rollout.rollout_id}/v1")
        emit_reward(float(rollout.input["i"]))

    try:
        stats = await asyncio.wait_for(Worker(agent, WorkerConfig(target=f"127.0.0.1:{port}", max_tasks=4, poll_wait_ms=100)).run(), 20)
    finally:
        await server.stop(None)
    assert (stats.succeeded, stats.failed) == (3, 1)
    assert sorted(hub.started) == ["r-t0", "r-t1", "r-t2", "r-t3"]
    assert sorted((r.rollout_id, r.value) for r in hub.rewards) == [("r-t0", 0.0), ("r-t1", 1.0), ("r-t3", 3.0)]
    status = {f.rollout_id: f.status for f in hub.finished}
    assert status["r-t2"] == ev_pb.ROLLOUT_STATUS_FAILED and status["r-t3"] == ev_pb.ROLLOUT_STATUS_SUCCEEDED
    failed = next(f for f in hub.finished if f.rollout_id == "r-t2")
    assert failed.error.type == "ValueError" and "task 2" in failed.error.message and "Traceback" in failed.error.stack
    [crash] = hub.spans
    assert crash.kind == "error" and crash.rollout_id == "r-t2"


async def test_async_agents_run_concurrently():
    hub = FakeHub(tasks(4))
    server, port = await serve(hub)
    running, peak = 0, 0

    async def agent(rollout):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.3)
        await rollout.aemit_reward(1.0)
        running -= 1

    try:
        stats = await asyncio.wait_for(Worker(agent, target=f"127.0.0.1:{port}", concurrency=4, max_tasks=4, poll_wait_ms=100).run(), 20)
    finally:
        await server.stop(None)
    assert stats.succeeded == 4 and peak == 4


async def test_the_worker_reconnects_when_the_gateway_comes_back():
    hub = FakeHub(tasks(2))
    server, port = await serve(hub)
    await server.stop(None)  # the gateway is down when the worker starts
    done = []

    def agent(rollout):
        done.append(rollout.rollout_id)

    worker = asyncio.create_task(Worker(agent, target=f"127.0.0.1:{port}", max_tasks=2, poll_wait_ms=100, reconnect_max_s=0.5).run())
    await asyncio.sleep(1.0)
    assert done == []
    server, _ = await serve(hub, port)
    try:
        stats = await asyncio.wait_for(worker, 20)
    finally:
        await server.stop(None)
    assert stats.succeeded == 2 and sorted(done) == ["r-t0", "r-t1"]


async def test_a_rollout_the_gateway_timed_out_is_abandoned():
    hub = FakeHub(tasks(1))
    hub.unknown = {"r-t0"}
    server, port = await serve(hub)

    async def agent(rollout):
        await asyncio.sleep(30)

    try:
        stats = await asyncio.wait_for(Worker(agent, target=f"127.0.0.1:{port}", max_tasks=1, poll_wait_ms=100).run(), 20)
    finally:
        await server.stop(None)
    assert stats.abandoned == 1 and hub.finished == []
