"""The gateway's HTTP face: OpenAI routes (also under /rollouts/{rollout_id}/v1), /healthz and /metrics.

Thin on purpose: authentication, parsing into wire models, then the serving classes; every error leaves as an
OpenAI error body with its status.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from lightwire.runtime.ops import HealthCheck, ops_router
from lightwire.services.gateway import errors
from lightwire.services.gateway.auth import ApiKeys
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.protocol import ChatCompletionRequest, CompletionRequest, parse
from lightwire.services.gateway.serving_base import CallContext, ServingBase
from lightwire.services.gateway.serving_chat import ChatServing
from lightwire.services.gateway.serving_completions import CompletionServing

_MAX_ROLLOUT_ID = 200
# The same paths the FastAPI routes below declare ({rollout_id} never holds a slash there either).
_CALL_PATH = re.compile(r"^(?:/rollouts/(?P<rollout_id>[^/]+))?/v1/(?P<endpoint>chat/completions|completions)$")


class CallRoutes:
    """Serves the two call routes straight from ASGI and hands everything else to the FastAPI app.

    The calls are the gateway's hot path: FastAPI's middleware, routing and dependency layers cost about a fifth of
    its CPU per call there (bench/gateway.py), and these handlers use none of them. The FastAPI routes stay declared,
    so the app alone serves the same API.
    """

    def __init__(self, app: FastAPI, handle: Callable, chat: ServingBase, completions: ServingBase):
        self.app = app
        self.routes = {"chat/completions": (chat, ChatCompletionRequest), "completions": (completions, CompletionRequest)}
        self.handle = handle

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and (match := _CALL_PATH.match(scope["path"])):
            serving, model_cls = self.routes[match["endpoint"]]
            response = await self.handle(Request(scope, receive), serving, model_cls, match["rollout_id"] or "")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_app(chat: ChatServing, completions: CompletionServing, keys: ApiKeys, registry: CollectorRegistry, health: HealthCheck,
              on_rollout_call: Callable[[str], None] = lambda rollout_id: None) -> CallRoutes:
    app = FastAPI(title="Lightwire gateway", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ops_router(health, registry))
    calls = Counter("lw_gateway_calls_total", "LLM calls answered", ["endpoint", "status"], registry=registry)
    seconds = Histogram("lw_gateway_call_seconds", "Time to the response head (the whole call unless streamed)", ["endpoint"],
                        registry=registry, buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))

    def error(exc: GatewayError, endpoint: str) -> Response:
        calls.labels(endpoint, str(exc.status)).inc()
        return JSONResponse(exc.body(), status_code=exc.status)

    async def handle(request: Request, serving: ServingBase, model_cls, rollout_id: str) -> Response:
        t0 = time.perf_counter()
        endpoint = serving.endpoint
        if not keys.allows(request.headers.get("authorization")):
            return error(errors.unauthenticated(), endpoint)  # not recorded: the caller is nobody we know
        rollout = rollout_id or request.headers.get("x-lightwire-rollout", "")
        ctx = CallContext(rollout[:_MAX_ROLLOUT_ID], request.headers.get("x-lightwire-agent", ""), await request.body())
        if ctx.rollout_id:
            on_rollout_call(ctx.rollout_id)
        try:
            body = parse(model_cls, ctx.raw)
        except GatewayError as exc:
            serving.reject(ctx, exc)
            return error(exc, endpoint)
        try:
            result = await serving.create(body, ctx)
        except GatewayError as exc:
            return error(exc, endpoint)
        finally:
            seconds.labels(endpoint).observe(time.perf_counter() - t0)
        calls.labels(endpoint, "200").inc()
        if isinstance(result, bytes):
            return Response(result, media_type="application/json")
        return StreamingResponse(result, media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def models() -> Response:
        name = chat.catalog.name
        if not name:
            try:
                await chat.catalog.refresh()
            except GatewayError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
            name = chat.catalog.name
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "lightwire", "max_model_len": chat.catalog.max_context or None}
                for n in (name, *sorted(chat.catalog.aliases))]
        return JSONResponse({"object": "list", "data": data})

    for prefix in ("", "/rollouts/{rollout_id}"):
        @app.post(prefix + "/v1/chat/completions")
        async def chat_completions(request: Request, rollout_id: str = "") -> Response:
            return await handle(request, chat, ChatCompletionRequest, rollout_id)

        @app.post(prefix + "/v1/completions")
        async def text_completions(request: Request, rollout_id: str = "") -> Response:
            return await handle(request, completions, CompletionRequest, rollout_id)

        @app.get(prefix + "/v1/models")
        async def list_models(request: Request, rollout_id: str = "") -> Response:
            if not keys.allows(request.headers.get("authorization")):
                return JSONResponse(errors.unauthenticated().body(), status_code=401)
            return await models()

    return CallRoutes(app, handle, chat, completions)
