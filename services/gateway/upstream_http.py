"""Any OpenAI-compatible HTTP server as upstream (vLLM and friends), asked for token ids and logprobs.

vLLM returns `prompt_token_ids` and per-choice `token_ids` when the request sets `return_token_ids: true`, and
the sampled tokens' logprobs with `logprobs: true` (chat) or `logprobs: 0` (completions). A server that sends
no token ids still works; its calls are recorded without them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson

from lightwire.error_classes import CONTEXT_OVERFLOW_WORDS
from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.gateway import errors
from lightwire.services.gateway.http_pool import ConnectionPool, HttpError

class OpenAIHttpUpstream:
    """Over http_pool's keep-alive connections, not httpx or aiohttp: the upstream call was the biggest part of the
    gateway's own CPU per call, and without aiohttp the whole gateway spends about a third less (bench/gateway.py)."""

    def __init__(self, base_url: str, timeout_s: float, *, api_key: str = "", model_version: int = 1):
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.model_version = model_version
        url = urlsplit(self.base_url)
        self.path = url.path
        headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {api_key}"} if api_key else {})
        self.pool = ConnectionPool(f"{url.scheme}://{url.netloc}", headers=headers, timeout_s=timeout_s, connect_timeout_s=5.0)
        self._model = ""

    async def generate(self, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        chat = bool(request.messages)
        body = chat_body(request) if chat else completion_body(request)
        if not body["model"]:
            body["model"] = self._model or (await self.health()).model
        doc = await self._post("/chat/completions" if chat else "/completions", body)
        return parse_response(doc, chat, self.model_version)

    async def generate_stream(self, request: inference_pb2.GenerateRequest) -> AsyncIterator[inference_pb2.GenerateChunk]:
        # One upstream call, not streamed: token ids and logprobs arrive whole, and the client still gets SSE.
        response = await self.generate(request)
        for c in response.completions:
            yield inference_pb2.GenerateChunk(index=c.index, text_delta=c.text)
        yield inference_pb2.GenerateChunk(final=response)

    async def health(self) -> inference_pb2.HealthResponse:
        try:
            reply = await self.pool.request("GET", self.path + "/models", timeout_s=5.0)
            if reply.status >= 400:
                raise HttpError(f"HTTP {reply.status}")
            model = orjson.loads(reply.body)["data"][0]
        except (HttpError, TimeoutError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise errors.upstream_failed(f"HTTP upstream {self.base_url} did not list its models: {exc!r}") from None
        self._model = model["id"]
        return inference_pb2.HealthResponse(status="ok", model=model["id"], model_version=self.model_version, engine="openai-http",
                                            max_context=int(model.get("max_model_len") or 0))

    async def close(self) -> None:
        await self.pool.close()

    async def _post(self, path: str, body: dict) -> dict:
        try:
            reply = await self.pool.request("POST", self.path + path, orjson.dumps(body))
        except TimeoutError:
            raise errors.upstream_timeout() from None
        except HttpError as exc:
            raise errors.upstream_failed(f"HTTP upstream unreachable: {exc!r}") from None
        status, content = reply.status, reply.body
        if status >= 500:
            raise errors.upstream_failed(f"HTTP upstream answered {status}: {content[:500].decode(errors='replace')}")
        try:
            doc = orjson.loads(content)
        except ValueError:
            raise errors.upstream_failed(f"HTTP upstream answered {status} with a body that is not JSON") from None
        if status >= 400:
            message = (doc.get("error") or {}).get("message") if isinstance(doc.get("error"), dict) else str(doc.get("message") or doc)
            message = message or f"HTTP {status}"
            if CONTEXT_OVERFLOW_WORDS.search(message):
                raise errors.context_overflow(message)
            raise errors.GatewayError(status if status in (400, 404, 422) else 400, message)
        return doc


def _sampling(s: inference_pb2.SamplingParams) -> dict:
    body: dict = {"temperature": s.temperature, "top_p": s.top_p or 1.0, "n": s.n or 1, "return_token_ids": True}
    if s.max_tokens:
        body["max_tokens"] = s.max_tokens
    if s.stop:
        body["stop"] = list(s.stop)
    if s.has_seed or s.seed:
        body["seed"] = s.seed
    return body


def chat_body(request: inference_pb2.GenerateRequest) -> dict:
    messages = []
    for m in request.messages:
        message: dict = {"role": m.role, "content": m.content}
        if m.name:
            message["name"] = m.name
        if m.tool_calls_json:
            message["tool_calls"] = json.loads(m.tool_calls_json)
        if m.tool_call_id:
            message["tool_call_id"] = m.tool_call_id
        messages.append(message)
    body = {"model": request.model, "messages": messages, "logprobs": True, **_sampling(request.sampling)}
    if request.tools_json:
        body["tools"] = json.loads(request.tools_json)
    if request.tool_choice:
        body["tool_choice"] = json.loads(request.tool_choice) if request.tool_choice.startswith("{") else request.tool_choice
    return body


def completion_body(request: inference_pb2.GenerateRequest) -> dict:
    prompt = request.prompt if request.prompt else list(request.prompt_token_ids)
    return {"model": request.model, "prompt": prompt, "logprobs": 0, **_sampling(request.sampling)}


def parse_response(doc: dict, chat: bool, default_version: int) -> inference_pb2.GenerateResponse:
    try:
        out = inference_pb2.GenerateResponse(model=doc.get("model", ""), model_version=_version(doc, default_version))
        prompt_ids = doc.get("prompt_token_ids")
        for choice in doc["choices"]:
            prompt_ids = prompt_ids or choice.get("prompt_token_ids")
            out.completions.append(_completion(choice, chat))
        out.prompt_token_ids.extend(prompt_ids or ())
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.upstream_failed(f"HTTP upstream answered with an unexpected body: {exc!r}") from None
    return out


def _completion(choice: dict, chat: bool) -> events_pb2.Completion:
    logprobs = choice.get("logprobs") or {}
    if chat:
        message = choice.get("message") or {}
        text, tool_calls = message.get("content") or "", message.get("tool_calls")
        values = [t["logprob"] for t in logprobs.get("content") or ()]
    else:
        text, tool_calls = choice.get("text") or "", None
        values = list(logprobs.get("token_logprobs") or ())
    return events_pb2.Completion(
        index=choice.get("index", 0), text=text, token_ids=choice.get("token_ids") or (), logprobs=values,
        finish_reason=choice.get("finish_reason") or "stop", tool_calls_json=json.dumps(tool_calls) if tool_calls else "",
    )


def _version(doc: dict, default: int) -> int:
    # Lightwire-aware servers put the weight version in the fingerprint ("lightwire-v7"); others get the configured one.
    fingerprint = doc.get("system_fingerprint") or ""
    if fingerprint.startswith("lightwire-v") and fingerprint[11:].isdigit():
        return int(fingerprint[11:])
    return default
