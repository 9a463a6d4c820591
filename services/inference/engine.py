"""The inference engine interface: generation on token ids with exact logprobs, weight reloads, health.

Two implementations: `hf_engine.HfEngine` (transformers, CPU or CUDA, dynamic batching in-process) and
`vllm_engine.VllmEngine` (a vLLM OpenAI-compatible server). The chat template is not the engine's job: callers
render prompts with `chat.py` on the engine's tokenizer, so prompt token ids are decided once, here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinishReason = Literal["stop", "length"]
WeightFormat = Literal["full", "lora"]
BASE_VERSION = 1  # the weights a server starts with; 0 would read as "unknown" downstream


class InferenceError(Exception):
    """An error the caller caused; `kind` is stable text the gateway maps to an HTTP status / error class."""

    kind = "invalid_request"


class ContextLengthExceeded(InferenceError):
    kind = "context_length_exceeded"


class StaleWeights(InferenceError):
    """A weight version older than the one served (a late or replayed announcement)."""

    kind = "stale_weights"


class WeightsNotFound(InferenceError):
    kind = "weights_not_found"


@dataclass(frozen=True)
class SamplingOptions:
    """temperature 0 is greedy. `seed` None draws a fresh seed. Sequence i of a seeded request uses its own
    generator derived from (seed, i), so a request's samples do not depend on what else shares its batch."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise InferenceError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InferenceError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise InferenceError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 1 <= self.n <= 64:
            raise InferenceError(f"n must be between 1 and 64, got {self.n}")
        if any(not s for s in self.stop):
            raise InferenceError("stop strings must not be empty")


@dataclass(frozen=True)
class GenerationRequest:
    prompt_token_ids: tuple[int, ...]
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    request_id: str = ""


@dataclass
class CompletionOutput:
    index: int
    # Every sampled token, including the EOS token or the token that completed a stop string.
    token_ids: list[int]
    # log p(token) under the distribution it was sampled from: log_softmax(logits / T) restricted to the top_p
    # nucleus and renormalised (vLLM's processed_logprobs). Greedy (T=0) reports log_softmax(logits).
    logprobs: list[float]
    finish_reason: FinishReason
    # Decoded text without special tokens, cut before a matched stop string.
    text: str


@dataclass
class GenerationResult:
    model: str
    model_version: int
    prompt_token_ids: list[int]
    completions: list[CompletionOutput]


@dataclass(frozen=True)
class TextDelta:
    """Streaming: new text of completion `index`. Deltas hold back text that could still become a stop string."""

    index: int
    text: str


@dataclass(frozen=True)
class EngineHealth:
    status: str
    model: str
    model_version: int
    engine: str
    max_context: int


class Engine(Protocol):
    name: str  # "hf" or "vllm"
    model_name: str

    @property
    def tokenizer(self) -> Any:
        """The model's HF tokenizer (chat template included)."""

    @property
    def max_context(self) -> int: ...

    @property
    def model_version(self) -> int: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def generate_stream(self, request: GenerationRequest) -> AsyncIterator[TextDelta | GenerationResult]:
        """Text deltas as they are decoded, then the full result last."""

    async def load_weights(self, version: int, uri: str, format: WeightFormat) -> float:
        """Serve `version` from `uri` for every request admitted after this returns; seconds it took."""

    async def health(self) -> EngineHealth: ...


class EngineBase:
    """What both engines keep the same way: the tokenizer, the context length, and how health is reported."""

    name = ""
    model_name = ""
    _tokenizer: Any = None
    _max_context = 0

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def max_context(self) -> int:
        return self._max_context

    @property
    def model_version(self) -> int:
        raise NotImplementedError

    def health_as(self, status: str) -> EngineHealth:
        return EngineHealth(status, self.model_name, self.model_version, self.name, self._max_context)


def check_context(prompt_len: int, max_tokens: int, max_context: int) -> int:
    """The max_tokens a request may use: a prompt that leaves no room raises; a long max_tokens is clamped."""
    if prompt_len == 0:
        raise InferenceError("the prompt is empty")
    if prompt_len >= max_context:
        raise ContextLengthExceeded(
            f"the prompt has {prompt_len} tokens but the model's context is {max_context} tokens (no room for a completion)"
        )
    return min(max_tokens, max_context - prompt_len)


def path_from_uri(uri: str) -> str:
    """file:///x/y or /x/y -> /x/y. Other schemes are not fetched by the engines."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        raise WeightsNotFound(f"only file:// weight URIs are supported, got {uri!r}")
    return uri
