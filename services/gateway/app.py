"""The gateway's HTTP face: OpenAI routes (also under /rollouts/{rollout_id}/v1), /healthz, /metrics."""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from lightwire.runtime.ops import ops_router
from services.gateway.protocol import ChatCompletionRequest, CompletionRequest, openai_error
from services.gateway.serving import Serving, sse_chunks
from services.gateway.upstream import UpstreamError


def build_app(serving: Serving, keys: frozenset[str], registry: CollectorRegistry, health) -> FastAPI:
    app = FastAPI(title="Lightwire gateway", docs_url=None, redoc_url=None)
    calls = Counter("lw_gateway_calls_total", "LLM calls served", ["endpoint", "status"], registry=registry)
    app.include_router(ops_router(health, registry))

    def error(status: int, message: str, type_: str, code: str | None = None) -> JSONResponse:
        return JSONResponse(openai_error(message, type_, code), status_code=status)

    def check_key(request: Request) -> bool:
        if not keys:
            return True
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return any(hmac.compare_digest(token, k) for k in keys)

    async def handle(request: Request, model_cls, endpoint: str, rollout_id: str):
        if not check_key(request):
            return error(401, "missing or wrong API key", "authentication_error", "invalid_api_key")
        raw = await request.body()
        try:
            body = model_cls.model_validate_json(raw)
        except ValidationError as exc:
            calls.labels(endpoint, "400").inc()
            return error(400, f"invalid request: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}", "invalid_request_error")
        if not serving.known_model(body.model):
            return error(404, f"the model {body.model!r} does not exist; this gateway serves {serving.model_name!r}",
                         "invalid_request_error", "model_not_found")
        rollout = rollout_id or request.headers.get("x-lightwire-rollout", "")
        agent = request.headers.get("x-lightwire-agent", "")
        try:
            result = await (serving.chat(body, rollout, agent, raw) if endpoint == "chat" else serving.completion(body, rollout, agent, raw))
        except UpstreamError as exc:
            calls.labels(endpoint, str(exc.status)).inc()
            return error(exc.status, str(exc), "invalid_request_error" if exc.status < 500 else "api_error", exc.code)
        calls.labels(endpoint, "200").inc()
        if getattr(body, "stream", False):
            return StreamingResponse(iter(sse_chunks(result)), media_type="text/event-stream")
        return JSONResponse(result)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, f"invalid request: {exc.errors()[:1]}", "invalid_request_error")

    for prefix in ("", "/rollouts/{rollout_id}"):
        @app.post(prefix + "/v1/chat/completions")
        async def chat(request: Request, rollout_id: str = ""):
            return await handle(request, ChatCompletionRequest, "chat", rollout_id)

        @app.post(prefix + "/v1/completions")
        async def completions(request: Request, rollout_id: str = ""):
            return await handle(request, CompletionRequest, "completions", rollout_id)

        @app.get(prefix + "/v1/models")
        async def models(rollout_id: str = "") -> Response:
            return JSONResponse({"object": "list", "data": [{"id": serving.model_name, "object": "model", "owned_by": "lightwire"}]})

    return app
