"""A weight version announced on lw.weights is loaded by a running inference service and reported by /healthz."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch
from transformers import AutoModelForCausalLM

from lightwire import topics
from testing.services_fixtures import free_port
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from lightwire.v1 import events_pb2
from lightwire.services.inference.main import serve
from lightwire.model_cache import TINY, ensure_model
from lightwire.services.inference.settings import InferenceSettings

pytestmark = pytest.mark.integration




async def served_version(client: httpx.AsyncClient, url: str) -> int:
    try:
        return (await client.get(url)).json().get("model_version", 0)
    except httpx.HTTPError:
        return 0


async def test_announced_weights_are_loaded(bootstrap, unique, tmp_path):
    settings = InferenceSettings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"test.{unique}.",
        inference_model=TINY,
        inference_device="cpu",
        inference_grpc_port=free_port(),
        inference_ops_port=free_port(),
    )
    names = settings.topic_names()
    await ensure_topics(bootstrap, [topics.TopicSpec(names.weights, 1), topics.TopicSpec(names.dead_letter, 1)])
    trained = AutoModelForCausalLM.from_pretrained(ensure_model(TINY, settings.cache_dir))
    with torch.no_grad():
        trained.model.norm.weight.mul_(2.0)
    trained.save_pretrained(tmp_path / "v2")

    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, stop))
    try:
        async with httpx.AsyncClient(timeout=2.0) as client, EventProducer(bootstrap, "test-trainer") as producer:
            for _ in range(200):
                if await served_version(client, settings.health_url()) == 1:
                    break
                await asyncio.sleep(0.1)
            announcement = events_pb2.WeightVersion(model=TINY, version=2, uri=f"file://{tmp_path / 'v2'}", format="full", step=1)
            await producer.send(names.weights, TINY, codec.make_event("test-trainer", weight_version=announcement))
            for _ in range(300):
                if await served_version(client, settings.health_url()) == 2:
                    break
                await asyncio.sleep(0.1)
            assert await served_version(client, settings.health_url()) == 2
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
