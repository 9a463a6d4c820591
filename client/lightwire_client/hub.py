"""A thin async client of the gateway's AgentHub service: authentication metadata, deadlines, typed calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import grpc

from lightwire_client._gen import agent_hub_pb2 as hub_pb
from lightwire_client._gen import agent_hub_pb2_grpc as hub_grpc
from lightwire_client._gen import events_pb2 as ev_pb


T = TypeVar("T")

# Beyond gRPC's own deadline: the one the client keeps itself, so no call can outlive its deadline by more than this.
DEADLINE_SLACK_S = 1.0


class HubDeadlineExceeded(grpc.aio.AioRpcError):
    """The client's own deadline passed before gRPC's did (a call neither returned nor raised): reported as
    DEADLINE_EXCEEDED, so callers treat it exactly like gRPC's."""

    def __init__(self, method: str, timeout_s: float):
        super().__init__(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                         details=f"{method} got no answer within {timeout_s:.1f}s (client deadline)")


async def within(call: Awaitable[T], timeout_s: float, method: str) -> T:
    """Await a gRPC call under a deadline the client enforces itself. gRPC's deadline was seen not to fire once (a
    FinishRollout hung for over 60 s with a 10 s deadline); this one does whatever the transport does."""
    try:
        return await asyncio.wait_for(call, timeout_s + DEADLINE_SLACK_S)
    except asyncio.TimeoutError:
        raise HubDeadlineExceeded(method, timeout_s) from None


class AgentHubClient:
    def __init__(self, target: str, api_key: str | None = None, timeout_s: float = 10.0):
        self.target = target
        self.timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: hub_grpc.AgentHubStub | None = None

    async def connect(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.target)
        self._stub = hub_grpc.AgentHubStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    @property
    def stub(self) -> hub_grpc.AgentHubStub:
        if self._stub is None:
            raise RuntimeError("AgentHubClient.connect() first")
        return self._stub

    async def _call(self, method: str, request):
        rpc = getattr(self.stub, method)
        return await within(rpc(request, metadata=self._metadata, timeout=self.timeout_s), self.timeout_s, method)

    async def acquire(self, worker_id: str, task_types: tuple[str, ...], wait_ms: int) -> hub_pb.AcquireTaskResponse | None:
        """The next task, or None when none came within wait_ms (the gateway answers NOT_FOUND)."""
        request = hub_pb.AcquireTaskRequest(worker_id=worker_id, task_types=task_types, wait_ms=wait_ms)
        try:
            timeout_s = wait_ms / 1000 + self.timeout_s
            return await within(self.stub.AcquireTask(request, metadata=self._metadata, timeout=timeout_s), timeout_s, "AcquireTask")
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise

    async def start(self, rollout_id: str, worker_id: str, task: ev_pb.Task | None = None) -> hub_pb.StartRolloutResponse:
        request = hub_pb.StartRolloutRequest(rollout_id=rollout_id, worker_id=worker_id, task=task)
        return await self._call("StartRollout", request)

    async def reward(self, reward: ev_pb.RolloutReward) -> None:
        await self._call("EmitReward", hub_pb.EmitRewardRequest(reward=reward))

    async def span(self, span: ev_pb.AgentSpan) -> None:
        await self._call("EmitSpan", hub_pb.EmitSpanRequest(span=span))

    async def finish(self, rollout_id: str, status: int, num_calls: int, error: ev_pb.ErrorInfo | None = None) -> None:
        request = hub_pb.FinishRolloutRequest(rollout_id=rollout_id, status=status, num_calls=num_calls, error=error)
        await self._call("FinishRollout", request)

    async def heartbeat(self, worker_id: str, rollout_ids: list[str]) -> list[str]:
        response = await self._call("Heartbeat", hub_pb.HeartbeatRequest(worker_id=worker_id, rollout_ids=rollout_ids))
        return list(response.unknown_rollout_ids)
