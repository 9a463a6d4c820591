"""The Lightwire Inference service as the gateway's upstream (gRPC)."""

from __future__ import annotations

import grpc

from lightwire.v1 import inference_pb2, inference_pb2_grpc


class UpstreamError(Exception):
    """What went wrong upstream, already mapped to the HTTP status and OpenAI error the client gets."""

    def __init__(self, status: int, message: str, error_class: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_class = error_class
        self.code = code


class InferenceUpstream:
    def __init__(self, target: str, timeout_s: float):
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = inference_pb2_grpc.InferenceStub(self.channel)
        self.timeout_s = timeout_s

    async def generate(self, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        try:
            return await self.stub.Generate(request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise self._map(exc) from None

    async def health(self) -> inference_pb2.HealthResponse:
        try:
            return await self.stub.Health(inference_pb2.HealthRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            raise self._map(exc) from None

    @staticmethod
    def _map(exc: grpc.aio.AioRpcError) -> UpstreamError:
        kind = dict(exc.trailing_metadata() or ()).get("lw-error-kind", "")
        code = exc.code()
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            error_class = "context_overflow" if kind == "context_length_exceeded" else ""
            return UpstreamError(400, exc.details() or "invalid request", error_class, kind or None)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return UpstreamError(504, "the model did not answer in time", "timeout")
        return UpstreamError(502, f"inference upstream failed: {code.name}: {exc.details()}", "upstream_error")

    async def close(self) -> None:
        await self.channel.close()
