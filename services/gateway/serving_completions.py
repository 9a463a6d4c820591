"""POST /v1/completions: OpenAI (legacy) completion request -> Inference request -> OpenAI text completion."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from lightwire.v1 import events_pb2, inference_pb2
from services.gateway.protocol import CompletionRequest
from services.gateway.serving_base import CallContext, ServingBase, StreamRenderer, sampling, usage


def to_generate(request: CompletionRequest, model: str) -> inference_pb2.GenerateRequest:
    generate = inference_pb2.GenerateRequest(
        model=model, sampling=sampling(request.temperature, request.top_p, request.max_tokens, request.n, request.stop, request.seed)
    )
    if isinstance(request.prompt, str):
        generate.prompt = request.prompt
    else:
        generate.prompt_token_ids.extend(request.prompt)
    return generate


def text_logprobs(c: events_pb2.Completion) -> dict:
    return {"tokens": [f"token_id:{t}" for t in c.token_ids], "token_logprobs": list(c.logprobs), "top_logprobs": None, "text_offset": None}


class CompletionServing(ServingBase):
    endpoint = "completions"

    async def create(self, request: CompletionRequest, ctx: CallContext) -> bytes | AsyncIterator[bytes]:
        model = await self.resolve(request.model, ctx, request.stream)
        generate = to_generate(request, model)
        created = int(time.time())
        engine_fields = request.wants_engine_fields

        def render(result: inference_pb2.GenerateResponse, call_id: str) -> dict:
            choices = []
            for c in result.completions:
                choice = {"index": c.index, "text": c.text, "finish_reason": c.finish_reason or "stop", "logprobs": None}
                if engine_fields:
                    choice["token_ids"] = list(c.token_ids)
                    choice["logprobs"] = text_logprobs(c)
                choices.append(choice)
            body = {"id": f"cmpl-{call_id}", "object": "text_completion", "created": created, "model": result.model or model,
                    "choices": choices, "usage": usage(result), "system_fingerprint": f"lightwire-v{result.model_version}"}
            if engine_fields:
                body["prompt_token_ids"] = list(result.prompt_token_ids)
            return body

        if not request.stream:
            return await self.generate(generate, ctx, render)
        renderer = TextChunks(f"cmpl-{ctx.rollout_id or 'unattributed'}-{created}", created, model, engine_fields)
        return await self.stream(generate, ctx, renderer, render, request.include_usage)


class TextChunks(StreamRenderer):
    def __init__(self, chunk_id: str, created: int, model: str, engine_fields: bool):
        self.base = {"id": chunk_id, "object": "text_completion", "created": created, "model": model}
        self.engine_fields = engine_fields

    def delta(self, index: int, text: str) -> dict:
        return {**self.base, "choices": [{"index": index, "text": text, "finish_reason": None, "logprobs": None}]}

    def finish(self, c: events_pb2.Completion, remaining_text: str) -> list[dict]:
        extra = {"token_ids": list(c.token_ids), "logprobs": text_logprobs(c)} if self.engine_fields else {"logprobs": None}
        return [{**self.base, "choices": [{"index": c.index, "text": remaining_text, "finish_reason": c.finish_reason or "stop", **extra}]}]

    def usage(self, result: inference_pb2.GenerateResponse) -> dict:
        return {**self.base, "choices": [], "usage": usage(result)}
