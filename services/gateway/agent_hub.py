"""gRPC AgentHub: a thin adapter from the protos to the task pool and the rollout supervisor."""

from __future__ import annotations

import math
import uuid

import grpc

from lightwire.v1 import agent_hub_pb2, agent_hub_pb2_grpc, events_pb2
from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.rollouts import Rollouts
from lightwire.services.gateway.serving_base import ModelCatalog
from lightwire.services.gateway.task_pool import TaskPool

_DEADLINE_MARGIN_S = 0.05  # answer NOT_FOUND just before the caller's deadline rather than let it expire


def new_rollout_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"


class AgentHub(agent_hub_pb2_grpc.AgentHubServicer):
    def __init__(self, pool: TaskPool, rollouts: Rollouts, catalog: ModelCatalog, keys: ApiKeys, public_url: str,
                 default_wait_ms: int, heartbeat_interval_ms: int):
        self.pool = pool
        self.rollouts = rollouts
        self.catalog = catalog
        self.keys = keys
        self.public_url = public_url
        self.default_wait_ms = default_wait_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        if not self.keys.allows_grpc(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key (metadata authorization: Bearer <key>)")

    async def _emit(self, context: grpc.aio.ServicerContext, key: str, **payload) -> agent_hub_pb2.Ack:
        """Publish one event and acknowledge it once it is durable: an Ack means the event will reach Kafka."""
        event_id, published = self.rollouts.recorder.emit(key, **payload)
        try:
            await self.rollouts.recorder.durable(published)
        except GatewayError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        return agent_hub_pb2.Ack(event_id=event_id)

    def base_url(self, rollout_id: str) -> str:
        return f"{self.public_url}/rollouts/{rollout_id}/v1"

    async def AcquireTask(self, request, context):
        await self._check(context)
        wait_s = (request.wait_ms if request.wait_ms > 0 else self.default_wait_ms) / 1000
        remaining = context.time_remaining()
        if remaining is not None:
            wait_s = min(wait_s, max(0.0, remaining - _DEADLINE_MARGIN_S))
        pooled = await self.pool.acquire(set(request.task_types), wait_s)
        if pooled is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no task arrived within the wait")
        rollout_id = new_rollout_id()
        self.rollouts.handed_out(rollout_id, pooled, request.worker_id)
        agent_task = events_pb2.Task()
        agent_task.CopyFrom(pooled.task)
        agent_task.ClearField("reference_json")  # the reference is for rewards, never for the agent
        return agent_hub_pb2.AcquireTaskResponse(task=agent_task, rollout_id=rollout_id, base_url=self.base_url(rollout_id),
                                                 heartbeat_interval_ms=self.heartbeat_interval_ms)

    async def StartRollout(self, request, context):
        await self._check(context)
        rollout_id = request.rollout_id or new_rollout_id()
        try:
            await self.rollouts.start(rollout_id, request.worker_id, request.task if request.HasField("task") else None)
        except GatewayError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        return agent_hub_pb2.StartRolloutResponse(rollout_id=rollout_id, base_url=self.base_url(rollout_id),
                                                  model_version=self.catalog.model_version)

    async def EmitReward(self, request, context):
        await self._check(context)
        reward = request.reward
        if not reward.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reward.rollout_id is required")
        if not math.isfinite(reward.value):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "reward.value must be a finite number")
        if not reward.source:
            reward.source = "agent"
        self.rollouts.touch(reward.rollout_id)
        return await self._emit(context, reward.rollout_id, reward=reward)

    async def EmitSpan(self, request, context):
        await self._check(context)
        span = request.span
        if not span.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "span.rollout_id is required")
        if span.HasField("error") and not span.kind:
            span.kind = "error"
        self.rollouts.touch(span.rollout_id)
        return await self._emit(context, span.rollout_id, span=span)

    async def FinishRollout(self, request, context):
        await self._check(context)
        if not request.rollout_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rollout_id is required")
        if request.num_calls < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "num_calls must be >= 0")
        error = request.error if request.HasField("error") else None
        try:
            event_id = await self.rollouts.finish(request.rollout_id, request.status, request.num_calls, error)
        except GatewayError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        return agent_hub_pb2.Ack(event_id=event_id)

    async def Heartbeat(self, request, context):
        await self._check(context)
        unknown = [r for r in request.rollout_ids if not self.rollouts.touch(r)]
        return agent_hub_pb2.HeartbeatResponse(unknown_rollout_ids=unknown)
