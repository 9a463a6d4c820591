"""The `lightwire.v1.Inference` gRPC servicer: a thin adapter from protos to the engine.

Caller errors are INVALID_ARGUMENT (FAILED_PRECONDITION for stale weights, NOT_FOUND for missing checkpoints),
with the reason as details and its stable kind in the trailing metadata `lw-error-kind`
(e.g. "context_length_exceeded"), which the gateway maps to HTTP 400 and an error class.
"""

from __future__ import annotations

import logging
import time

import grpc

from lightwire.v1 import inference_pb2, inference_pb2_grpc
from lightwire.services.inference import wire
from lightwire.services.inference.engine import (
    Engine,
    GenerationResult,
    InferenceError,
    StaleWeights,
    WeightsNotFound,
)

log = logging.getLogger(__name__)

ERROR_KIND_KEY = "lw-error-kind"


def _status(exc: InferenceError) -> grpc.StatusCode:
    if isinstance(exc, StaleWeights):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, WeightsNotFound):
        return grpc.StatusCode.NOT_FOUND
    return grpc.StatusCode.INVALID_ARGUMENT


async def _abort(context: grpc.aio.ServicerContext, exc: InferenceError) -> None:
    context.set_trailing_metadata(((ERROR_KIND_KEY, exc.kind),))
    await context.abort(_status(exc), f"{exc.kind}: {exc}")


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    def __init__(self, engine: Engine, default_max_tokens: int = 512):
        self._engine = engine
        self._default_max_tokens = default_max_tokens

    async def Generate(self, request: inference_pb2.GenerateRequest, context) -> inference_pb2.GenerateResponse:
        try:
            prepared = wire.prepare(self._engine.tokenizer, request, self._default_max_tokens)
            result = await self._engine.generate(prepared.request)
        except InferenceError as exc:
            await _abort(context, exc)
        return wire.response(result, prepared)

    async def GenerateStream(self, request: inference_pb2.GenerateRequest, context):
        try:
            prepared = wire.prepare(self._engine.tokenizer, request, self._default_max_tokens)
            async for item in self._engine.generate_stream(prepared.request):
                if isinstance(item, GenerationResult):
                    yield inference_pb2.GenerateChunk(final=wire.response(item, prepared))
                else:
                    yield inference_pb2.GenerateChunk(index=item.index, text_delta=item.text)
        except InferenceError as exc:
            await _abort(context, exc)

    async def LoadWeights(self, request: inference_pb2.LoadWeightsRequest, context) -> inference_pb2.LoadWeightsResponse:
        try:
            if request.version < 1:
                raise InferenceError("version must be >= 1")
            if not request.uri:
                raise InferenceError("uri is required")
            t0 = time.monotonic()
            await self._engine.load_weights(request.version, request.uri, request.format or "full")
        except InferenceError as exc:
            await _abort(context, exc)
        return inference_pb2.LoadWeightsResponse(version=self._engine.model_version, load_seconds=time.monotonic() - t0)

    async def Health(self, request: inference_pb2.HealthRequest, context) -> inference_pb2.HealthResponse:
        h = await self._engine.health()
        return inference_pb2.HealthResponse(
            status=h.status, model=h.model, model_version=h.model_version, engine=h.engine, max_context=h.max_context
        )

    async def Tokenize(self, request: inference_pb2.TokenizeRequest, context) -> inference_pb2.TokenizeResponse:
        tokenizer = self._engine.tokenizer
        try:
            ids, _ = wire.prompt_ids(
                tokenizer, messages=request.messages, prompt=request.prompt, token_ids=request.token_ids, tools_json=request.tools_json
            )
        except InferenceError as exc:
            await _abort(context, exc)
        return inference_pb2.TokenizeResponse(token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=False))
