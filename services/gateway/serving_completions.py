"""POST /v1/completions: OpenAI (legacy) completion request -> Inference request -> OpenAI text completion."""

from __future__ import annotations

from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.gateway.protocol import CompletionRequest
from lightwire.services.gateway.serving_base import ServingBase, StreamRenderer, sampling, usage


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
    response_object = "text_completion"
    id_prefix = "cmpl"

    to_generate = staticmethod(to_generate)

    def renderer(self, request: CompletionRequest, chunk_id: str, created: int, model: str) -> StreamRenderer:
        return TextChunks(chunk_id, created, model, request.wants_engine_fields)

    def choice(self, c: events_pb2.Completion, engine_fields: bool) -> dict:
        choice = {"index": c.index, "text": c.text, "finish_reason": c.finish_reason or "stop", "logprobs": None}
        if engine_fields:
            choice["token_ids"] = list(c.token_ids)
            choice["logprobs"] = text_logprobs(c)
        return choice


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
