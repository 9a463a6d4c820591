"""`lightwire serve dashboard`: the web dashboard over the collector's read API."""

from __future__ import annotations

import asyncio
import logging

from lightwire.runtime.lifecycle import run_service
from lightwire.runtime.ops import serve_app
from lightwire.services.dashboard.app import build_app
from lightwire.services.dashboard.settings import DashboardSettings

log = logging.getLogger(__name__)


async def serve(settings: DashboardSettings, stop: asyncio.Event) -> None:
    app = build_app(settings)
    log.info("dashboard serving", extra={"url": settings.public_url(), "collector": settings.dashboard_collector_url})
    try:
        await serve_app(app, settings.dashboard_host, settings.dashboard_port, stop)
    finally:
        await app.state.read_api.close()


def main() -> None:
    settings = DashboardSettings()
    run_service("dashboard", settings, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
