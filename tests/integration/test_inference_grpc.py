"""The Inference gRPC servicer over a real grpc.aio server on 127.0.0.1 with the tiny model, and `serve`."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest
import pytest_asyncio

from testing.services_fixtures import free_port
from lightwire.v1 import inference_pb2, inference_pb2_grpc
from lightwire.services.inference.main import build_engine, serve, start_grpc
from lightwire.services.inference.servicer import ERROR_KIND_KEY
from lightwire.services.inference.settings import InferenceSettings

pytestmark = pytest.mark.integration

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}




def settings(**overrides) -> InferenceSettings:
    return InferenceSettings(inference_model="tiny-llama", inference_device="cpu", inference_weights_from_kafka=False, **overrides)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub():
    s = settings()
    engine = build_engine(s)
    await engine.start()
    server, port = await start_grpc(engine, s, port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield inference_pb2_grpc.InferenceStub(channel)
    await server.stop(grace=None)
    await engine.close()


def chat_request(**kwargs) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(
        messages=[inference_pb2.ChatMessage(role="user", content="What is the weather in Paris?")],
        sampling=inference_pb2.SamplingParams(temperature=0.8, max_tokens=8, seed=3, has_seed=True, n=2),
        request_id="r1",
        **kwargs,
    )


async def test_generate_roundtrip_with_tools(stub):
    tok = await stub.Tokenize(inference_pb2.TokenizeRequest(messages=chat_request().messages, tools_json=json.dumps([WEATHER])))
    assert "<tools>" in tok.text and "get_weather" in tok.text and tok.text.endswith("<|im_start|>assistant\n")

    resp = await stub.Generate(chat_request(tools_json=json.dumps([WEATHER])))
    assert resp.model == "tiny-llama" and resp.model_version == 1
    assert list(resp.prompt_token_ids) == list(tok.token_ids), "prompt ids are exactly the rendered template"
    assert len(resp.completions) == 2
    for c in resp.completions:
        assert len(c.token_ids) == len(c.logprobs) == 8 and c.finish_reason == "length"


async def test_stream_ends_with_the_full_response(stub):
    chunks = [chunk async for chunk in stub.GenerateStream(chat_request())]
    final = chunks[-1].final
    assert len(final.completions) == 2
    for index in (0, 1):
        deltas = "".join(c.text_delta for c in chunks[:-1] if c.index == index)
        assert deltas == final.completions[index].text


async def test_health_and_tokenize(stub):
    health = await stub.Health(inference_pb2.HealthRequest())
    assert (health.status, health.engine, health.model_version, health.max_context) == ("ok", "hf", 1, 2048)
    out = await stub.Tokenize(inference_pb2.TokenizeRequest(prompt="hello world"))
    assert out.text == "hello world" and len(out.token_ids) >= 2


async def test_bad_requests_are_invalid_argument_with_a_reason(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(inference_pb2.GenerateRequest(prompt="x", prompt_token_ids=[1]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "exactly one" in err.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(inference_pb2.GenerateRequest(prompt_token_ids=[5] * 3000))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.value.trailing_metadata())[ERROR_KIND_KEY] == "context_length_exceeded"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LoadWeights(inference_pb2.LoadWeightsRequest(version=9, uri="/nonexistent/ckpt", format="full"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_serve_runs_grpc_and_healthz_until_stopped():
    grpc_port, ops_port = free_port(), free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings(inference_grpc_port=grpc_port, inference_ops_port=ops_port), stop))
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    r = await client.get(f"http://127.0.0.1:{ops_port}/healthz")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        assert r.status_code == 200 and r.json()["model_version"] == 1
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = await inference_pb2_grpc.InferenceStub(channel).Health(inference_pb2.HealthRequest())
        assert health.status == "ok"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
