"""`lightwire serve inference`: the Inference gRPC server, /healthz + /metrics, and the lw.weights listener."""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import CollectorRegistry, Gauge

from lightwire.runtime.grpc_limits import GRPC_MESSAGE_OPTIONS
from lightwire.runtime.lifecycle import instance_name, run_service
from lightwire.runtime.ops import serve_ops
from lightwire.v1 import inference_pb2_grpc
from lightwire.services.inference.engine import Engine
from lightwire.services.inference.servicer import InferenceServicer
from lightwire.services.inference.settings import InferenceSettings
from lightwire.services.inference.weights_listener import run_weights_listener

log = logging.getLogger(__name__)



def build_engine(settings: InferenceSettings) -> Engine:
    """The engine the settings ask for; vLLM's client is imported only when chosen."""
    if settings.inference_engine == "vllm":
        from lightwire.services.inference.vllm_engine import VllmEngine

        return VllmEngine.from_settings(settings)
    from lightwire.services.inference.hf_engine import HfEngine
    from lightwire.model_cache import ensure_model

    model_dir = ensure_model(settings.inference_model, settings.cache_dir)
    return HfEngine(
        model_dir,
        settings.served_name(),
        device=settings.inference_device,
        dtype=settings.inference_dtype,
        max_batch=settings.inference_max_batch,
        batch_wait_s=settings.inference_batch_wait_ms / 1000,
        prefix_cache_entries=settings.inference_prefix_cache_entries,
    )


async def start_grpc(engine: Engine, settings: InferenceSettings, port: int | None = None) -> tuple[grpc.aio.Server, int]:
    """A started grpc.aio server over `engine`; port 0 picks a free one (returned)."""
    server = grpc.aio.server(
        options=GRPC_MESSAGE_OPTIONS
    )
    inference_pb2_grpc.add_InferenceServicer_to_server(InferenceServicer(engine, settings.inference_default_max_tokens), server)
    bound = server.add_insecure_port(f"{settings.inference_grpc_host}:{settings.inference_grpc_port if port is None else port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen on {settings.grpc_target()}")
    await server.start()
    return server, bound


async def serve(settings: InferenceSettings, stop: asyncio.Event, engine: Engine | None = None) -> None:
    """Serve until `stop` is set, then drain in-flight calls and return."""
    engine = engine or await asyncio.to_thread(build_engine, settings)
    await engine.start()
    registry = CollectorRegistry()
    version_gauge = Gauge("lightwire_inference_model_version", "Weight version served", registry=registry)
    stats = getattr(engine, "prefix_stats", None)  # the hf engine's; vLLM caches prefixes itself
    if stats is not None:
        tokens = Gauge("lightwire_inference_prompt_tokens", "Prompt tokens since start, by how their KV was had",
                       ["kv"], registry=registry)
        tokens.labels("prefilled").set_function(lambda: stats.prefilled_tokens)
        tokens.labels("reused").set_function(lambda: stats.reused_tokens)

    async def health() -> dict:
        h = await engine.health()
        version_gauge.set(h.model_version)
        return {"status": h.status, "model": h.model, "model_version": h.model_version, "engine": h.engine, "max_context": h.max_context}

    server, port = await start_grpc(engine, settings)
    log.info("inference serving", extra={"grpc": f"{settings.inference_grpc_host}:{port}", "model": engine.model_name, "engine": engine.name})
    ops = asyncio.create_task(serve_ops(health, registry, settings.inference_ops_host, settings.inference_ops_port, stop))
    listener: asyncio.Task | None = None
    if settings.inference_weights_from_kafka:
        instance = instance_name("inference", settings)
        names = settings.topic_names()
        listener = asyncio.create_task(
            run_weights_listener(
                engine,
                bootstrap=settings.kafka_bootstrap,
                topic=names.weights,
                dead_letter_topic=names.dead_letter,
                group_id=f"{settings.topic_prefix}inference-{instance}",
                served_name=settings.served_name(),
                instance=instance,
                stop=stop,
            )
        )
        listener.add_done_callback(_report_listener_end)
    try:
        await stop.wait()
    finally:
        await server.stop(grace=10)
        if listener is not None:
            listener.cancel()  # it may still be waiting for a broker that never came
        await asyncio.gather(ops, *([listener] if listener else []), return_exceptions=True)
        await engine.close()


def _report_listener_end(task: asyncio.Task) -> None:
    # Without this a dead listener is silent: the service would keep serving and never reload again.
    if not task.cancelled() and task.exception() is not None:
        log.error("weights listener stopped; weights will not reload until restart", exc_info=task.exception())


def main() -> None:
    settings = InferenceSettings()
    run_service("inference", settings, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
