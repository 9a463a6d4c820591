"""AgentHub over real gRPC and a real broker: the rollout flow, the timeout and re-queue path, and two gateway
replicas sharing one task pool without handing one task out twice at once."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from lightwire.v1 import agent_hub_pb2 as hub, agent_hub_pb2_grpc, events_pb2 as pb
from testing.gateway_support import gateway_settings, running_gateway
from testing.kafka_reading import read_until_end

pytestmark = pytest.mark.integration
KEY = "hub-key"
AUTH = (("authorization", f"Bearer {KEY}"),)


async def publish_tasks(bootstrap: str, names, tasks: list[pb.Task]) -> None:
    async with EventProducer(bootstrap, "test") as producer:
        await producer.send_many(names.tasks, [(t.group_id, codec.make_event("test", event_id=f"task-{t.group_id}", task=t)) for t in tasks])


async def events_of(bootstrap: str, names, rollout_id: str, until, timeout_s: float = 15.0) -> list[pb.Event]:
    deadline = time.monotonic() + timeout_s
    while True:
        events = [codec.decode(r.value).event for r in await read_until_end(bootstrap, names.rollout_events)]
        mine = [e for e in events if getattr(e, e.WhichOneof("payload")).rollout_id == rollout_id]
        if until(mine) or time.monotonic() > deadline:
            return mine
        await asyncio.sleep(0.2)


async def setup_topics(bootstrap: str, unique: str, partitions: int = 2):
    names = topics.TopicNames(f"gwa{unique}.")
    await ensure_topics(bootstrap, topics.topic_specs(partitions, names))
    return names


def stub_for(settings) -> tuple[grpc.aio.Channel, agent_hub_pb2_grpc.AgentHubStub]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{settings.gateway_grpc_port}")
    return channel, agent_hub_pb2_grpc.AgentHubStub(channel)


async def test_acquire_start_reward_error_finish(bootstrap, unique, tmp_path):
    names = await setup_topics(bootstrap, unique)
    task = pb.Task(task_id=f"t-{unique}", group_id=f"g-{unique}", task_type="math", input_json='{"q": 1}', reference_json='{"a": 2}')
    await publish_tasks(bootstrap, names, [task])
    settings = gateway_settings(bootstrap, names.prefix, tmp_path, api_keys=KEY, gateway_upstream="http://127.0.0.1:1")
    async with running_gateway(settings):
        channel, stub = stub_for(settings)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w", wait_ms=100), metadata=(("authorization", "Bearer no"),))
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as wrong_type:
            await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w", task_types=["other"], wait_ms=300), metadata=AUTH)
        assert wrong_type.value.code() == grpc.StatusCode.NOT_FOUND

        got = await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w", task_types=["math"], wait_ms=10_000), metadata=AUTH, timeout=15)
        rid = got.rollout_id
        assert got.task.task_id == task.task_id and got.task.reference_json == "" and got.base_url.endswith(f"/rollouts/{rid}/v1")
        started = await stub.StartRollout(hub.StartRolloutRequest(rollout_id=rid, worker_id="w"), metadata=AUTH)
        assert started.base_url == got.base_url
        await stub.EmitReward(hub.EmitRewardRequest(reward=pb.RolloutReward(rollout_id=rid, name="score", value=0.75)), metadata=AUTH)
        error = pb.ErrorInfo(type="ValueError", message="bad tool input", stack="Traceback ...")
        await stub.EmitSpan(hub.EmitSpanRequest(span=pb.AgentSpan(rollout_id=rid, span_id="s1", name="calc", kind="tool", error=error)),
                            metadata=AUTH)
        assert (await stub.Heartbeat(hub.HeartbeatRequest(worker_id="w", rollout_ids=[rid, "r-unknown"]), metadata=AUTH)).unknown_rollout_ids == ["r-unknown"]
        await stub.FinishRollout(hub.FinishRolloutRequest(rollout_id=rid, status=pb.ROLLOUT_STATUS_FAILED, num_calls=0, error=error), metadata=AUTH)
        assert (await stub.Heartbeat(hub.HeartbeatRequest(worker_id="w", rollout_ids=[rid]), metadata=AUTH)).unknown_rollout_ids == [rid]
        await channel.close()
        events = await events_of(bootstrap, names, rid, lambda es: len(es) >= 4)
    assert [e.WhichOneof("payload") for e in events] == ["rollout_started", "reward", "span", "rollout_finished"]
    started_event, reward, span, finished = events
    assert started_event.rollout_started.task.reference_json == '{"a": 2}' and started_event.rollout_started.worker_id == "w"
    assert (reward.reward.value, reward.reward.source) == (0.75, "agent")
    assert (span.span.error.type, span.span.error.message, span.span.error.stack) == ("ValueError", "bad tool input", "Traceback ...")
    assert finished.rollout_finished.status == pb.ROLLOUT_STATUS_FAILED and finished.rollout_finished.task_id == task.task_id


async def test_a_silent_rollout_times_out_and_its_task_comes_back_until_attempts_run_out(bootstrap, unique, tmp_path):
    names = await setup_topics(bootstrap, unique, partitions=1)
    task = pb.Task(task_id=f"t-{unique}", group_id=f"g-{unique}", task_type="math")
    await publish_tasks(bootstrap, names, [task])
    settings = gateway_settings(bootstrap, names.prefix, tmp_path, gateway_upstream="http://127.0.0.1:1", gateway_heartbeat_timeout_s=1.0,
                                gateway_heartbeat_interval_ms=300, gateway_max_attempts=2)
    async with running_gateway(settings):
        channel, stub = stub_for(settings)
        first = await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w", wait_ms=10_000), timeout=15)
        await stub.StartRollout(hub.StartRolloutRequest(rollout_id=first.rollout_id, worker_id="w"))
        # No heartbeats: the rollout times out and the task comes back as attempt 1, to whoever asks next.
        second = await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w2", wait_ms=10_000), timeout=15)
        assert (second.task.task_id, second.task.attempt) == (task.task_id, 1) and second.rollout_id != first.rollout_id
        await stub.StartRollout(hub.StartRolloutRequest(rollout_id=second.rollout_id, worker_id="w2"))
        for _ in range(4):  # heartbeats keep the second one alive past the timeout
            await asyncio.sleep(0.4)
            assert not (await stub.Heartbeat(hub.HeartbeatRequest(worker_id="w2", rollout_ids=[second.rollout_id]))).unknown_rollout_ids
        # Then it goes silent too: the last attempt is not re-queued.
        with pytest.raises(grpc.aio.AioRpcError) as none_left:
            await stub.AcquireTask(hub.AcquireTaskRequest(worker_id="w3", wait_ms=2500), timeout=5)
        assert none_left.value.code() == grpc.StatusCode.NOT_FOUND
        await channel.close()
        first_events = await events_of(bootstrap, names, first.rollout_id, lambda es: len(es) >= 2)
        second_events = await events_of(bootstrap, names, second.rollout_id, lambda es: len(es) >= 2)
    for events in (first_events, second_events):
        assert [e.WhichOneof("payload") for e in events] == ["rollout_started", "rollout_finished"]
        assert events[1].rollout_finished.status == pb.ROLLOUT_STATUS_TIMED_OUT
    tasks = [codec.decode(r.value).event.task for r in await read_until_end(bootstrap, names.tasks)]
    assert [(t.task_id, t.attempt) for t in tasks] == [(task.task_id, 0), (task.task_id, 1)]


async def until_partitions_split(replicas, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            owned = [(await client.get(s.health_url())).json()["task_partitions"] for s in replicas]
            if all(owned) and sorted(p for ps in owned for p in ps) == [0, 1]:
                return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"the replicas did not split the partitions: {owned}")


async def test_two_gateways_share_one_pool_and_never_hand_out_a_task_twice(bootstrap, unique, tmp_path):
    names = await setup_topics(bootstrap, unique, partitions=2)
    a = gateway_settings(bootstrap, names.prefix, tmp_path / "a", gateway_upstream="http://127.0.0.1:1", gateway_task_prefetch=2)
    b = gateway_settings(bootstrap, names.prefix, tmp_path / "b", gateway_upstream="http://127.0.0.1:1", gateway_task_prefetch=2)
    tasks = [pb.Task(task_id=f"t{i}", group_id=f"g{i}-{unique}", task_type="x") for i in range(12)]
    async with running_gateway(a), running_gateway(b):
        stubs = [stub_for(a), stub_for(b)]
        await until_partitions_split([a, b])
        await publish_tasks(bootstrap, names, tasks)
        handed: list[tuple[str, str]] = []

        async def worker(i: int, stub) -> None:
            while len(handed) < len(tasks):
                try:
                    got = await stub.AcquireTask(hub.AcquireTaskRequest(worker_id=f"w{i}", wait_ms=1000), timeout=5)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.NOT_FOUND
                    continue
                await stub.StartRollout(hub.StartRolloutRequest(rollout_id=got.rollout_id, worker_id=f"w{i}"))
                handed.append((got.task.task_id, "ab"[i % 2]))
                await stub.FinishRollout(hub.FinishRolloutRequest(rollout_id=got.rollout_id, status=pb.ROLLOUT_STATUS_SUCCEEDED))

        await asyncio.wait_for(asyncio.gather(*(worker(i, stubs[i % 2][1]) for i in range(4))), 45)
        for channel, _ in stubs:
            await channel.close()
    task_ids = [t for t, _ in handed]
    assert sorted(task_ids) == sorted(t.task_id for t in tasks), handed
    assert {g for _, g in handed} == {"a", "b"}  # both replicas served from the shared pool
