"""`lightwire serve gateway`: the OpenAI HTTP API and the AgentHub gRPC service over one event recorder."""

from __future__ import annotations

import asyncio

import grpc
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from lightwire.runtime.kafka import EventProducer
from lightwire.runtime.lifecycle import instance_name, run_service
from lightwire.runtime.ops import serve_app
from lightwire.v1 import agent_hub_pb2_grpc
from services.gateway.agent_hub import AgentHub
from services.gateway.app import build_app
from services.gateway.recorder import Recorder
from services.gateway.serving import Serving
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import InferenceUpstream


async def serve(settings: GatewaySettings, stop: asyncio.Event) -> None:
    names = settings.topic_names()
    keys = frozenset(k.strip() for k in settings.api_keys.split(",") if k.strip())
    gateway_id = instance_name("gateway", settings)
    upstream = InferenceUpstream(settings.gateway_upstream, settings.gateway_upstream_timeout_s)
    model = (await upstream.health()).model
    tasks = AIOKafkaConsumer(names.tasks, bootstrap_servers=settings.kafka_bootstrap, group_id=f"{settings.topic_prefix}gateway",
                             enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1)
    async with EventProducer(settings.kafka_bootstrap, gateway_id, dead_letter_topic=names.dead_letter) as producer:
        await tasks.start()
        recorder = Recorder(producer, names.rollout_events, gateway_id)
        hub = AgentHub(recorder, tasks, settings.public_url(), keys, settings.gateway_acquire_wait_ms)
        server = grpc.aio.server()
        agent_hub_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
        server.add_insecure_port(f"{settings.gateway_host}:{settings.gateway_grpc_port}")
        await server.start()

        async def health() -> dict:
            return {"model": model, "upstream": settings.gateway_upstream, "active_rollouts": len(hub.active)}

        try:
            app = build_app(Serving(upstream, recorder, model), keys, CollectorRegistry(), health)
            await serve_app(app, settings.gateway_host, settings.gateway_http_port, stop)
        finally:
            await server.stop(grace=5)
            await tasks.stop()
            await upstream.close()


def main() -> None:
    settings = GatewaySettings()
    run_service("gateway", settings, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
