"""What the gateway needs from a model server. Two implementations: the Lightwire Inference service over gRPC
(upstream_grpc) and any OpenAI-compatible HTTP server such as vLLM (upstream_http).

Both speak the Inference protos inward, so the serving code has one request and one response type whatever
the upstream is; failures arrive as `GatewayError`s (400 for the caller's mistakes, 502 and 504 for the upstream's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from lightwire.v1 import inference_pb2


class Upstream(Protocol):
    async def generate(self, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse: ...

    def generate_stream(self, request: inference_pb2.GenerateRequest) -> AsyncIterator[inference_pb2.GenerateChunk]:
        """Text deltas, then one chunk whose `final` holds the whole response."""
        ...

    async def health(self) -> inference_pb2.HealthResponse: ...

    async def close(self) -> None: ...


def connect(target: str, timeout_s: float, *, api_key: str = "", model_version: int = 1) -> Upstream:
    """The upstream a `gateway_upstream` setting names: http(s)://... is OpenAI HTTP, grpc://host:port or host:port is gRPC."""
    if target.startswith(("http://", "https://")):
        from lightwire.services.gateway.upstream_http import OpenAIHttpUpstream

        return OpenAIHttpUpstream(target, timeout_s, api_key=api_key, model_version=model_version)
    from lightwire.services.gateway.upstream_grpc import InferenceUpstream

    return InferenceUpstream(target.removeprefix("grpc://"), timeout_s)
