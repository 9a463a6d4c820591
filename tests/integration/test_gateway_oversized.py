"""One oversized request must not stop the gateway's recording (issue 13 item 2).

Before: a body over ~8 MiB got its answer, but the event built from it was over the producer's size limit; the
sink took that for "Kafka unavailable", spooled it and retried it at the spool's head for ever, so no later call
was ever recorded. Now the body is bounded (413 over LW_GATEWAY_MAX_REQUEST_BYTES), and an event too large for
Kafka by any route goes truncated, so the next call is in Kafka within seconds.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import orjson
import pytest
import uvicorn

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from testing import fake_upstream
from testing.gateway_support import gateway_settings, running_gateway
from testing.kafka_reading import read_until_end
from testing.services_fixtures import free_port

pytestmark = pytest.mark.integration
BIG = 9 << 20


async def calls_in_kafka(bootstrap: str, topic: str, rollout_id: str, expected: int, within_s: float) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        calls = {}
        for record in await read_until_end(bootstrap, topic):
            event = codec.decode(record.value).event
            if event.WhichOneof("payload") == "llm_call" and event.llm_call.rollout_id == rollout_id:
                calls[event.llm_call.seq] = event.llm_call
        if len(calls) >= expected or time.monotonic() > deadline:
            return calls
        await asyncio.sleep(0.2)


@pytest.fixture
async def upstream_port():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake_upstream.make_app(), host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    yield port
    server.should_exit = True
    await task


def chat(content: str) -> bytes:
    return orjson.dumps({"model": "fake-model", "messages": [{"role": "user", "content": content}]})


async def test_a_body_over_the_limit_is_413_and_the_next_call_is_recorded(bootstrap, unique, upstream_port, tmp_path):
    names = topics.TopicNames(f"gwbig{unique}.")
    await ensure_topics(bootstrap, topics.topic_specs(1, names))
    settings = gateway_settings(bootstrap, names.prefix, tmp_path / "gw", gateway_upstream=f"http://127.0.0.1:{upstream_port}")
    assert settings.gateway_max_request_bytes == 8 << 20  # the documented default
    async with running_gateway(settings), httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.gateway_http_port}", timeout=30) as client:
        reply = await client.post("/rollouts/r-big/v1/chat/completions", content=chat("x" * BIG), headers={"content-type": "application/json"})
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
        t0 = time.monotonic()
        assert (await client.post("/rollouts/r-big/v1/chat/completions", json={"model": "fake-model", "messages": [
            {"role": "user", "content": "hi"}]})).status_code == 200
        calls = await calls_in_kafka(bootstrap, names.rollout_events, "r-big", 2, within_s=10)
        took = time.monotonic() - t0
        assert sorted(calls) == [1, 2], f"recorded {sorted(calls)} after {took:.1f}s"
        assert (calls[1].http_status, calls[1].request_json) == (413, "") and calls[2].http_status == 200
        assert (await client.get("/healthz")).json()["kafka"] == "ok"


async def test_an_event_too_large_for_kafka_goes_truncated_and_the_next_call_follows(bootstrap, unique, upstream_port, tmp_path):
    """The body limit raised past the producer's: the 9 MiB call is served, its event cannot go whole."""
    names = topics.TopicNames(f"gwbig2{unique}.")
    await ensure_topics(bootstrap, topics.topic_specs(1, names))
    settings = gateway_settings(bootstrap, names.prefix, tmp_path / "gw", gateway_upstream=f"http://127.0.0.1:{upstream_port}",
                                gateway_max_request_bytes=32 << 20)
    async with running_gateway(settings), httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.gateway_http_port}", timeout=60) as client:
        reply = await client.post("/rollouts/r-huge/v1/chat/completions", content=chat("x" * BIG), headers={"content-type": "application/json"})
        assert reply.status_code == 200
        bad = await client.post("/rollouts/r-huge/v1/chat/completions", content=chat("y" * BIG)[:-1], headers={"content-type": "application/json"})
        assert bad.status_code == 400  # an invalid one, recorded with its body: too large as well
        t0 = time.monotonic()
        assert (await client.post("/rollouts/r-huge/v1/chat/completions", json={"model": "fake-model", "messages": [
            {"role": "user", "content": "hi"}]})).status_code == 200
        calls = await calls_in_kafka(bootstrap, names.rollout_events, "r-huge", 3, within_s=10)
        took = time.monotonic() - t0
        assert sorted(calls) == [1, 2, 3], f"recorded {sorted(calls)} after {took:.1f}s"
        for seq in (1, 2):
            assert json.loads(calls[seq].request_json)["lightwire_truncated"] is True
        assert list(calls[1].completions[0].token_ids) == fake_upstream.TOKEN_IDS and calls[1].prompt_token_ids
        assert calls[2].http_status == 400 and calls[3].http_status == 200 and "hi" in calls[3].request_json
        metrics = (await client.get("/metrics")).text
        assert "lw_gateway_events_truncated 2.0" in metrics and (await client.get("/healthz")).json()["kafka"] == "ok"
    print(f"next call in Kafka {took:.2f}s after it was answered")
