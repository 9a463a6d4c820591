"""POST /v1/chat/completions: OpenAI chat request -> Inference request -> OpenAI chat response (+ one LlmCall event)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.gateway.prompt_policies import PromptPolicy, apply_policy
from lightwire.services.gateway.protocol import ChatCompletionRequest
from lightwire.services.gateway.serving_base import CallContext, ModelCatalog, ServingBase, StreamRenderer, sampling, usage
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.upstream import Upstream


def to_generate(request: ChatCompletionRequest, model: str) -> inference_pb2.GenerateRequest:
    messages = [
        inference_pb2.ChatMessage(role=m.role, content=m.text(), name=m.name or "", tool_calls_json=json.dumps(m.tool_calls) if m.tool_calls else "",
                                  tool_call_id=m.tool_call_id or "")
        for m in request.messages
    ]
    choice = request.tool_choice
    return inference_pb2.GenerateRequest(
        model=model, messages=messages, tools_json=json.dumps(request.tools) if request.tools else "",
        tool_choice=json.dumps(choice) if isinstance(choice, dict) else (choice or ""),
        sampling=sampling(request.temperature, request.top_p, request.max_completion_tokens or request.max_tokens, request.n,
                          request.stop, request.seed),
    )


def logprobs_content(c: events_pb2.Completion) -> list[dict]:
    # No token strings from the engine: tokens are spelled "token_id:<id>", as vLLM's --return-tokens-as-token-ids does.
    return [{"token": f"token_id:{t}", "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in zip(c.token_ids, c.logprobs)]


class ChatServing(ServingBase):
    endpoint = "chat.completions"
    response_object = "chat.completion"
    id_prefix = "chatcmpl"

    to_generate = staticmethod(to_generate)

    def __init__(self, upstream: Upstream, recorder: Recorder, catalog: ModelCatalog,
                 prompt_for: Callable[[str], PromptPolicy | None] = lambda rollout_id: None):
        super().__init__(upstream, recorder, catalog)
        self.prompt_for = prompt_for

    def shape(self, request: ChatCompletionRequest, ctx: CallContext) -> tuple[ChatCompletionRequest, CallContext]:
        # The raw body stays in ctx (the event's request_json is what the agent sent); the model gets the policy's
        # messages, and the event's prompt_token_ids are theirs.
        policy = self.prompt_for(ctx.rollout_id) if ctx.rollout_id else None
        if policy is None:
            return request, ctx
        shaped = request.model_copy(update={"messages": apply_policy(request.messages, policy)})
        return shaped, dataclasses.replace(ctx, prompt_version=policy.version)

    def renderer(self, request: ChatCompletionRequest, chunk_id: str, created: int, model: str) -> StreamRenderer:
        offers_tools = bool(request.tools) and request.tool_choice != "none"
        return ChatChunks(chunk_id, created, model, request.wants_engine_fields, offers_tools)

    def choice(self, c: events_pb2.Completion, engine_fields: bool) -> dict:
        message: dict = {"role": "assistant", "content": c.text or None}
        if c.tool_calls_json:
            message["tool_calls"] = json.loads(c.tool_calls_json)
        choice = {"index": c.index, "message": message, "finish_reason": c.finish_reason or "stop", "logprobs": None}
        if engine_fields:
            choice["token_ids"] = list(c.token_ids)
            choice["logprobs"] = {"content": logprobs_content(c)}
        return choice


class ChatChunks(StreamRenderer):
    def __init__(self, chunk_id: str, created: int, model: str, engine_fields: bool, buffer_text: bool):
        self.base = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self.engine_fields = engine_fields
        self.buffer_text = buffer_text
        self._opened: set[int] = set()

    def _chunk(self, index: int, delta: dict, finish_reason: str | None = None, **extra) -> dict:
        if index not in self._opened:
            self._opened.add(index)
            delta = {"role": "assistant", **delta}
        return {**self.base, "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason, "logprobs": None, **extra}]}

    def delta(self, index: int, text: str) -> dict:
        return self._chunk(index, {"content": text})

    def finish(self, c: events_pb2.Completion, remaining_text: str) -> list[dict]:
        out = []
        if remaining_text:
            out.append(self._chunk(c.index, {"content": remaining_text}))
        if c.tool_calls_json:
            calls = [{"index": i, **call} for i, call in enumerate(json.loads(c.tool_calls_json))]
            out.append(self._chunk(c.index, {"tool_calls": calls}))
        extra = {"token_ids": list(c.token_ids), "logprobs": {"content": logprobs_content(c)}} if self.engine_fields else {}
        out.append(self._chunk(c.index, {}, c.finish_reason or "stop", **extra))
        return out

    def usage(self, result: inference_pb2.GenerateResponse) -> dict:
        return {**self.base, "choices": [], "usage": usage(result)}
