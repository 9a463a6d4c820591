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


async def test_an_agent_exception_is_reported_with_type_message_and_stack_after_the_calls_it_made():
    hub = FakeHub(tasks(2))
    server, port = await serve(hub)

    def parse_tool_output(text: str) -> int:
        return int(text)

    def agent(rollout):
        rollout.calls = 3  # as if its client had counted three LLM calls
        rollout.emit_span("lookup", kind="tool", attributes={"q": "x"})
        if rollout.input["i"] == 0:
            parse_tool_output("not a number")

    try:
        stats = await asyncio.wait_for(Worker(agent, target=f"127.0.0.1:{port}", max_tasks=2, poll_wait_ms=100).run(), 20)
    finally:
        await server.stop(None)
    assert (stats.succeeded, stats.failed) == (1, 1)
    crash = [s for s in hub.spans if s.kind == "error"]
    assert [s.rollout_id for s in crash] == ["r-t0"] and crash[0].after_seq == 3
    assert crash[0].error.type == "ValueError" and "not a number" in crash[0].error.message
    assert "in parse_tool_output" in crash[0].error.stack
    failed = {f.rollout_id: f for f in hub.finished}
    assert failed["r-t0"].status == ev_pb.ROLLOUT_STATUS_FAILED and failed["r-t0"].error.type == "ValueError"
    assert failed["r-t1"].status == ev_pb.ROLLOUT_STATUS_SUCCEEDED
    assert sorted((s.rollout_id, s.name, s.attributes["q"]) for s in hub.spans if s.kind == "tool") == [("r-t0", "lookup", "x"), ("r-t1", "lookup", "x")]


async def test_stopping_lets_running_rollouts_finish_and_takes_no_new_task():
    hub = FakeHub(tasks(3))
    server, port = await serve(hub)
    stop = asyncio.Event()

    async def agent(rollout):
        stop.set()  # the shutdown request arrives while this rollout runs
        await asyncio.sleep(0.3)
        await rollout.aemit_reward(1.0)

    try:
        stats = await asyncio.wait_for(Worker(agent, target=f"127.0.0.1:{port}", poll_wait_ms=100).run(stop), 20)
    finally:
        await server.stop(None)
    assert stats.succeeded == 1 and [f.rollout_id for f in hub.finished] == ["r-t0"] and len(hub.tasks) == 2


async def test_stopping_while_the_gateway_is_away_returns_without_waiting_for_it():
    server, port = await serve(FakeHub([]))
    await server.stop(None)
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(lambda r: None, target=f"127.0.0.1:{port}", poll_wait_ms=100, reconnect_max_s=0.2).run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    stats = await asyncio.wait_for(worker, 5)
    assert stats.finished == 0


async def test_the_rollout_decorator_keeps_functions_callable_and_serves_them():
    from lightwire_client import rollout

    @rollout(max_tasks=1, poll_wait_ms=100)
    def plain(r):
        r.emit_reward(2.0)
        return "plain"

    @rollout
    async def coroutine(r):
        await r.aemit_reward(3.0)
        return "async"

    class Fake:
        def emit_reward(self, value):
            self.value = value

        async def aemit_reward(self, value):
            self.value = value

    assert plain(Fake()) == "plain" and await coroutine(Fake()) == "async"
    hub = FakeHub(tasks(2))
    server, port = await serve(hub)
    try:
        first = await asyncio.wait_for(plain.worker(target=f"127.0.0.1:{port}").run(), 20)
        second = await asyncio.wait_for(coroutine.worker(target=f"127.0.0.1:{port}", max_tasks=1, poll_wait_ms=100).run(), 20)
    finally:
        await server.stop(None)
    assert first.succeeded == second.succeeded == 1
    assert sorted(r.value for r in hub.rewards) == [2.0, 3.0]


async def test_a_rollout_running_while_the_gateway_restarts_is_still_finished():
    hub = FakeHub(tasks(1))
    server, port = await serve(hub)
    restarted = asyncio.Event()

    async def agent(rollout):
        await server.stop(None)  # the gateway goes away while the agent works...
        asyncio.get_running_loop().call_later(0.5, restarted.set)
        await asyncio.sleep(0.1)

    async def restart():
        await restarted.wait()
        return (await serve(hub, port))[0]  # ...and comes back on the same address

    back = asyncio.create_task(restart())
    try:
        stats = await asyncio.wait_for(Worker(agent, target=f"127.0.0.1:{port}", max_tasks=1, poll_wait_ms=100, reconnect_max_s=0.2).run(), 20)
    finally:
        await (await back).stop(None)
    assert stats.succeeded == 1 and [(f.rollout_id, f.status) for f in hub.finished] == [("r-t0", ev_pb.ROLLOUT_STATUS_SUCCEEDED)]


class _SilentStub:
    """A stub whose calls never answer and ignore their gRPC deadline: what the Worker saw once from FinishRollout."""

    def __getattr__(self, method):
        async def never(request, metadata=(), timeout=None):
            await asyncio.Event().wait()
        return never


async def test_every_hub_call_honours_its_deadline_even_when_grpc_does_not():
    from lightwire_client.hub import AgentHubClient

    client = AgentHubClient("127.0.0.1:1", timeout_s=0.2)
    client._stub = _SilentStub()
    calls = {
        "finish": lambda: client.finish("r", ev_pb.ROLLOUT_STATUS_SUCCEEDED, 1),
        "start": lambda: client.start("r", "w"),
        "reward": lambda: client.reward(ev_pb.RolloutReward(value=1.0)),
        "span": lambda: client.span(ev_pb.AgentSpan()),
        "heartbeat": lambda: client.heartbeat("w", ["r"]),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call(), 5.0)  # the guard: without the client's deadline this is a TimeoutError
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, name
    # AcquireTask's deadline is its long-poll wait plus the timeout; a silent hub reads as "no task".
    assert await asyncio.wait_for(client.acquire("w", (), wait_ms=100), 5.0) is None
