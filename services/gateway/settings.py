"""Gateway settings (env prefix LW_, e.g. LW_GATEWAY_HTTP_PORT)."""

from __future__ import annotations

from pydantic import Field

from lightwire.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    gateway_host: str = Field("127.0.0.1", description="Address the OpenAI HTTP API and the AgentHub gRPC server bind to.")
    gateway_http_port: int = Field(8000, description="Port of the OpenAI-compatible HTTP API, /healthz and /metrics.")
    gateway_grpc_port: int = Field(50052, description="Port of the AgentHub gRPC service.")
    gateway_upstream: str = Field("127.0.0.1:50051", description="host:port of the Lightwire Inference gRPC service.")
    gateway_public_url: str = Field("", description="Base URL agents reach this gateway at; default http://127.0.0.1:<http port>.")
    gateway_upstream_timeout_s: float = Field(300.0, description="Longest wait for one generation before answering 504.")
    gateway_acquire_wait_ms: int = Field(5000, description="Longest long-poll of AcquireTask when the client names none.")

    def public_url(self) -> str:
        return (self.gateway_public_url or f"http://127.0.0.1:{self.gateway_http_port}").rstrip("/")

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_http_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.gateway_http_port, self.gateway_grpc_port}


Settings = GatewaySettings
