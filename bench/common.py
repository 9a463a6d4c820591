"""Shared bits of the benchmarks: percentiles, results files, a rich table of figures."""

from __future__ import annotations

import json
import platform
import statistics
import time
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
    from testing.framework_venv import cache_dir, cached_venv  # the same builder the framework tests use

    return cached_venv(cache_dir() / f"venv-{name}", *packages)
