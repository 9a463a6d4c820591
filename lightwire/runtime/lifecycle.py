"""Running a service: logging set up, SIGTERM/SIGINT turned into a graceful stop, exit code on failure."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from lightwire.runtime.logs import configure_logging
from lightwire.settings import CommonSettings

log = logging.getLogger(__name__)

ServiceMain = Callable[[asyncio.Event], Awaitable[None]]


def instance_name(service: str, settings: CommonSettings) -> str:
    return settings.instance_id or f"{service}-{os.getpid()}"


def run_service(service: str, settings: CommonSettings, main: ServiceMain,
                loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> None:
    """Run `main(stop)` until it returns; the first SIGTERM/SIGINT sets `stop` and main drains and returns.

    `loop_factory` picks the event loop (uvloop for the latency-bound gateway); None is asyncio's own.
    """
    configure_logging(service, settings.log_level, settings.log_json)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("service starting", extra={"instance": instance_name(service, settings)})
        await main(stop)
        log.info("service stopped")

    with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
        loop_runner.run(runner())
