"""The gateway's OpenAI HTTP face over a fake upstream: wire format, engine-only fields, errors, and one event per call."""

from __future__ import annotations

import asyncio
import json

import httpx
import orjson
import pytest

from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.gateway import errors
from lightwire.services.gateway.app import build_app
from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.serving_base import ModelCatalog
from lightwire.services.gateway.serving_chat import ChatServing
from lightwire.services.gateway.serving_completions import CompletionServing
from prometheus_client import CollectorRegistry

from testing.recording_sink import RecordingSink

def call_run(call: events_pb2.LlmCall) -> str:
    """The gateway run named in a call id ("<rollout>/<seq>@<run>")."""
    return call.call_id.rpartition("@")[2]


TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}


class FakeUpstream:
    """Answers "hi there" (two tokens per word); a tools request gets a tool call; `fail` makes it raise instead."""

    def __init__(self):
        self.fail: errors.GatewayError | None = None
        self.requests: list[inference_pb2.GenerateRequest] = []

    def _response(self, request) -> inference_pb2.GenerateResponse:
        out = inference_pb2.GenerateResponse(model="tiny", model_version=3, prompt_token_ids=[1, 2, 3])
        for i in range(request.sampling.n or 1):
            c = events_pb2.Completion(index=i, text="hi there", token_ids=[10, 11, 12, 13], logprobs=[-0.1, -0.2, -0.3, -0.4],
                                      finish_reason="stop")
            if request.tools_json:
                c.text, c.finish_reason = "", "tool_calls"
                c.tool_calls_json = json.dumps([{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}])
            out.completions.append(c)
        return out

    async def generate(self, request):
        self.requests.append(request)
        if self.fail:
            raise self.fail
        return self._response(request)

    async def generate_stream(self, request):
        self.requests.append(request)
        if self.fail:
            raise self.fail
        response = self._response(request)
        if not request.tools_json:
            for c in response.completions:
                for word in ("hi", " there"):
                    yield inference_pb2.GenerateChunk(index=c.index, text_delta=word)
        yield inference_pb2.GenerateChunk(final=response)

    async def health(self):
        return inference_pb2.HealthResponse(status="ok", model="tiny", model_version=3, max_context=64)

    async def close(self):
        pass


@pytest.fixture
def gateway():
    sink, upstream = RecordingSink(), FakeUpstream()
    recorder = Recorder(sink, "lw.rollout-events", "gw-test")
    catalog = ModelCatalog(upstream, frozenset({"default"}))
    touched: list[str] = []
    app = build_app(ChatServing(upstream, recorder, catalog), CompletionServing(upstream, recorder, catalog), ApiKeys(("k1", "k2")),
                    CollectorRegistry(), lambda: _ok(), on_rollout_call=touched.append)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw", headers={"authorization": "Bearer k1"})
    return client, sink, upstream, touched


async def _ok() -> dict:
    return {}


def chat(**extra) -> dict:
    return {"model": "default", "messages": [{"role": "user", "content": "hello"}], **extra}


async def test_chat_is_answered_and_recorded_with_tokens_but_replies_without_them(gateway):
    client, sink, upstream, touched = gateway
    reply = await client.post("/rollouts/r-1/v1/chat/completions", json=chat(max_tokens=5, temperature=0.5, seed=7))
    assert reply.status_code == 200
    body = reply.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hi there"}
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert "token_ids" not in body["choices"][0] and "prompt_token_ids" not in body and body["choices"][0]["logprobs"] is None
    sent = upstream.requests[0]
    assert (sent.model, sent.sampling.max_tokens, sent.sampling.seed, sent.sampling.has_seed) == ("tiny", 5, 7, True)
    assert sent.sampling.temperature == pytest.approx(0.5)
    [(topic, key, event)] = sink.events
    call = event.llm_call
    assert (topic, key, call.rollout_id, call.seq, call.http_status) == ("lw.rollout-events", "r-1", "r-1", 1, 200)
    assert call.call_id == f"r-1/1@{call_run(call)}" and len(call_run(call)) == 8
    assert list(call.prompt_token_ids) == [1, 2, 3] and list(call.completions[0].token_ids) == [10, 11, 12, 13]
    assert call.completions[0].logprobs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert (call.model, call.model_version, call.endpoint, call.gateway_id) == ("tiny", 3, "chat.completions", "gw-test")
    assert json.loads(call.request_json)["max_tokens"] == 5 and json.loads(call.response_json) == body
    assert call.latency_ms >= 0 and call.prompt_tokens == 3 and call.completion_tokens == 4
    assert touched == ["r-1"]


