"""`lightwire serve reward`: the gRPC Reward service with /healthz and /metrics."""

from __future__ import annotations

import asyncio

import grpc
from prometheus_client import CollectorRegistry

from lightwire.runtime.lifecycle import run_service
from lightwire.runtime.ops import serve_ops
from lightwire.v1 import reward_pb2_grpc
from lightwire.services.reward.servicer import RewardServicer
from lightwire.services.reward.settings import RewardSettings


async def serve(settings: RewardSettings, stop: asyncio.Event) -> None:
    allowed = frozenset(settings.reward_functions)
    server = grpc.aio.server()
    reward_pb2_grpc.add_RewardServicer_to_server(RewardServicer(allowed), server)
    server.add_insecure_port(f"{settings.reward_host}:{settings.reward_port}")
    await server.start()

    async def health() -> dict:
        return {"grpc_port": settings.reward_port}

    try:
        await serve_ops(health, CollectorRegistry(), settings.reward_host, settings.reward_ops_port, stop)
    finally:
        await server.stop(grace=5)


def main() -> None:
    settings = RewardSettings()
    run_service("reward", settings, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
