"""Shared bits of the benchmarks: percentiles, results files, a rich table of figures, the broker they run on."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine(),
           "cpus": __import__("os").cpu_count(), **figures}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def show(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table("figure", "value", title=title)
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def bench_venv(name: str, packages: list[str]) -> Path:
    """A virtualenv of its own for a baseline whose dependencies must stay out of the project's (LiteLLM, TRL):
    `$LW_CACHE_DIR/venv-<name>`, built once with uv from `packages` and reused; returns its python."""
    import sys

    sys.path.insert(0, str(RESULTS.parents[1]))
    from lightwire.tools.stack.framework_venv import cache_dir, cached_venv  # the same builder the framework tests use

    return cached_venv(cache_dir() / f"venv-{name}", *packages)


class BenchSetupError(SystemExit):
    """What a bench needs is not there and it could not start it: exits at once, saying what to start."""

    def __init__(self, message: str):
        super().__init__(f"bench: {message}")


def kafka_answers(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """Whether a broker on `bootstrap` answers a metadata request within `timeout_s` (quietly: aiokafka logs every
    refused connection at ERROR)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def ask() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    try:
        asyncio.run(asyncio.wait_for(ask(), timeout_s))
        return True
    except Exception:
        return False


@contextlib.contextmanager
def bench_broker() -> Iterator[str]:
    """A Kafka broker for a bench; yields its bootstrap address.

    LW_KAFKA_BOOTSTRAP set: that broker, which must answer within seconds (else the bench stops and says what to start).
    Not set: the test stack's broker (LW_TEST_KAFKA_PORT picks its port, 19092 by default), started here if it is
    not running and stopped again at the end if this bench started it."""
    given = os.environ.get("LW_KAFKA_BOOTSTRAP")
    if given:
        if not kafka_answers(given):
            raise BenchSetupError(
                f"no Kafka broker answers on {given} (LW_KAFKA_BOOTSTRAP). Start it (e.g. `lightwire stack up` with "
                "LW_KAFKA_PORT set to its port), or unset LW_KAFKA_BOOTSTRAP and the bench starts a broker of its own "
                "on LW_TEST_KAFKA_PORT (default 19092).")
        yield given
        return
    sys.path.insert(0, str(RESULTS.parents[1]))
    from lightwire.tools.stack.kafka_broker import BrokerError, KafkaCluster
    from lightwire.tools.stack.settings import StackSettings

    port = int(os.environ.get("LW_TEST_KAFKA_PORT", "19092"))
    settings = StackSettings(kafka_port=port, kafka_controller_port=port + 1, kafka_bootstrap=f"127.0.0.1:{port}",
                             state_dir=RESULTS.parents[1] / ".lightwire" / ("test-stack" if port == 19092 else f"test-stack-{port}"))
    broker = KafkaCluster(settings)
    started_here = not broker.running()
    if started_here:
        print(f"starting a Kafka broker for the bench on {settings.bootstrap} (state in {settings.state_dir})", flush=True)
    try:
        broker.start()
    except (BrokerError, RuntimeError) as exc:
        if started_here:
            broker.stop()
        raise BenchSetupError(f"could not start a Kafka broker on {settings.bootstrap}: {exc}\n"
                              "Set LW_TEST_KAFKA_PORT to a free port, or LW_KAFKA_BOOTSTRAP to a broker that runs.") from None
    try:
        yield settings.bootstrap
    finally:
        if started_here:
            broker.stop()