async def test_engine_fields_come_back_when_asked(gateway):
    client, *_ = gateway
    body = (await client.post("/v1/chat/completions", json=chat(logprobs=True))).json()
    assert body["choices"][0]["token_ids"] == [10, 11, 12, 13] and body["prompt_token_ids"] == [1, 2, 3]
    assert [t["logprob"] for t in body["choices"][0]["logprobs"]["content"]] == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    body = (await client.post("/v1/completions", json={"model": "tiny", "prompt": "x", "return_token_ids": True})).json()
    assert body["choices"][0]["token_ids"] == [10, 11, 12, 13] and body["choices"][0]["text"] == "hi there"


async def test_seq_counts_per_rollout_and_header_names_the_rollout(gateway):
    client, sink, *_ = gateway
    for _ in range(2):
        await client.post("/v1/chat/completions", json=chat(), headers={"x-lightwire-rollout": "r-h", "x-lightwire-agent": "planner"})
    await client.post("/rollouts/r-other/v1/chat/completions", json=chat())
    await client.post("/v1/chat/completions", json=chat())
    calls = sink.calls()
    run = call_run(calls[0])
    assert [(c.rollout_id, c.seq, c.call_id) for c in calls[:3]] == [("r-h", 1, f"r-h/1@{run}"), ("r-h", 2, f"r-h/2@{run}"),
                                                                   ("r-other", 1, f"r-other/1@{run}")]
    assert calls[0].agent_name == "planner"
    assert calls[3].rollout_id == "" and calls[3].call_id.startswith("unattributed/") and sink.events[3][1] == calls[3].call_id


async def test_n_and_tools(gateway):
    client, sink, upstream, _ = gateway
    body = (await client.post("/v1/chat/completions", json=chat(n=3))).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    body = (await client.post("/v1/chat/completions", json=chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "add"}}))).json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "add"
    assert json.loads(upstream.requests[-1].tools_json) == [TOOL] and json.loads(upstream.requests[-1].tool_choice)["function"]["name"] == "add"
    assert len(sink.calls()[0].completions) == 3


def _sse(text: str) -> list:
    out = []
    for line in text.splitlines():
        if line.startswith("data: "):
            out.append("[DONE]" if line == "data: [DONE]" else json.loads(line[6:]))
    return out


async def test_stream_sends_deltas_finish_and_usage_and_records_the_whole_call(gateway):
    client, sink, *_ = gateway
    reply = await client.post("/rollouts/r-s/v1/chat/completions", json=chat(stream=True, n=2, stream_options={"include_usage": True}))
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    chunks = _sse(reply.text)
    assert chunks[-1] == "[DONE]" and chunks[-2]["usage"]["completion_tokens"] == 8 and chunks[-2]["choices"] == []
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks[:-2] if c["choices"][0]["index"] == index]
        assert mine[0]["delta"]["role"] == "assistant"
        assert "".join(c["delta"].get("content") or "" for c in mine) == "hi there"
        assert mine[-1]["finish_reason"] == "stop"
    [call] = sink.calls()
    assert call.stream and call.http_status == 200 and len(call.completions) == 2
    assert json.loads(call.response_json)["choices"][1]["message"]["content"] == "hi there"


async def test_streamed_tool_calls_arrive_whole(gateway):
    client, *_ = gateway
    chunks = _sse((await client.post("/v1/chat/completions", json=chat(stream=True, tools=[TOOL]))).text)
    deltas = [c["choices"][0] for c in chunks[:-1]]
    assert deltas[-2]["delta"]["tool_calls"][0]["function"]["name"] == "add" and deltas[-1]["finish_reason"] == "tool_calls"
    assert not any(d["delta"].get("content") for d in deltas)


