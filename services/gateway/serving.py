"""Serving logic shared by the HTTP routes: OpenAI request -> Inference request -> OpenAI response + LlmCall event."""

from __future__ import annotations

import json
import time
import uuid

import orjson

from lightwire.v1 import events_pb2, inference_pb2
from services.gateway.protocol import ChatCompletionRequest, CompletionRequest
from services.gateway.recorder import Recorder, now_ms
from services.gateway.upstream import InferenceUpstream, UpstreamError


def sampling(temperature, top_p, max_tokens, n, stop, seed) -> inference_pb2.SamplingParams:
    # OpenAI's default temperature is 1; the Inference contract reads 0 as greedy, so say 1 explicitly.
    params = inference_pb2.SamplingParams(
        temperature=1.0 if temperature is None else temperature, top_p=top_p or 1.0, max_tokens=max_tokens or 0,
        stop=stop or [], n=n,
    )
    if seed is not None:
        params.seed, params.has_seed = seed, True
    return params


def chat_messages(request: ChatCompletionRequest) -> list[inference_pb2.ChatMessage]:
    out = []
    for m in request.messages:
        out.append(inference_pb2.ChatMessage(
            role=m.role, content=m.text(), name=m.name or "",
            tool_calls_json=json.dumps(m.tool_calls) if m.tool_calls else "", tool_call_id=m.tool_call_id or "",
        ))
    return out


class Serving:
    def __init__(self, upstream: InferenceUpstream, recorder: Recorder, model_name: str):
        self.upstream = upstream
        self.recorder = recorder
        self.model_name = model_name

    def known_model(self, name: str) -> bool:
        return name in (self.model_name, "default")

    async def chat(self, request: ChatCompletionRequest, rollout_id: str, agent: str, raw: bytes) -> dict:
        generate = inference_pb2.GenerateRequest(
            model=self.model_name, messages=chat_messages(request), tools_json=json.dumps(request.tools) if request.tools else "",
            tool_choice=request.tool_choice if isinstance(request.tool_choice, str) else ("" if request.tool_choice is None else "required"),
            sampling=sampling(request.temperature, request.top_p, request.max_completion_tokens or request.max_tokens, request.n,
                              request.stop, request.seed),
        )
        return await self._run("chat.completions", generate, rollout_id, agent, raw, request.stream,
                               request.logprobs or request.return_token_ids, self._chat_choice)

    async def completion(self, request: CompletionRequest, rollout_id: str, agent: str, raw: bytes) -> dict:
        generate = inference_pb2.GenerateRequest(
            model=self.model_name, prompt=request.prompt,
            sampling=sampling(request.temperature, request.top_p, request.max_tokens, request.n, request.stop, request.seed),
        )
        return await self._run("completions", generate, rollout_id, agent, raw, False,
                               bool(request.logprobs) or request.return_token_ids, self._text_choice)

    async def _run(self, endpoint, generate, rollout_id, agent, raw, stream, with_tokens, choice) -> dict:
        seq, call_id = self.recorder.next_call(rollout_id)
        call = events_pb2.LlmCall(rollout_id=rollout_id, call_id=call_id, seq=seq, model=self.model_name, endpoint=endpoint,
                                  request_json=raw.decode(errors="replace"), agent_name=agent, started_unix_ms=now_ms(), stream=stream)
        t0 = time.perf_counter()
        try:
            result = await self.upstream.generate(generate)
        except UpstreamError as exc:
            call.latency_ms = (time.perf_counter() - t0) * 1000
            call.http_status, call.error_class, call.error_message = exc.status, exc.error_class or "invalid_request", str(exc)
            await self.recorder.record(call)
            raise
        call.latency_ms = (time.perf_counter() - t0) * 1000
        call.model_version = result.model_version
        call.prompt_token_ids.extend(result.prompt_token_ids)
        call.completions.extend(result.completions)
        call.prompt_tokens = len(result.prompt_token_ids)
        call.completion_tokens = sum(len(c.token_ids) for c in result.completions)
        call.http_status = 200
        body = {
            "id": f"{'chatcmpl' if endpoint == 'chat.completions' else 'cmpl'}-{call_id.replace('/', '-')}",
            "object": "chat.completion" if endpoint == "chat.completions" else "text_completion",
            "created": int(time.time()), "model": self.model_name,
            "choices": [choice(c, with_tokens) for c in result.completions],
            "usage": {"prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
                      "total_tokens": call.prompt_tokens + call.completion_tokens},
            "system_fingerprint": f"lightwire-v{result.model_version}",
        }
        if with_tokens:
            body["prompt_token_ids"] = list(result.prompt_token_ids)
        call.response_json = orjson.dumps(body).decode()
        await self.recorder.record(call)
        return body

    @staticmethod
    def _chat_choice(c: events_pb2.Completion, with_tokens: bool) -> dict:
        message: dict = {"role": "assistant", "content": c.text or None}
        if c.tool_calls_json:
            message["tool_calls"] = json.loads(c.tool_calls_json)
        choice = {"index": c.index, "message": message, "finish_reason": c.finish_reason or "stop"}
        if with_tokens:
            choice["token_ids"] = list(c.token_ids)
            choice["logprobs"] = {"content": [{"token_id": t, "logprob": lp} for t, lp in zip(c.token_ids, c.logprobs)]}
        return choice

    @staticmethod
    def _text_choice(c: events_pb2.Completion, with_tokens: bool) -> dict:
        choice = {"index": c.index, "text": c.text, "finish_reason": c.finish_reason or "stop"}
        if with_tokens:
            choice["token_ids"] = list(c.token_ids)
            choice["logprobs"] = {"token_logprobs": list(c.logprobs)}
        return choice


def sse_chunks(body: dict) -> list[bytes]:
    """A finished chat completion as OpenAI stream chunks: role, content, tool calls, finish, then usage and [DONE]."""
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"]}
    out = []
    for choice in body["choices"]:
        message = choice["message"]
        delta = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(message["tool_calls"])]
        out.append({**base, "choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]})
        out.append({**base, "choices": [{"index": choice["index"], "delta": {}, "finish_reason": choice["finish_reason"]}]})
    out.append({**base, "choices": [], "usage": body["usage"]})
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in out] + [b"data: [DONE]\n\n"]


def new_rollout_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"
