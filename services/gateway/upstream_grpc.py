"""The Lightwire Inference service as upstream (gRPC). Its caller errors carry a stable kind in `lw-error-kind`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from lightwire.runtime.grpc_limits import GRPC_MESSAGE_OPTIONS
from lightwire.v1 import inference_pb2, inference_pb2_grpc
from lightwire.services.gateway import errors

_CALLER_ERRORS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.FAILED_PRECONDITION)


class InferenceUpstream:
    def __init__(self, target: str, timeout_s: float):
        self.target = target
        self.timeout_s = timeout_s
        self.channel = grpc.aio.insecure_channel(
            target, options=GRPC_MESSAGE_OPTIONS
        )
        self.stub = inference_pb2_grpc.InferenceStub(self.channel)

    async def generate(self, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        try:
            return await self.stub.Generate(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise map_error(exc) from None

    async def generate_stream(self, request: inference_pb2.GenerateRequest) -> AsyncIterator[inference_pb2.GenerateChunk]:
        call = self.stub.GenerateStream(request, timeout=self.timeout_s)
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as exc:
            raise map_error(exc) from None
        finally:
            call.cancel()  # a client that went away stops the generation too

    async def health(self) -> inference_pb2.HealthResponse:
        try:
            return await self.stub.Health(inference_pb2.HealthRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise map_error(exc) from None

    async def close(self) -> None:
        await self.channel.close()


def map_error(exc: grpc.aio.AioRpcError) -> errors.GatewayError:
    kind = dict(exc.trailing_metadata() or ()).get("lw-error-kind", "")
    code = exc.code()
    details = exc.details() or code.name
    if code in _CALLER_ERRORS:
        if kind == "context_length_exceeded":
            return errors.context_overflow(details)
        return errors.invalid(details, code=kind or None)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.upstream_timeout()
    return errors.upstream_failed(f"inference upstream failed: {code.name}: {details}")