async def test_completions_stream(gateway):
    client, *_ = gateway
    chunks = _sse((await client.post("/v1/completions", json={"model": "default", "prompt": [5, 6], "stream": True})).text)
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == "hi there" and chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(("body", "status", "param"), [
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    (orjson.dumps(chat(n=0)), 400, "n"),
    (orjson.dumps(chat(temperature=9)), 400, "temperature"),
    (orjson.dumps({"model": "default", "messages": []}), 400, "messages"),
    (orjson.dumps({"model": "default"}), 400, "messages"),
    (orjson.dumps(chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])), 400, "messages.0.content"),
    (orjson.dumps(chat(model="gpt-nope")), 404, "model"),
])
async def test_bad_input_gets_an_openai_error_and_an_error_event(gateway, body, status, param):
    client, sink, upstream, _ = gateway
    reply = await client.post("/rollouts/r-bad/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert error["param"] == param
    [call] = sink.calls()
    assert (call.http_status, call.error_class, call.call_id) == (status, "invalid_request", f"r-bad/1@{call_run(call)}") and call.error_message
    assert not upstream.requests


@pytest.mark.parametrize(("failure", "status", "error_class"), [
    (errors.upstream_failed("boom"), 502, "upstream_error"),
    (errors.upstream_timeout(), 504, "timeout"),
    (errors.context_overflow("the prompt has 99 tokens but the model's context is 64"), 400, "context_overflow"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_become_statuses_and_error_events(gateway, failure, status, error_class, stream):
    client, sink, upstream, _ = gateway
    upstream.fail = failure
    reply = await client.post("/v1/chat/completions", json=chat(stream=stream))
    assert reply.status_code == status and reply.json()["error"]["message"]
    [call] = sink.calls()
    assert (call.http_status, call.error_class, call.stream) == (status, error_class, stream)


async def test_missing_or_wrong_key_is_401_and_nothing_is_recorded(gateway):
    client, sink, *_ = gateway
    for headers in ({"authorization": "Bearer nope"}, {"authorization": ""}):
        reply = await client.post("/rollouts/r-x/v1/chat/completions", json=chat(), headers=headers)
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key"
    assert (await client.get("/v1/models", headers={"authorization": "Bearer k2"})).status_code == 200
    assert sink.events == []


async def test_models_lists_the_upstream_model_and_aliases(gateway):
    client, *_ = gateway
    body = (await client.get("/rollouts/r-1/v1/models")).json()
    assert [m["id"] for m in body["data"]] == ["tiny", "default"]


async def test_health_and_metrics(gateway):
    client, *_ = gateway
    await client.post("/v1/chat/completions", json=chat())
    assert (await client.get("/healthz")).json()["status"] == "ok"
    assert 'lw_gateway_calls_total{endpoint="chat.completions",status="200"} 1.0' in (await client.get("/metrics")).text


async def test_a_client_that_leaves_mid_stream_is_recorded(gateway):
    client, sink, upstream, _ = gateway
    from lightwire.services.gateway.serving_base import CallContext
    from lightwire.services.gateway.protocol import ChatCompletionRequest

    serving = ChatServing(upstream, Recorder(sink, "t", "gw"), ModelCatalog(upstream, frozenset({"default"})))
    stream = await serving.create(ChatCompletionRequest.model_validate(chat(stream=True)), CallContext("r-gone", "", b"{}"))
    await anext(stream)
    await stream.aclose()
    [call] = sink.calls()
    assert (call.http_status, call.error_class) == (499, "client_closed")
    await asyncio.sleep(0)


# Numbers outside the Inference contract's integer fields (int32 max_tokens and token ids, int64 seed) are the
# caller's mistake: a 400 naming the field, not a 500 from the protobuf encoder.
@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", chat(max_tokens=2**31), "max_tokens"),
    ("/v1/chat/completions", chat(max_tokens=2**63), "max_tokens"),
    ("/v1/chat/completions", chat(max_completion_tokens=2**40), "max_completion_tokens"),
    ("/v1/chat/completions", chat(seed=2**63), "seed"),
    ("/v1/chat/completions", chat(seed=-(2**63) - 1), "seed"),
    ("/v1/completions", {"model": "default", "prompt": [1, 2**40]}, "prompt"),
    ("/v1/completions", {"model": "default", "prompt": [-1]}, "prompt"),
    ("/v1/completions", {"model": "default", "prompt": "x", "max_tokens": 2**31}, "max_tokens"),
    ("/v1/chat/completions", chat(max_tokens=2**70), "max_tokens"),  # past 64 bits: orjson reads a float
])
async def test_numbers_the_contract_cannot_carry_are_400s(gateway, path, body, param):
    client, sink, upstream, _ = gateway
    reply = await client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error" and error["param"] == param
    assert not upstream.requests and sink.calls()[0].http_status == 400


async def test_the_largest_numbers_the_contract_carries_still_pass(gateway):
    client, _, upstream, _ = gateway
    reply = await client.post("/v1/chat/completions", json=chat(max_tokens=2**31 - 1, seed=2**63 - 1))
    assert reply.status_code == 200
    assert (upstream.requests[0].sampling.max_tokens, upstream.requests[0].sampling.seed) == (2**31 - 1, 2**63 - 1)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v2/nothing", 404),
    ("POST", "/rollouts/a%2Fb/v1/chat/completions", 404),  # a rollout id holds no slash, encoded or not
    ("POST", "/rollouts/a/b/v1/completions", 404),
    ("GET", "/v1/chat/completions", 405),
    ("GET", "/rollouts/r/v1/completions", 405),
])
async def test_router_errors_are_openai_shaped(gateway, method, path, status):
    client, sink, *_ = gateway
    reply = await client.request(method, path, json=chat() if method == "POST" else None)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error" and error["message"]
    if status == 405:
        assert reply.headers["allow"] == "POST"
    assert sink.events == []


