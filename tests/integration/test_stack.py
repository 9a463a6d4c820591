"""`lightwire stack up | down | status` as a user runs it: real processes, its own ports and state directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.tools.stack.kafka_broker import KafkaBroker
from lightwire.tools.stack.settings import StackSettings
from testing.kafka_reading import read_until_end
from testing.samples import sample_events

pytestmark = pytest.mark.integration

PORT = 19192


def lightwire(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightwire.tools.cli", *args], env=env, capture_output=True, text=True, timeout=180)


def our_processes(state_dir: Path) -> list[str]:
    """Command lines of running processes that belong to this stack (they name its state directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if str(state_dir) in cmdline:
                found.append(cmdline)
    return found


def test_up_twice_down_and_a_restart_that_keeps_topics_and_data(tmp_path):
    state_dir = tmp_path / "state"
    env = {**os.environ, "LW_STATE_DIR": str(state_dir), "LW_KAFKA_PORT": str(PORT), "LW_KAFKA_CONTROLLER_PORT": str(PORT + 1),
           "LW_STACK_SERVICES": "", "COLUMNS": "200"}
    settings = StackSettings(state_dir=state_dir, kafka_port=PORT, kafka_controller_port=PORT + 1)
    broker = KafkaBroker(settings)
    try:
        first = lightwire("stack", "up", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"127.0.0.1:{PORT}" in first.stdout and "created topics" in first.stdout
        pid = broker.process.pid()
        assert pid is not None

        second = lightwire("stack", "up", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert broker.process.pid() == pid, "a second `up` must not start another broker"
        assert "created topics" not in second.stdout

        status = lightwire("stack", "status", env=env)
        assert status.returncode == 0 and str(pid) in status.stdout and "lw.rollout-events (4)" in status.stdout

        bootstrap = settings.bootstrap
        events = sample_events(rollout_id="r-restart")

        async def produce():
            async with EventProducer(bootstrap, "tests") as producer:
                await producer.send_many(topics.ROLLOUT_EVENTS, [("r-restart", e) for e in events])

        asyncio.run(produce())

        down = lightwire("stack", "down", env=env)
        assert down.returncode == 0 and "kafka" in down.stdout
        assert our_processes(state_dir) == []
        assert lightwire("stack", "status", env=env).returncode == 3

        again = lightwire("stack", "up", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "created topics" not in again.stdout, "topics must survive a broker restart"
        records = asyncio.run(read_until_end(bootstrap, topics.ROLLOUT_EVENTS))
        assert [codec.decode(r.value).event for r in records] == events
    finally:
        lightwire("stack", "down", env=env)
    assert our_processes(state_dir) == []
