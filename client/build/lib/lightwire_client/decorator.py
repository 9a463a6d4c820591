"""`@rollout`: mark a plain or async function as a Lightwire agent and serve it with a Worker."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lightwire_client.worker import Worker, WorkerConfig


def rollout(fn: Callable | None = None, **config: Any):
    """`@rollout` or `@rollout(task_types=("arith",), concurrency=4)`; then `fn.serve()` or `fn.worker()`.

    The function is still callable as before; exceptions it raises while served are captured as error events
    (type, message, stack) and the rollout finishes as failed.
    """

    def wrap(f: Callable) -> Callable:
        @functools.wraps(f)
        def same(*args, **kwargs):
            return f(*args, **kwargs)

        if hasattr(f, "__code__") and f.__code__.co_flags & 0x80:  # keep coroutine functions awaitable
            same = f
        same.worker = lambda **overrides: Worker(f, WorkerConfig(**{**config, **overrides}))  # type: ignore[attr-defined]
        same.serve = lambda **overrides: same.worker(**overrides).run_forever()  # type: ignore[attr-defined]
        return same

    return wrap(fn) if fn is not None else wrap
