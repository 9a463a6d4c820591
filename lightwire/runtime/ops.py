"""`/healthz` and Prometheus `/metrics` for every service.

Services with their own FastAPI app (the gateway) mount `ops_router`; the others run `serve_ops` beside
their main loop on their ops port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], Awaitable[dict]]


def ops_router(health: HealthCheck, registry: CollectorRegistry) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        try:
            detail = await health()
        except Exception as exc:  # a failing probe is an unhealthy service, not a crashed endpoint
            return JSONResponse({"status": "unhealthy", "error": str(exc)}, status_code=503)
        ok = detail.get("status", "ok") == "ok"
        return JSONResponse({"status": "ok", **detail} if ok else detail, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def ops_app(health: HealthCheck, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(title="lightwire ops", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ops_router(health, registry))
    return app


async def serve_app(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    """Run an ASGI app until `stop` is set; the caller owns signal handling."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # lifecycle.run_service owns SIGTERM/SIGINT
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def serve_ops(health: HealthCheck, registry: CollectorRegistry, host: str, port: int, stop: asyncio.Event) -> None:
    await serve_app(ops_app(health, registry), host, port, stop)
