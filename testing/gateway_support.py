"""Running the gateway (and the inference service) in-process for the gateway's integration tests.

`running_gateway` serves on the test's own event loop (for async clients); `ServiceThread` runs services on a
loop of their own, for sync clients such as `openai.OpenAI` that would otherwise block the loop serving them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path


from lightwire.tools.stack.health import wait_healthy as wait_until_healthy

from lightwire.services.gateway.main import serve
from lightwire.services.gateway.settings import GatewaySettings
from testing.services_fixtures import free_port


def gateway_settings(bootstrap: str, prefix: str, state_dir: Path, **overrides) -> GatewaySettings:
    values = dict(kafka_bootstrap=bootstrap, topic_prefix=prefix, state_dir=state_dir, gateway_http_port=free_port(),
                  gateway_grpc_port=free_port(), log_level="WARNING", instance_id=f"gateway-{prefix}{free_port()}")
    return GatewaySettings(**(values | overrides))


async def wait_healthy(url: str, timeout_s: float = 30.0) -> None:
    """The one health wait (tools.stack.health), off the loop that serves the service being waited for."""
    await asyncio.to_thread(wait_until_healthy, url, lambda: None, timeout_s, 0.05)


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings):
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        await wait_healthy(settings.health_url())
        yield settings
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class ServiceThread:
    """Runs `serve(settings, stop)` coroutines on an event loop in a background thread until `close()`."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stops: list[asyncio.Event] = []
        self._tasks: list = []

    def start(self, serve_fn, settings, health_url: str, timeout_s: float = 120.0) -> None:
        async def begin():
            stop = asyncio.Event()
            self._stops.append(stop)
            self._tasks.append(asyncio.ensure_future(serve_fn(settings, stop)))

        asyncio.run_coroutine_threadsafe(begin(), self.loop).result()
        task = self._tasks[-1]
        wait_until_healthy(health_url, lambda: f"service exited during start-up: {task.exception()!r}" if task.done() else None,
                     timeout_s, interval_s=0.1)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        async def end():
            for stop in reversed(self._stops):
                stop.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(end(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
