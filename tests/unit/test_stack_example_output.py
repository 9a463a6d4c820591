"""The framework examples print one JSON line per rollout from several worker threads: each line must stay whole."""

from __future__ import annotations

import ast
import io
import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def arith_task():
    # The examples run as scripts (examples/ on sys.path): import the shared module the same way.
    sys.path.insert(0, str(EXAMPLES))
    try:
        import arith_task

        yield arith_task
    finally:
        sys.path.remove(str(EXAMPLES))


class SlowStream(io.StringIO):
    """A stream that gives other threads a turn in the middle of every write, as a pipe or a full buffer may."""

    def write(self, text: str) -> int:
        for ch in text:
            super().write(ch)
            time.sleep(0)
        return len(text)


def _hammer(fn, threads: int, per_thread: int) -> None:
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            fn(t, i)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _whole_json_lines(text: str, expected: int) -> list[dict]:
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == expected, f"{len(lines)} lines for {expected} reports"
    return [json.loads(line) for line in lines]  # a line with two objects run together would not parse


def test_rollout_reports_from_many_threads_are_whole_lines(arith_task, monkeypatch):
    out = SlowStream()
    monkeypatch.setattr(sys, "stdout", out)
    agent = arith_task._reported(lambda rollout: 0.5)
    _hammer(lambda t, i: agent(SimpleNamespace(rollout_id=f"r-{t}-{i}", calls=t + i)), threads=8, per_thread=25)
    reports = _whole_json_lines(out.getvalue(), 8 * 25)
    assert {r["rollout_id"] for r in reports} == {f"r-{t}-{i}" for t in range(8) for i in range(25)}
    assert all(r["reward"] == 0.5 for r in reports)


def test_print_json_line_writes_each_object_as_one_line(arith_task):
    out = SlowStream()
    _hammer(lambda t, i: arith_task.print_json_line({"t": t, "i": i, "pad": "x" * 200}, file=out), threads=8, per_thread=25)
    assert len(_whole_json_lines(out.getvalue(), 8 * 25)) == 200


def test_the_examples_print_only_through_the_helper():
    # Any other print() of a rollout line from the worker's threads would bring the run-together lines back.
    for script in EXAMPLES.glob("*.py"):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{script.name}:{node.lineno} prints with print(); use print_json_line"
