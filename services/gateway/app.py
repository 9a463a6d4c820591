"""The gateway's HTTP face: OpenAI routes (also under /rollouts/{rollout_id}/v1), /healthz, /metrics and /openapi.json.

Thin on purpose: authentication, a bounded body read, parsing into wire models, then the serving classes; every
error leaves as an OpenAI error body with its status, the router's own 404/405 and any unexpected failure included.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from lightwire.runtime.ops import HealthCheck, ops_router
from lightwire.services.gateway import errors
from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.gateway.errors import GatewayError
from lightwire.services.gateway.protocol import ChatCompletionRequest, CompletionRequest, SamplingFields, parse
from lightwire.services.gateway.serving_base import CallContext, ServingBase
from lightwire.services.gateway.serving_chat import ChatServing
from lightwire.services.gateway.settings import DEFAULT_MAX_REQUEST_BYTES
from lightwire.services.gateway.serving_completions import CompletionServing

log = logging.getLogger(__name__)

_MAX_ROLLOUT_ID = 200


@dataclass(frozen=True)
class CallRoute:
    """One call route: POST /v1/<path> and POST /rollouts/{rollout_id}/v1/<path>."""

    path: str
    serving: str  # which serving object answers it: "chat" or "completions"
    model: type[SamplingFields]
    summary: str


# The one declaration of the call routes: the raw-ASGI fast path's regex and the FastAPI routes are both built from it.
CALL_ROUTES = (CallRoute("chat/completions", "chat", ChatCompletionRequest, "Create a chat completion"),
               CallRoute("completions", "completions", CompletionRequest, "Create a text completion"))
ROLLOUT_PREFIX = "/rollouts/{rollout_id}"
PREFIXES = ("", ROLLOUT_PREFIX)
# {rollout_id} never holds a slash, here as in FastAPI's path matching.
_CALL_PATH = re.compile("^(?:" + re.escape(ROLLOUT_PREFIX).replace(re.escape("{rollout_id}"), "(?P<rollout_id>[^/]+)") + ")?/v1/(?P<endpoint>"
                        + "|".join(re.escape(r.path) for r in CALL_ROUTES) + ")$")


class CallRoutes:
    """Serves the call routes straight from ASGI and hands everything else to the FastAPI app.

    The calls are the gateway's hot path: FastAPI's middleware, routing and dependency layers cost about a fifth of
    its CPU per call there (bench/gateway.py), and these handlers use none of them. The FastAPI app declares the
    same routes from the same table (CALL_ROUTES), so the app alone serves the same API and documents it.
    """

    def __init__(self, app: FastAPI, handle: Callable, servings: dict[str, ServingBase]):
        self.app = app
        self.routes = {r.path: (servings[r.serving], r.model) for r in CALL_ROUTES}
        self.handle = handle

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and (match := _CALL_PATH.match(scope["path"])):
            serving, model_cls = self.routes[match["endpoint"]]
            response = await self.handle(Request(scope, receive), serving, model_cls, match["rollout_id"] or "")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or a 413 as soon as it is known to exceed `limit` bytes (never more than that is held)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise errors.body_too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _error_response(exc: GatewayError, headers: dict | None = None) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """The router's own replies (404 unknown route, 405 wrong method) and any crash leave OpenAI-shaped too."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            message = f"Unknown URL: {where}."
            if request.url.path.startswith("/rollouts/"):
                message += " A rollout id cannot contain '/' (not even encoded as %2F)."
        elif exc.status_code == 405:
            message = f"Method not allowed: {where}."
        else:
            message = str(exc.detail)
        return _error_response(errors.http_status(exc.status_code, message), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = (exc.errors() or [{}])[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        return _error_response(errors.invalid(f"Invalid value for `{param}`: {first.get('msg', 'invalid')}", param=param))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return _error_response(errors.internal())


def _install_openapi(app: FastAPI) -> None:
    """/openapi.json with the wire models as the call routes' request bodies (the handlers read raw bytes)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _, defs = models_json_schema([(r.model, "validation") for r in CALL_ROUTES], ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def build_app(chat: ChatServing, completions: CompletionServing, keys: ApiKeys, registry: CollectorRegistry, health: HealthCheck,
              on_rollout_call: Callable[[str], None] = lambda rollout_id: None,
              max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> CallRoutes:
    app = FastAPI(title="Lightwire gateway", summary="OpenAI-compatible LLM calls, each recorded as a Kafka event.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    _install_error_handlers(app)
    _install_openapi(app)
    app.include_router(ops_router(health, registry))
    servings: dict[str, ServingBase] = {"chat": chat, "completions": completions}
    calls = Counter("lw_gateway_calls_total", "LLM calls answered", ["endpoint", "status"], registry=registry)
    seconds = Histogram("lw_gateway_call_seconds", "Time to the response head (the whole call unless streamed)", ["endpoint"],
                        registry=registry, buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))

    def error(exc: GatewayError, endpoint: str) -> Response:
        calls.labels(endpoint, str(exc.status)).inc()
        return _error_response(exc)

    async def handle(request: Request, serving: ServingBase, model_cls, rollout_id: str) -> Response:
        try:
            return await answer(request, serving, model_cls, rollout_id)
        except Exception:  # a bug must still leave as an OpenAI error, and be counted
            log.exception("unhandled error in a call", extra={"endpoint": serving.endpoint})
            return error(errors.internal(), serving.endpoint)

    async def answer(request: Request, serving: ServingBase, model_cls, rollout_id: str) -> Response:
        t0 = time.perf_counter()
        endpoint = serving.endpoint
        if not keys.allows(request.headers.get("authorization")):
            return error(errors.unauthenticated(), endpoint)  # not recorded: the caller is nobody we know
        rollout = (rollout_id or request.headers.get("x-lightwire-rollout", ""))[:_MAX_ROLLOUT_ID]
        agent = request.headers.get("x-lightwire-agent", "")
        try:
            raw = await read_body(request, max_request_bytes)
        except GatewayError as exc:  # recorded without the body: it is what must not reach Kafka
            ctx = CallContext(rollout, agent, b"")
            if ctx.rollout_id:
                on_rollout_call(ctx.rollout_id)
            serving.reject(ctx, exc)
            return error(exc, endpoint)
        ctx = CallContext(rollout, agent, raw)
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
                return _error_response(exc)
            name = chat.catalog.name
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "lightwire", "max_model_len": chat.catalog.max_context or None}
                for n in (name, *sorted(chat.catalog.aliases))]
        return JSONResponse({"object": "list", "data": data})

    def call_endpoint(route: CallRoute, prefixed: bool) -> Callable:
        serving = servings[route.serving]
        if prefixed:
            async def endpoint(request: Request, rollout_id: str) -> Response:
                return await handle(request, serving, route.model, rollout_id)
        else:
            async def endpoint(request: Request) -> Response:
                return await handle(request, serving, route.model, "")
        return endpoint

    for prefix in PREFIXES:
        for route in CALL_ROUTES:
            body = {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{route.model.__name__}"}}}}
            app.add_api_route(prefix + "/v1/" + route.path, call_endpoint(route, bool(prefix)), methods=["POST"], summary=route.summary,
                              name=f"{route.serving}{'_in_rollout' if prefix else ''}", openapi_extra={"requestBody": body})

    async def list_models(request: Request) -> Response:
        if not keys.allows(request.headers.get("authorization")):
            return _error_response(errors.unauthenticated())
        return await models()

    async def list_models_in_rollout(request: Request, rollout_id: str) -> Response:
        return await list_models(request)

    for prefix, endpoint in zip(PREFIXES, (list_models, list_models_in_rollout)):
        app.add_api_route(prefix + "/v1/models", endpoint, methods=["GET"], summary="List the served model and its aliases")

    return CallRoutes(app, handle, servings)
