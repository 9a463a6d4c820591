"""Waiting for a service to answer its /healthz, giving up early when the process behind it has died."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


class ServiceFailed(RuntimeError):
    pass


def wait_healthy(url: str, exited: Callable[[], str | None], timeout_s: float, interval_s: float = 0.2) -> None:
    """Poll `url` until it answers 200. `exited()` returns why the service is gone (or None while it runs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reason = exited()
        if reason is not None:
            raise ServiceFailed(reason)
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    raise TimeoutError(f"{url} did not become healthy within {timeout_s:.0f}s")
