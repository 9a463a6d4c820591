"""What chat and completions serving share: the model catalog, one upstream call recorded as one LlmCall event,
and streaming as OpenAI server-sent events.

A call is recorded exactly once whatever happens: success, the caller's mistake, the upstream's failure, or a
client that goes away mid-stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from lightwire.v1 import events_pb2, inference_pb2
from lightwire.services.gateway import errors
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.recorder import Recorder
from lightwire.services.gateway.upstream import Upstream

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class CallContext:
    """Who made the call: the rollout (from the URL or the X-Lightwire-Rollout header), the agent, the raw body."""

    rollout_id: str
    agent_name: str
    raw: bytes
    # The prompt version the gateway applied to the messages (0: none); stamped on the call's event.
    prompt_version: int = 0


class ModelCatalog:
    """The model the upstream serves, learned from its health answer (again after a failure), plus accepted aliases."""

    def __init__(self, upstream: Upstream, aliases: frozenset[str] = frozenset()):
        self.upstream = upstream
        self.aliases = aliases
        self.name = ""
        self.model_version = 0
        self.max_context = 0

    async def refresh(self) -> None:
        health = await self.upstream.health()
        self.name, self.model_version, self.max_context = health.model, health.model_version, health.max_context

    async def resolve(self, requested: str) -> str:
        if not self.name:
            await self.refresh()
        if requested != self.name and requested not in self.aliases:
            raise errors.unknown_model(requested, self.name)
        return self.name


def sampling(temperature: float | None, top_p: float | None, max_tokens: int | None, n: int, stop: list[str] | None,
             seed: int | None) -> inference_pb2.SamplingParams:
    # OpenAI's default temperature is 1; the Inference contract reads 0 as greedy, so say 1 explicitly.
    params = inference_pb2.SamplingParams(temperature=1.0 if temperature is None else temperature, top_p=top_p or 1.0,
                                          max_tokens=max_tokens or 0, stop=stop or (), n=n)
    if seed is not None:
        params.seed, params.has_seed = seed, True
    return params


def sse(doc: dict) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def usage(result: inference_pb2.GenerateResponse) -> dict:
    prompt, completion = len(result.prompt_token_ids), sum(len(c.token_ids) for c in result.completions)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class StreamRenderer:
    """How one endpoint spells its stream chunks; serving_chat and serving_completions each provide one."""

    buffer_text = False  # True: no live text deltas (the final parse may turn the text into tool calls)

    def delta(self, index: int, text: str) -> dict: ...

    def finish(self, completion: events_pb2.Completion, remaining_text: str) -> list[dict]: ...

    def usage(self, result: inference_pb2.GenerateResponse) -> dict: ...


class ServingBase:
    """One OpenAI endpoint. Subclasses say how a request becomes a GenerateRequest, how one completion reads as a
    choice, and how the stream spells its chunks; the call itself is the same for both."""

    endpoint = ""
    response_object = ""
    id_prefix = ""

    def to_generate(self, request, model: str) -> inference_pb2.GenerateRequest: ...

    def shape(self, request, ctx: CallContext):
        """(request, ctx) as the model will see them; chat serving applies the rollout's prompt policy here."""
        return request, ctx

    def choice(self, completion: events_pb2.Completion, engine_fields: bool) -> dict: ...

    def renderer(self, request, chunk_id: str, created: int, model: str) -> StreamRenderer: ...

    def __init__(self, upstream: Upstream, recorder: Recorder, catalog: ModelCatalog):
        self.upstream = upstream
        self.recorder = recorder
        self.catalog = catalog
        self.stream_mismatches = 0

    async def create(self, request, ctx: CallContext) -> bytes | AsyncIterator[bytes]:
        model = await self.resolve(request.model, ctx, request.stream)
        request, ctx = self.shape(request, ctx)
        generate = self.to_generate(request, model)
        created = int(time.time())
        engine_fields = request.wants_engine_fields

        def render(result: inference_pb2.GenerateResponse, call_id: str) -> dict:
            # The fingerprint names the weight version that answered.
            body = {"id": f"{self.id_prefix}-{call_id}", "object": self.response_object, "created": created,
                    "model": result.model or model, "choices": [self.choice(c, engine_fields) for c in result.completions],
                    "usage": usage(result), "system_fingerprint": f"lightwire-v{result.model_version}"}
            if engine_fields:
                body["prompt_token_ids"] = list(result.prompt_token_ids)
            return body

        if not request.stream:
            return await self.generate(generate, ctx, render)
        renderer = self.renderer(request, f"{self.id_prefix}-{ctx.rollout_id or 'unattributed'}-{created}", created, model)
        return await self.stream(generate, ctx, renderer, render, request.include_usage)

    def reject(self, ctx: CallContext, error: GatewayError, stream: bool = False) -> None:
        """Record a call refused before it reached the upstream (bad JSON, invalid parameters, unknown model)."""
        call = self.recorder.begin(self.endpoint, ctx.rollout_id, ctx.agent_name, ctx.raw.decode(errors="replace"), stream)
        self.recorder.failed(call, error, 0.0, orjson.dumps(error.body()).decode())

    async def resolve(self, requested: str, ctx: CallContext, stream: bool) -> str:
        try:
            return await self.catalog.resolve(requested)
        except GatewayError as exc:
            self.reject(ctx, exc, stream)
            raise

    async def generate(self, request: inference_pb2.GenerateRequest, ctx: CallContext,
                       render: Callable[[inference_pb2.GenerateResponse, str], dict]) -> bytes:
        """One upstream call; returns the JSON body for the client, records the call."""
        call = self.recorder.begin(self.endpoint, ctx.rollout_id, ctx.agent_name, ctx.raw.decode(errors="replace"), False)
        call.model, call.prompt_version = request.model, ctx.prompt_version
        t0 = time.perf_counter()
        try:
            result = await self.upstream.generate(request)
        except GatewayError as exc:
            self.recorder.failed(call, exc, (time.perf_counter() - t0) * 1000, orjson.dumps(exc.body()).decode())
            raise
        latency_ms = (time.perf_counter() - t0) * 1000
        body = orjson.dumps(render(result, call.call_id))
        await self.recorder.durable(self.recorder.succeeded(call, result, body.decode(), latency_ms))
        return body

    async def stream(self, request: inference_pb2.GenerateRequest, ctx: CallContext, renderer: StreamRenderer,
                     render: Callable[[inference_pb2.GenerateResponse, str], dict], include_usage: bool) -> AsyncIterator[bytes]:
        """Starts the upstream stream; upstream errors before the first chunk raise here (a plain HTTP error)."""
        call = self.recorder.begin(self.endpoint, ctx.rollout_id, ctx.agent_name, ctx.raw.decode(errors="replace"), True)
        call.model, call.prompt_version = request.model, ctx.prompt_version
        t0 = time.perf_counter()
        chunks = self.upstream.generate_stream(request).__aiter__()
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except GatewayError as exc:
            self.recorder.failed(call, exc, (time.perf_counter() - t0) * 1000, orjson.dumps(exc.body()).decode())
            raise
        return self._events(call, t0, first, chunks, renderer, render, include_usage)

    async def _events(self, call, t0, first, chunks, renderer: StreamRenderer, render, include_usage: bool) -> AsyncIterator[bytes]:
        streamed: dict[int, str] = {}
        recorded = False
        try:
            chunk = first
            while chunk is not None and not chunk.HasField("final"):
                if chunk.text_delta and not renderer.buffer_text:
                    streamed[chunk.index] = streamed.get(chunk.index, "") + chunk.text_delta
                    yield sse(renderer.delta(chunk.index, chunk.text_delta))
                chunk = await anext(chunks, None)
            if chunk is None:
                raise errors.upstream_failed("the upstream stream ended without its final chunk")
            result = chunk.final
            for completion in result.completions:
                sent = streamed.get(completion.index, "")
                if not completion.text.startswith(sent):
                    self.stream_mismatches += 1  # what was streamed stays; the event records the final text
                for doc in renderer.finish(completion, completion.text[len(sent):] if completion.text.startswith(sent) else ""):
                    yield sse(doc)
            if include_usage:
                yield sse(renderer.usage(result))
            latency_ms = (time.perf_counter() - t0) * 1000
            published = self.recorder.succeeded(call, result, orjson.dumps(render(result, call.call_id)).decode(), latency_ms)
            recorded = True
            # [DONE] is what tells the client the call succeeded: only once its event is durable.
            await self.recorder.durable(published)
            yield DONE
        except GatewayError as exc:
            if not recorded:
                self.recorder.failed(call, exc, (time.perf_counter() - t0) * 1000, orjson.dumps(exc.body()).decode())
                recorded = True
            yield sse(exc.body())
            yield DONE
        finally:
            if not recorded:  # the client went away (or the server is stopping) mid-stream
                gone = GatewayError(499, "the client closed the stream before it ended", "client_error", code="client_closed",
                                    error_class="client_closed")
                self.recorder.failed(call, gone, (time.perf_counter() - t0) * 1000)
            await _close(chunks)


async def _close(chunks) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing a broken upstream stream must not hide what happened before
            log.debug("closing the upstream stream failed", exc_info=True)
