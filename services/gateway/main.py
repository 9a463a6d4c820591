"""`lightwire serve gateway`: the OpenAI HTTP API and the AgentHub gRPC service over one event sink.

Neither Kafka nor the upstream has to be up for the gateway to start: events wait in the spool, the task pool
keeps reconnecting, and the model name is learned at the first call the upstream answers.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import CollectorRegistry, Gauge

from lightwire.runtime.dead_letter import build_dead_letter
from lightwire.runtime.lifecycle import instance_name, run_service
from lightwire.runtime.ops import serve_app
from lightwire.v1 import agent_hub_pb2_grpc
from lightwire.services.gateway import upstream as upstreams
from lightwire.services.gateway.agent_hub import AgentHub
from lightwire.services.gateway.app import build_app
from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.prompt_listener import PromptListener
from lightwire.services.gateway.prompt_policies import PromptPolicies
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.rollouts import Rollouts
from lightwire.services.gateway.serving_base import ModelCatalog
from lightwire.services.gateway.serving_chat import ChatServing
from lightwire.services.gateway.serving_completions import CompletionServing
from lightwire.services.gateway.settings import GatewaySettings
from lightwire.services.gateway.event_sink import EventSink
from lightwire.services.gateway.task_pool import TaskPool

log = logging.getLogger(__name__)


def _gauges(registry: CollectorRegistry, sink: EventSink, pool: TaskPool, rollouts: Rollouts) -> None:
    Gauge("lw_gateway_events_sent", "Events Kafka acknowledged", registry=registry).set_function(lambda: sink.sent)
    Gauge("lw_gateway_events_spooled", "Events that went through the spool", registry=registry).set_function(lambda: sink.spooled)
    Gauge("lw_gateway_events_truncated", "Events sent cut down: whole they were too large for Kafka", registry=registry).set_function(
        lambda: sink.truncated)
    Gauge("lw_gateway_events_undeliverable", "Events that could never go, even cut down (dead-lettered)",
          registry=registry).set_function(lambda: sink.undeliverable)
    Gauge("lw_gateway_spool_bytes_pending", "Spooled bytes not yet in Kafka", registry=registry).set_function(
        lambda: sink.spool.size - sink.spool.offset)
    Gauge("lw_gateway_active_rollouts", "Rollouts this gateway supervises", registry=registry).set_function(lambda: len(rollouts.active))
    Gauge("lw_gateway_rollouts_timed_out", "Rollouts timed out", registry=registry).set_function(lambda: rollouts.timed_out)
    Gauge("lw_gateway_tasks_requeued", "Tasks re-queued after a timeout", registry=registry).set_function(lambda: rollouts.requeued)
    Gauge("lw_gateway_tasks_buffered", "Tasks held for workers", registry=registry).set_function(lambda: pool.buffered)


async def serve(settings: GatewaySettings, stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
    names = settings.topic_names()
    gateway_id = instance_name("gateway", settings)
    keys = ApiKeys(settings.api_keys)
    upstream = upstreams.connect(settings.gateway_upstream, settings.gateway_upstream_timeout_s,
                                 api_key=settings.gateway_upstream_api_key, model_version=settings.gateway_upstream_model_version)
    catalog = ModelCatalog(upstream, settings.model_aliases())
    try:
        await catalog.refresh()
    except GatewayError as exc:
        log.warning("upstream not answering yet; will ask again at the first call", extra={"error": exc.message})

    sink = EventSink(settings.kafka_bootstrap, settings.spool_dir(), send_timeout_s=settings.gateway_kafka_timeout_s,
                     linger_ms=settings.gateway_kafka_linger_ms, dead_letter_topic=names.dead_letter, source=gateway_id)
    await sink.start()
    recorder = Recorder(sink, names.rollout_events, gateway_id)

    def dead_letter(record, reason: str) -> None:
        letter = build_dead_letter(record, reason, consumer=f"{settings.topic_prefix}gateway", source=gateway_id, id_tag="gateway")
        sink.publish(names.dead_letter, record.key, letter)

    pool = TaskPool(settings.kafka_bootstrap, names.tasks, f"{settings.topic_prefix}gateway", settings.gateway_task_prefetch,
                    on_invalid=dead_letter)
    await pool.start()
    rollouts = Rollouts(recorder, pool, names.tasks, settings.gateway_heartbeat_timeout_s, settings.gateway_max_attempts)
    policies = PromptPolicies(frozenset(settings.gateway_prompt_task_types))
    prompts = PromptListener(policies, settings.kafka_bootstrap, names.prompts, dead_letter)
    await prompts.start()
    supervisor = asyncio.create_task(rollouts.run(stop), name="rollout-supervisor")

    server = grpc.aio.server()
    hub = AgentHub(pool, rollouts, catalog, keys, settings.public_url(), settings.gateway_acquire_wait_ms,
                   settings.gateway_heartbeat_interval_ms)
    agent_hub_pb2_grpc.add_AgentHubServicer_to_server(hub, server)
    if server.add_insecure_port(f"{settings.gateway_host}:{settings.gateway_grpc_port}") == 0:
        raise RuntimeError(f"cannot listen on {settings.gateway_host}:{settings.gateway_grpc_port}")
    await server.start()

    registry = CollectorRegistry()
    _gauges(registry, sink, pool, rollouts)
    Gauge("lw_gateway_prompt_policies_rejected", "Prompt policies dead-lettered", registry=registry).set_function(lambda: prompts.rejected)

    async def health() -> dict:
        return {"model": catalog.name, "upstream": settings.gateway_upstream, "kafka": "ok" if sink.kafka_ok else "spooling",
                "task_pool": "connected" if pool.connected else "connecting",
                "task_partitions": sorted(tp.partition for tp in pool.assignment()), "active_rollouts": len(rollouts.active),
                "prompt_versions": policies.loaded(), "serving_prompt_versions": policies.serving()}

    chat = ChatServing(upstream, recorder, catalog, lambda rollout_id: rollouts.pinned_prompt(rollout_id, policies.choose))
    completions = CompletionServing(upstream, recorder, catalog)
    app = build_app(chat, completions, keys, registry, health, on_rollout_call=rollouts.touch,
                    max_request_bytes=settings.gateway_max_request_bytes)
    if ready is not None:
        ready.set()
    try:
        await serve_app(app, settings.gateway_host, settings.gateway_http_port, stop)
    finally:
        await server.stop(grace=5)
        await asyncio.gather(supervisor, return_exceptions=True)
        await pool.stop()
        await prompts.stop()
        await sink.stop(drain_timeout_s=5)
        await upstream.close()


def main() -> None:
    settings = GatewaySettings()
    loop_factory = None
    if settings.gateway_event_loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    run_service("gateway", settings, lambda stop: serve(settings, stop), loop_factory=loop_factory)


if __name__ == "__main__":
    main()
