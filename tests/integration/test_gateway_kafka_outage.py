"""Kafka stopped in the middle of a run: calls still succeed; after it restarts every event arrives, once.

The test runs its own broker (the project's KafkaCluster, one node, on its own ports and data directory) so stopping it
cannot disturb the session's shared broker.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import uvicorn

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from lightwire.tools.stack.kafka_broker import KafkaCluster
from lightwire.tools.stack.settings import StackSettings
from testing import fake_upstream
from testing.gateway_support import gateway_settings, running_gateway
from testing.kafka_reading import read_until_end
from testing.services_fixtures import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path):
    port = free_port()
    broker = KafkaCluster(StackSettings(kafka_port=port, kafka_controller_port=free_port(), kafka_bootstrap=f"127.0.0.1:{port}",
                                       state_dir=tmp_path / "kafka"))
    broker.start()
    yield broker
    broker.stop()


async def test_calls_go_on_while_kafka_is_down_and_every_event_arrives_once_after(own_broker, tmp_path):
    bootstrap = own_broker.settings.bootstrap
    names = topics.TopicNames("outage.")
    await ensure_topics(bootstrap, topics.topic_specs(2, names))
    port = free_port()
    upstream = uvicorn.Server(uvicorn.Config(fake_upstream.make_app(), host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    upstream_task = asyncio.create_task(upstream.serve())
    settings = gateway_settings(bootstrap, names.prefix, tmp_path / "gw", gateway_upstream=f"http://127.0.0.1:{port}",
                                gateway_kafka_timeout_s=1.0)
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with running_gateway(settings), httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.gateway_http_port}") as client:
            async def calls(first: int, count: int) -> None:
                for i in range(first, first + count):
                    # Answered once its event is durable: acknowledged by Kafka, or, while Kafka is down, in the spool
                    # (after at most the send timeout for the batch that found Kafka gone).
                    reply = await client.post("/rollouts/r-out/v1/chat/completions", json=body, timeout=10)
                    assert reply.status_code == 200

            await calls(1, 5)
            await asyncio.to_thread(own_broker.stop)
            await calls(6, 10)
            deadline = time.monotonic() + 5
            while (await client.get("/healthz")).json()["kafka"] != "spooling":
                assert time.monotonic() < deadline, "the gateway never noticed Kafka was gone"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # some more time down, then the broker comes back
            await calls(16, 5)
            await asyncio.to_thread(own_broker.start)
            deadline = time.monotonic() + 30
            while (await client.get("/healthz")).json()["kafka"] != "ok" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            records = await read_until_end(bootstrap, names.rollout_events)
    finally:
        upstream.should_exit = True
        await upstream_task
    events = [codec.decode(r.value).event for r in records]
    seqs = sorted(e.llm_call.seq for e in {e.event_id: e for e in events}.values())
    assert seqs == list(range(1, 21))  # every call, each once by event id
    # A batch whose acknowledgement was lost as the broker went down can land twice; readers drop it by event id.
    assert len(events) - 20 <= 2, f"{len(events) - 20} duplicate deliveries"
