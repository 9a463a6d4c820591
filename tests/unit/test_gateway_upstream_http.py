"""The OpenAI HTTP upstream against the fake vLLM-style server (served by uvicorn on loopback, as in production):
token ids and logprobs asked for and parsed; errors mapped."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
import uvicorn

from lightwire.v1 import inference_pb2
from lightwire.services.gateway import errors
from testing import fake_upstream
from lightwire.services.gateway.upstream_http import OpenAIHttpUpstream, chat_body
from testing.services_fixtures import free_port


@contextlib.asynccontextmanager
async def served(app) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def upstream(app=None, timeout_s: float = 5) -> AsyncIterator[OpenAIHttpUpstream]:
    async with served(app or fake_upstream.make_app()) as url:
        up = OpenAIHttpUpstream(url, timeout_s, model_version=4)
        try:
            yield up
        finally:
            await up.close()


def chat_request(**kw) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(messages=[inference_pb2.ChatMessage(role="user", content="hi")],
                                         sampling=inference_pb2.SamplingParams(temperature=1, n=2, max_tokens=3), **kw)


async def test_chat_and_completions_carry_token_ids_and_logprobs():
    async with upstream() as up:
        await check_engine_fields(up)


async def check_engine_fields(up: OpenAIHttpUpstream) -> None:
    health = await up.health()
    assert (health.model, health.max_context, health.model_version) == ("fake-model", 2048, 4)
    result = await up.generate(chat_request())
    assert result.model_version == 4 and list(result.prompt_token_ids) == [7] and len(result.completions) == 2
    c = result.completions[1]
    assert (c.index, c.text, list(c.token_ids), c.finish_reason) == (1, "Hello from the", [101, 102, 103], "length")
    assert list(c.logprobs) == pytest.approx([-0.5] * 3)
    text = await up.generate(inference_pb2.GenerateRequest(prompt="x", sampling=inference_pb2.SamplingParams(max_tokens=2)))
    assert text.completions[0].text == "Hello from" and list(text.completions[0].token_ids) == [101, 102]
    chunks = [c async for c in up.generate_stream(chat_request())]
    assert chunks[-1].HasField("final") and "".join(c.text_delta for c in chunks if c.index == 0) == "Hello from the"


def test_request_asks_for_engine_fields_and_keeps_tools():
    body = chat_body(chat_request(model="m", tools_json=json.dumps([{"type": "function", "function": {"name": "f"}}]), tool_choice="required"))
    assert body["return_token_ids"] is True and body["logprobs"] is True and body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["name"] == "f" and body["max_tokens"] == 3 and body["n"] == 2


def failing(status: int, doc: dict | None = None):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(doc or {}).encode()})
    return app


@pytest.mark.parametrize(("status", "doc", "expected", "error_class"), [
    (500, {}, 502, "upstream_error"),
    (400, {"error": {"message": "This model's maximum context length is 2048 tokens"}}, 400, "context_overflow"),
    (400, {"error": {"message": "n must be at most 4"}}, 400, "invalid_request"),
])
async def test_errors_are_mapped(status, doc, expected, error_class):
    with pytest.raises(errors.GatewayError) as caught:
        async with upstream(failing(status, doc)) as up:
            await up.generate(chat_request(model="m"))
    assert (caught.value.status, caught.value.error_class) == (expected, error_class)


async def test_unreachable_and_slow_upstreams():
    unreachable = OpenAIHttpUpstream("http://127.0.0.1:1", 1)
    with pytest.raises(errors.GatewayError) as caught:
        await unreachable.generate(chat_request(model="m"))
    await unreachable.close()
    assert caught.value.status == 502

    with pytest.raises(errors.GatewayError) as caught:
        async with upstream(fake_upstream.make_app(delay_s=2.0), timeout_s=0.5) as up:
            await up.generate(chat_request(model="m"))
    assert caught.value.status == 504