async def test_an_unexpected_failure_is_an_openai_500(gateway, monkeypatch):
    client, sink, upstream, _ = gateway

    async def broken(request):
        raise RuntimeError("bug")

    monkeypatch.setattr(upstream, "generate", broken)
    reply = await client.post("/v1/chat/completions", json=chat())
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "api_error" and reply.json()["error"]["code"] == "internal_error"


async def test_openapi_schema_documents_the_call_routes_from_the_one_route_table(gateway):
    from lightwire.services.gateway.app import _CALL_PATH, CALL_ROUTES, PREFIXES

    client, *_ = gateway
    reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    schema = reply.json()
    posts = {path for path, ops in schema["paths"].items() if "post" in ops}
    assert posts == {prefix + "/v1/" + r.path for prefix in PREFIXES for r in CALL_ROUTES}
    chat_body = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert chat_body == "#/components/schemas/ChatCompletionRequest"
    components = schema["components"]["schemas"]
    assert components["ChatCompletionRequest"]["properties"]["max_tokens"]["anyOf"][0]["maximum"] == 2**31 - 1
    assert "ChatMessage" in components and "CompletionRequest" in components
    assert any(p["name"] == "rollout_id" for p in schema["paths"]["/rollouts/{rollout_id}/v1/completions"]["post"]["parameters"])
    # The raw-ASGI fast path takes exactly the POST routes FastAPI declares, and nothing else.
    for path in posts:
        assert _CALL_PATH.match(path.replace("{rollout_id}", "r-1"))
    assert not _CALL_PATH.match("/v1/models") and not _CALL_PATH.match("/rollouts/a/b/v1/completions")


async def test_the_fastapi_app_alone_serves_the_call_routes(gateway):
    """Without the raw-ASGI fast path in front, the same table's FastAPI routes answer the same way."""
    client, sink, *_ = gateway
    inner = httpx.AsyncClient(transport=httpx.ASGITransport(client._transport.app.app), base_url="http://gw",
                              headers={"authorization": "Bearer k1"})
    assert (await inner.post("/rollouts/r-in/v1/chat/completions", json=chat())).status_code == 200
    assert (await inner.post("/v1/completions", json={"model": "default", "prompt": "x"})).status_code == 200
    assert (await inner.post("/v1/chat/completions", json=chat(seed=2**63))).status_code == 400
    assert [c.rollout_id for c in sink.calls()] == ["r-in", "", ""]


@pytest.fixture
def small_gateway():
    sink, upstream = RecordingSink(), FakeUpstream()
    recorder = Recorder(sink, "lw.rollout-events", "gw-test")
    catalog = ModelCatalog(upstream, frozenset({"default"}))
    app = build_app(ChatServing(upstream, recorder, catalog), CompletionServing(upstream, recorder, catalog), ApiKeys(()),
                    CollectorRegistry(), lambda: _ok(), max_request_bytes=1000)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw"), sink, upstream


async def test_a_body_over_the_limit_is_413_and_recorded_without_its_body(small_gateway):
    client, sink, upstream = small_gateway
    big = orjson.dumps(chat(messages=[{"role": "user", "content": "x" * 5000}]))
    reply = await client.post("/rollouts/r-big/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large" and reply.json()["error"]["type"] == "invalid_request_error"

    async def chunks():  # no content-length: the limit holds on the stream itself
        for _ in range(10):
            yield b"x" * 500

    assert (await client.post("/v1/chat/completions", content=chunks())).status_code == 413
    assert [(c.http_status, c.request_json) for c in sink.calls()] == [(413, ""), (413, "")] and not upstream.requests
    assert (await client.post("/v1/chat/completions", json=chat())).status_code == 200  # at the limit's side: served


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_call_whose_event_cannot_be_made_durable_is_not_answered_as_a_success(stream):
    # The client must never see success for a call whose record a crash could still lose.
    sink, upstream = RecordingSink(durable=False), FakeUpstream()
    recorder = Recorder(sink, "lw.rollout-events", "gw-test", durable_timeout_s=0.2)
    catalog = ModelCatalog(upstream, frozenset({"default"}))
    app = build_app(ChatServing(upstream, recorder, catalog), CompletionServing(upstream, recorder, catalog), ApiKeys(()),
                    CollectorRegistry(), lambda: _ok())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as client:
        reply = await client.post("/rollouts/r-d/v1/chat/completions", json=chat(stream=stream))
    if stream:
        # Headers went out with the first chunk; what the client gets instead of [DONE] is the error.
        frames = [line for line in reply.text.splitlines() if line.startswith("data: ")]
        assert json.loads(frames[-2].removeprefix("data: "))["error"]["code"] == "recording_unavailable"
        assert "[DONE]" in frames[-1]
    else:
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "recording_unavailable"
    [call] = sink.calls()  # recorded once, as the success it was upstream; not a second time as a failure
    assert call.http_status == 200
