"""The real openai client (sync, async, streaming, tools, n>1) against the gateway over HTTP, in front of the
inference service on the tiny model over gRPC; the recorded events are read back from the real broker and
their token ids decode to exactly the text the client received."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest
from transformers import AutoTokenizer

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import ensure_topics
from lightwire.v1 import events_pb2
from testing import fake_upstream
from lightwire.services.inference.main import serve as serve_inference
from lightwire.model_cache import ensure_model
from lightwire.services.inference.settings import InferenceSettings
from lightwire.services.gateway.main import serve as serve_gateway
from testing.gateway_support import ServiceThread, gateway_settings, running_gateway
from testing.kafka_reading import read_until_end
from testing.services_fixtures import free_port

pytestmark = pytest.mark.integration
KEY = "k-openai"
TOOLS = [{"type": "function", "function": {"name": "add", "description": "Add two numbers",
                                           "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}]


@pytest.fixture(scope="module")
def stack(bootstrap, unique_module, tmp_path_factory):
    names = topics.TopicNames(f"gwo{unique_module}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    inference = InferenceSettings(inference_model="tiny-llama", inference_device="cpu", inference_weights_from_kafka=False,
                                  inference_grpc_port=free_port(), inference_ops_port=free_port(), log_level="WARNING")
    gateway = gateway_settings(bootstrap, names.prefix, tmp_path_factory.mktemp("gwo"), api_keys=KEY,
                               gateway_upstream=f"grpc://127.0.0.1:{inference.inference_grpc_port}")
    services = ServiceThread()
    try:
        services.start(serve_inference, inference, inference.health_url())
        services.start(serve_gateway, gateway, gateway.health_url())
        yield names, gateway
    finally:
        services.close()


@pytest.fixture(scope="module")
def unique_module() -> str:
    return f"{time.time_ns() % 10**10}"


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(ensure_model("tiny-llama", InferenceSettings().cache_dir))


def base_url(gateway, rollout_id: str = "") -> str:
    return f"http://127.0.0.1:{gateway.gateway_http_port}" + (f"/rollouts/{rollout_id}" if rollout_id else "") + "/v1"


def calls_of(bootstrap: str, topic: str, rollout_id: str, expected: int) -> list[events_pb2.LlmCall]:
    deadline = time.monotonic() + 20
    while True:
        events = {}
        for record in asyncio.run(read_until_end(bootstrap, topic)):
            event = codec.decode(record.value).event
            if event.WhichOneof("payload") == "llm_call" and event.llm_call.rollout_id == rollout_id:
                events[event.event_id] = event.llm_call
        calls = sorted(events.values(), key=lambda c: c.seq)
        if len(calls) >= expected or time.monotonic() > deadline:
            return calls
        time.sleep(0.2)


def decoded(tokenizer, completion: events_pb2.Completion) -> str:
    return tokenizer.decode(list(completion.token_ids), skip_special_tokens=True)


def test_sync_streaming_tools_and_n_are_recorded_with_token_ids_that_decode_to_the_reply(stack, bootstrap, tokenizer):
    names, gateway = stack
    client = openai.OpenAI(base_url=base_url(gateway, "r-sync"), api_key=KEY, max_retries=0)
    user = [{"role": "user", "content": "Say hi"}]
    plain = client.chat.completions.create(model="default", messages=user, max_tokens=8, seed=1)
    many = client.chat.completions.create(model="tiny-llama", messages=user, max_tokens=6, n=3, seed=2, temperature=0.9)
    stream = client.chat.completions.create(model="default", messages=user, max_tokens=8, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tools = client.chat.completions.create(model="default", messages=[{"role": "user", "content": "add 2 and 3"}], max_tokens=8, tools=TOOLS)
    text = client.completions.create(model="default", prompt="Once upon a time", max_tokens=5, seed=3)
    asked = client.chat.completions.create(model="default", messages=user, max_tokens=4, logprobs=True, extra_body={"return_token_ids": True})

    calls = calls_of(bootstrap, names.rollout_events, "r-sync", 6)
    run = calls[0].call_id.rpartition("@")[2]  # the gateway process: "<rollout>/<seq>@<run>"
    assert [(c.seq, c.call_id) for c in calls] == [(i, f"r-sync/{i}@{run}") for i in range(1, 7)] and len(run) == 8
    assert [c.endpoint for c in calls] == ["chat.completions"] * 4 + ["completions", "chat.completions"]
    assert all(c.http_status == 200 and c.model_version >= 1 and c.prompt_token_ids and c.model == "tiny-llama" for c in calls)
    assert decoded(tokenizer, calls[0].completions[0]) == plain.choices[0].message.content
    assert [decoded(tokenizer, c) for c in calls[1].completions] == [ch.message.content for ch in many.choices]
    assert calls[2].stream and decoded(tokenizer, calls[2].completions[0]) == streamed
    assert chunks[-1].usage.completion_tokens == len(calls[2].completions[0].token_ids)
    assert tools.choices and '"add"' in calls[3].request_json
    assert decoded(tokenizer, calls[4].completions[0]) == text.choices[0].text
    for call in calls:
        for completion in call.completions:
            assert len(completion.logprobs) == len(completion.token_ids) > 0
    assert plain.usage.completion_tokens == len(calls[0].completions[0].token_ids)
    # Engine-only fields stay out of the reply unless asked for, and match the event when they are.
    assert "token_ids" not in plain.choices[0].model_dump() and plain.choices[0].logprobs is None
    extra = asked.choices[0].model_extra
    assert extra["token_ids"] == list(calls[5].completions[0].token_ids)
    assert [t.logprob for t in asked.choices[0].logprobs.content] == pytest.approx(list(calls[5].completions[0].logprobs))


def test_async_client_concurrent_calls_and_the_header_form(stack, bootstrap, tokenizer):
    names, gateway = stack

    async def run():
        client = openai.AsyncOpenAI(base_url=base_url(gateway), api_key=KEY, max_retries=0,
                                    default_headers={"x-lightwire-rollout": "r-async", "x-lightwire-agent": "solver"})
        replies = await asyncio.gather(*(client.chat.completions.create(model="default", messages=[{"role": "user", "content": f"q{i}"}],
                                                                       max_tokens=5, seed=i) for i in range(4)))
        await client.close()
        return replies

    replies = asyncio.run(run())
    calls = calls_of(bootstrap, names.rollout_events, "r-async", 4)
    assert sorted(c.seq for c in calls) == [1, 2, 3, 4] and {c.agent_name for c in calls} == {"solver"}
    by_request = {c.request_json: decoded(tokenizer, c.completions[0]) for c in calls}
    assert sorted(by_request.values()) == sorted(r.choices[0].message.content for r in replies)


def test_errors_reach_the_client_as_openai_errors_and_the_broker_as_error_events(stack, bootstrap):
    names, gateway = stack
    client = openai.OpenAI(base_url=base_url(gateway, "r-errors"), api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="default", messages=[{"role": "user", "content": "word " * 5000}], max_tokens=4)
    assert too_long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="default", messages=[{"role": "user", "content": "x"}], n=99)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url(gateway, "r-errors"), api_key="wrong", max_retries=0).chat.completions.create(
            model="default", messages=[{"role": "user", "content": "x"}])
    calls = calls_of(bootstrap, names.rollout_events, "r-errors", 3)
    assert [(c.seq, c.http_status, c.error_class) for c in calls] == [
        (1, 404, "invalid_request"), (2, 400, "context_overflow"), (3, 400, "invalid_request")]


async def test_http_upstream_over_real_loopback(bootstrap, tmp_path, unique):
    """The same gateway in front of an OpenAI-compatible HTTP server (the fake vLLM) instead of gRPC."""
    import uvicorn

    names = topics.TopicNames(f"gwh{unique}.")
    await ensure_topics(bootstrap, topics.topic_specs(1, names))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake_upstream.make_app(), host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    upstream_task = asyncio.create_task(server.serve())
    try:
        settings = gateway_settings(bootstrap, names.prefix, tmp_path, gateway_upstream=f"http://127.0.0.1:{port}")
        async with running_gateway(settings):
            client = openai.AsyncOpenAI(base_url=base_url(settings, "r-http"), api_key="x", max_retries=0)
            reply = await client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}], n=2)
            assert reply.choices[1].message.content == "Hello from the fake upstream."
            await client.close()
            records = await read_until_end(bootstrap, names.rollout_events)
            deadline = time.monotonic() + 10
            while not records and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                records = await read_until_end(bootstrap, names.rollout_events)
        [call] = [codec.decode(r.value).event.llm_call for r in records]
        assert list(call.completions[1].token_ids) == fake_upstream.TOKEN_IDS and call.prompt_token_ids and call.model_version == 1
    finally:
        server.should_exit = True
        await upstream_task
