"""gRPC `Reward`: scores one rollout with a registered reward function, for judges too slow to run in the collector."""

from __future__ import annotations

import asyncio
import json
import math

import grpc

from lightwire.v1 import reward_pb2, reward_pb2_grpc
from lightwire.plugins.registry import UnknownPlugin, load_reward


class RewardServicer(reward_pb2_grpc.RewardServicer):
    def __init__(self, allowed: frozenset[str] = frozenset()):
        self.allowed = allowed

    async def Score(self, request: reward_pb2.ScoreRequest, context: grpc.aio.ServicerContext) -> reward_pb2.ScoreResponse:
        if self.allowed and request.reward_name not in self.allowed:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"this service does not score {request.reward_name!r}")
        try:
            fn = load_reward(request.reward_name)
        except UnknownPlugin as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        try:
            extra = json.loads(request.context_json) if request.context_json else {}
        except json.JSONDecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"context_json is not JSON: {exc}")
        if not isinstance(extra, dict):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "context_json must be a JSON object")
        params = {k: _number_or_text(v) for k, v in request.params.items()}
        # Reward functions are plain (possibly slow, blocking) callables: keep them off the event loop.
        [value] = await asyncio.to_thread(fn, [request.prompt], [request.completion], **extra, **params)
        if value is None:
            return reward_pb2.ScoreResponse(applies=False)
        if not math.isfinite(value):
            await context.abort(grpc.StatusCode.INTERNAL, f"{request.reward_name} returned {value}")
        return reward_pb2.ScoreResponse(applies=True, value=float(value))


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value
