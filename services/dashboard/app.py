"""The dashboard's HTTP app: the six views as pages, their figures as JSON, the static assets, health and metrics.

Every page is the same shell (pages.py) with its view's first figures inline; the script polls `/api/<view>` for
live updates. Bad input never becomes a 5xx: an unknown rollout is a not-found page, a malformed filter a 400 with the
collector's message, and a collector that does not answer a message on the page (the page keeps polling).
With LW_API_KEYS set, every page and JSON route wants a key: a bearer header, or the cookie /login sets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.dashboard import views
from lightwire.services.dashboard.pages import finite, message_page, page
from lightwire.services.dashboard.read_api import ReadApi, UpstreamError
from lightwire.services.dashboard.settings import DashboardSettings
from lightwire.services.dashboard.tokens import TokenTexts

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "lightwire_key"
ASSET_VERSION = str(int(time.time()))  # a new process serves new assets: browsers must not keep the old ones

Figures = Callable[[Request], Awaitable[Any]]


def _next_path(raw: str) -> str:
    # Only a path on this site: never an open redirect to another host.
    return raw if raw.startswith("/") and not raw.startswith("//") else "/"


def build_app(settings: DashboardSettings, api: ReadApi | None = None) -> FastAPI:
    api = api or ReadApi(settings)
    keys = ApiKeys(settings.api_keys)
    tokens = TokenTexts(settings.cache_dir)
    registry = CollectorRegistry()
    requests = Counter("lw_dashboard_requests_total", "Dashboard requests by view and status", ("view", "status"), registry=registry)
    upstream = Histogram("lw_dashboard_figures_seconds", "Time to gather one view's figures", ("view",), registry=registry)
    app = FastAPI(title="Lightwire dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.read_api = api
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def allowed(request: Request) -> bool:
        return keys.allows(request.headers.get("authorization")) or keys.allows(request.cookies.get(COOKIE) or None)

    def login_page(request: Request, message: str = "This dashboard takes the gateway's API keys (LW_API_KEYS).") -> HTMLResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        back = target if request.method == "GET" and request.url.path != "/login" else "/"
        return HTMLResponse(message_page("API key needed", message, form=True, next_path=back), status_code=401)

    async def gather(view: str, figures: Figures, request: Request) -> Any:
        t0 = time.perf_counter()
        try:
            return await figures(request)
        finally:
            upstream.labels(view).observe(time.perf_counter() - t0)

    def register(view: str, path: str, title: Callable[[Request], str], figures: Figures) -> None:
        """A view: its page at `path` and its figures as JSON at /api`path` (the overview's at /api/overview)."""

        async def as_page(request: Request) -> Response:
            if not allowed(request):
                requests.labels(view, "401").inc()
                return login_page(request)
            data, error, status = None, None, 200
            try:
                data = await gather(view, figures, request)
            except UpstreamError as exc:
                if exc.status == 404:
                    requests.labels(view, "404").inc()
                    return HTMLResponse(message_page("Not found", exc.message, status_view="not-found"), status_code=404)
                error, status = {"message": exc.message, "type": exc.kind}, (400 if exc.status == 400 else 200)
            requests.labels(view, str(status)).inc()
            # Re-encoded: the path arrives decoded, and a rollout id may hold characters a URL must escape.
            api_path = "/api/overview" if request.url.path == "/" else "/api" + quote(request.url.path)
            body = page(view, title(request), data=data, error=error, api=api_path,
                        refresh_s=settings.dashboard_refresh_s, version=ASSET_VERSION)
            return HTMLResponse(body, status_code=status)

        async def as_json(request: Request) -> Response:
            if not allowed(request):
                requests.labels(view, "401").inc()
                return JSONResponse({"error": {"message": "an API key is needed (LW_API_KEYS)", "type": "unauthorized"}}, status_code=401)
            try:
                data = await gather(view, figures, request)
            except UpstreamError as exc:
                requests.labels(view, str(exc.status)).inc()
                return JSONResponse({"error": {"message": exc.message, "type": exc.kind}}, status_code=exc.status)
            requests.labels(view, "200").inc()
            return JSONResponse(finite(data))

        app.add_api_route(path, as_page, methods=["GET"], include_in_schema=False)
        app.add_api_route("/api" + (path if path != "/" else "/overview"), as_json, methods=["GET"], include_in_schema=False)

    register("overview", "/", lambda r: "Overview", lambda r: views.overview(api))
    register("training", "/training", lambda r: "Training", lambda r: views.training(api))
    register("rollouts", "/rollouts", lambda r: "Rollouts", lambda r: views.rollouts(api, r.query_params))
    register("rollout", "/rollouts/{rollout_id:path}", lambda r: f"Rollout {r.path_params['rollout_id']}",
             lambda r: views.rollout(api, r.path_params["rollout_id"], tokens.texts))
    register("errors", "/errors", lambda r: "Errors", lambda r: views.errors(api))
    register("feedback", "/feedback", lambda r: "Feedback", lambda r: views.feedback(api))

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return RedirectResponse("/", status_code=303) if allowed(request) else login_page(request)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body())[:4096].decode(errors="replace"))
        key = (form.get("key") or [""])[0].strip()
        if not keys.allows(key or None):
            return login_page(request, "That key is not one of the dashboard's API keys.")
        response = RedirectResponse(_next_path((form.get("next") or ["/"])[0]), status_code=303)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse("/static/icon.svg", status_code=308)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok", "collector": settings.dashboard_collector_url, "url": settings.public_url()}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": {"message": message, "type": "http_error"}}, status_code=exc.status_code)
        return HTMLResponse(message_page("Not found" if exc.status_code == 404 else "Cannot do that", message,
                                         status_view="not-found"), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> Response:
        # Logged here with its traceback; the person sees what failed, never the trace.
        log.exception("dashboard request failed", extra={"path": request.url.path})
        message = f"the dashboard failed to answer ({type(exc).__name__}); see its log"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": {"message": message, "type": "internal"}}, status_code=500)
        return HTMLResponse(message_page("Something failed", message), status_code=500)

    return app
