"""gRPC AgentHub: tasks from lw.tasks (one consumer group shared by every gateway replica), rollout lifecycle events."""

from __future__ import annotations

import asyncio
import hmac

import grpc
from aiokafka import AIOKafkaConsumer

from lightwire.runtime import codec
from lightwire.v1 import agent_hub_pb2, agent_hub_pb2_grpc, events_pb2
from services.gateway.recorder import Recorder
from services.gateway.serving import new_rollout_id


def authorized(context: grpc.aio.ServicerContext, keys: frozenset[str]) -> bool:
    if not keys:
        return True
    header = dict(context.invocation_metadata() or ()).get("authorization", "")
    token = header.removeprefix("Bearer ").strip()
    return any(hmac.compare_digest(token, k) for k in keys)


class AgentHub(agent_hub_pb2_grpc.AgentHubServicer):
    def __init__(self, recorder: Recorder, tasks: AIOKafkaConsumer, public_url: str, keys: frozenset[str], default_wait_ms: int):
        self.recorder = recorder
        self.tasks = tasks
        self.public_url = public_url
        self.keys = keys
        self.default_wait_ms = default_wait_ms
        self.active: dict[str, events_pb2.Task] = {}
        self._take = asyncio.Lock()

    async def _check(self, context) -> None:
        if not authorized(context, self.keys):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key")

    def base_url(self, rollout_id: str) -> str:
        return f"{self.public_url}/rollouts/{rollout_id}/v1"

    async def AcquireTask(self, request, context):
        await self._check(context)
        wait_ms = request.wait_ms or self.default_wait_ms
        async with self._take:  # one hand-out at a time: a record is never given to two workers
            batch = await self.tasks.getmany(timeout_ms=wait_ms, max_records=1)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                await context.abort(grpc.StatusCode.NOT_FOUND, "no task arrived within the wait")
            record = records[0]
            # At-least-once: committed once handed out; a crash before that hands it out again.
            await self.tasks.commit()
        try:
            event = codec.decode(record.value).event
        except codec.InvalidRecord as exc:
            await context.abort(grpc.StatusCode.INTERNAL, f"a task record could not be read: {exc}")
        rollout_id = new_rollout_id()
        self.active[rollout_id] = event.task
        agent_task = events_pb2.Task()
        agent_task.CopyFrom(event.task)
        agent_task.ClearField("reference_json")  # the reference is for rewards, never for the agent
        return agent_hub_pb2.AcquireTaskResponse(task=agent_task, rollout_id=rollout_id, base_url=self.base_url(rollout_id),
                                                 heartbeat_interval_ms=2000)

    async def StartRollout(self, request, context):
        await self._check(context)
        if not request.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rollout_id is required")
        task = self.active.get(request.rollout_id) or request.task
        self.active[request.rollout_id] = task
        started = events_pb2.RolloutStarted(rollout_id=request.rollout_id, task=task, worker_id=request.worker_id,
                                            gateway_id=self.recorder.gateway_id)
        await self.recorder.emit(request.rollout_id, f"start-{request.rollout_id}", rollout_started=started)
        return agent_hub_pb2.StartRolloutResponse(rollout_id=request.rollout_id, base_url=self.base_url(request.rollout_id))

    async def EmitReward(self, request, context):
        await self._check(context)
        if not request.reward.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reward.rollout_id is required")
        event_id = await self.recorder.emit(request.reward.rollout_id, codec.new_event_id(), reward=request.reward)
        return agent_hub_pb2.Ack(event_id=event_id)

    async def EmitSpan(self, request, context):
        await self._check(context)
        if not request.span.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "span.rollout_id is required")
        event_id = await self.recorder.emit(request.span.rollout_id, codec.new_event_id(), span=request.span)
        return agent_hub_pb2.Ack(event_id=event_id)

    async def FinishRollout(self, request, context):
        await self._check(context)
        task = self.active.pop(request.rollout_id, events_pb2.Task())
        finished = events_pb2.RolloutFinished(
            rollout_id=request.rollout_id, status=request.status, task_id=task.task_id, group_id=task.group_id,
            # The agent's own count when it knows it, else the calls this gateway served for the rollout.
            num_calls=request.num_calls or self.recorder.calls_seen(request.rollout_id), error=request.error,
        )
        event_id = await self.recorder.emit(request.rollout_id, f"finish-{request.rollout_id}", rollout_finished=finished)
        self.recorder.forget(request.rollout_id)
        return agent_hub_pb2.Ack(event_id=event_id)

    async def Heartbeat(self, request, context):
        await self._check(context)
        return agent_hub_pb2.HeartbeatResponse(unknown_rollout_ids=[r for r in request.rollout_ids if r not in self.active])
