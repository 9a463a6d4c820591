"""Gateway settings (env prefix LW_, e.g. LW_GATEWAY_HTTP_PORT)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from lightwire.settings import CommaList, ServiceSettings


DEFAULT_MAX_REQUEST_BYTES = 8 << 20

class GatewaySettings(ServiceSettings):
    gateway_host: str = Field("127.0.0.1", description="Address the OpenAI HTTP API and the AgentHub gRPC server bind to.")
    gateway_http_port: int = Field(8000, description="Port of the OpenAI-compatible HTTP API, /healthz and /metrics.")
    gateway_grpc_port: int = Field(50052, description="Port of the AgentHub gRPC service.")
    gateway_upstream: str = Field(
        "grpc://127.0.0.1:50051",
        description="The model server: grpc://host:port (Lightwire Inference; a bare host:port means the same) or "
        "http(s)://host:port (any OpenAI-compatible server, e.g. vLLM, asked for token ids and logprobs).",
    )
    gateway_upstream_api_key: str = Field("", description="Bearer key the gateway sends to an HTTP upstream; empty sends none.")
    gateway_upstream_model_version: int = Field(
        1, description="Weight version stamped on calls served by an HTTP upstream that does not report one."
    )
    gateway_public_url: str = Field("", description="Base URL agents reach this gateway at; default http://127.0.0.1:<http port>.")
    gateway_model_aliases: CommaList = Field(("default",), description="Comma-separated extra model names accepted for the upstream's model.")
    gateway_upstream_timeout_s: float = Field(300.0, description="Longest wait for one generation before answering 504.")
    gateway_acquire_wait_ms: int = Field(5000, description="Longest long-poll of AcquireTask when the client names none.")
    gateway_heartbeat_interval_ms: int = Field(2000, description="Heartbeat interval the gateway asks workers for.")
    gateway_heartbeat_timeout_s: float = Field(
        30.0, description="A rollout with no heartbeat (or other sign of life) for this long is timed out and its task re-queued."
    )
    gateway_max_attempts: int = Field(3, description="How many times one task slot is handed out at most (first try included).")
    gateway_task_prefetch: int = Field(4, description="Most tasks a replica holds in memory before any worker asked for them.")
    gateway_spool_dir: Path | None = Field(
        None, description="Where events wait while Kafka is unreachable (an append-only file); default <state_dir>/gateway-spool."
    )
    gateway_event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="Event loop of the gateway process; uvloop takes about a third off its per-call CPU (bench/gateway.py).")
    gateway_kafka_linger_ms: int = Field(
        2, description="How long the event producer gathers calls into one Kafka request. A call is answered once its event is "
        "acknowledged, so this adds to its latency; events queued while a request is in flight go out together anyway.")
    gateway_max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES, description="Largest call request body accepted (default 8 MiB); a bigger one is answered 413 without being "
        "read further, and its call is recorded without the body.")
    gateway_prompt_task_types: CommaList = Field(
        (), description="Comma-separated task types whose calls the gateway may shape with a prompt policy from lw.prompts; "
        "empty (the default) leaves every call as the agent sent it and dead-letters every policy.")
    gateway_kafka_timeout_s: float = Field(5.0, description="A send Kafka has not acknowledged in this long goes to the spool.")

    @model_validator(mode="after")
    def _check(self) -> "GatewaySettings":
        if self.gateway_max_attempts < 1:
            raise ValueError("LW_GATEWAY_MAX_ATTEMPTS must be at least 1 (the first hand-out counts)")
        if self.gateway_max_request_bytes < 1:
            raise ValueError("LW_GATEWAY_MAX_REQUEST_BYTES must be at least 1")
        if self.gateway_task_prefetch < 1:
            raise ValueError("LW_GATEWAY_TASK_PREFETCH must be at least 1")
        if self.gateway_heartbeat_timeout_s * 1000 <= self.gateway_heartbeat_interval_ms:
            raise ValueError("LW_GATEWAY_HEARTBEAT_TIMEOUT_S must be longer than LW_GATEWAY_HEARTBEAT_INTERVAL_MS, "
                             "or every rollout times out between two heartbeats")
        if not self.gateway_upstream.strip():
            raise ValueError("LW_GATEWAY_UPSTREAM is required: grpc://host:port or http://host:port")
        return self

    def public_url(self) -> str:
        return (self.gateway_public_url or f"http://127.0.0.1:{self.gateway_http_port}").rstrip("/")

    def spool_dir(self) -> Path:
        return self.gateway_spool_dir or self.state_dir / "gateway-spool"

    def model_aliases(self) -> frozenset[str]:
        return frozenset(self.gateway_model_aliases)

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_http_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.gateway_http_port, self.gateway_grpc_port}


Settings = GatewaySettings
