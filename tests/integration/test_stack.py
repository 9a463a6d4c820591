"""`lightwire stack up | down | status` as a user runs it: real processes, its own ports and state directory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.tools.stack.kafka_broker import KafkaCluster
from lightwire.tools.stack.settings import StackSettings
from testing.cli_run import lightwire
from testing.kafka_reading import read_until_end
from testing.samples import sample_events

pytestmark = pytest.mark.integration

PORT = 19192


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
    broker = KafkaCluster(settings).nodes[0]
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


def test_up_with_three_brokers_replicates_every_topic_and_down_stops_every_node(tmp_path, test_kafka_port):
    """`stack up --brokers 3` as a user runs it; `status` and `down` without the option still see all three nodes."""
    from testing.kafka_cluster import describe_replication

    state_dir, port = tmp_path / "state", test_kafka_port + 300
    env = {**os.environ, "LW_STATE_DIR": str(state_dir), "LW_KAFKA_PORT": str(port), "LW_KAFKA_CONTROLLER_PORT": str(port + 1),
           "LW_STACK_SERVICES": "", "LW_KAFKA_HEAP": "384m", "COLUMNS": "200"}
    settings = StackSettings(state_dir=state_dir, kafka_port=port, kafka_controller_port=port + 1, stack_brokers=3)
    try:
        up = lightwire("stack", "up", "--brokers", "3", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert all(f"127.0.0.1:{port + 2 * i}" in up.stdout for i in range(3)) and "created topics" in up.stdout
        described = asyncio.run(describe_replication(settings.bootstrap, [topics.ROLLOUT_EVENTS, topics.WEIGHTS]))
        assert all(len(r) == 3 for t in described.values() for r in t.replicas.values())
        assert {t.min_insync for t in described.values()} == {2}

        status = lightwire("stack", "status", env=env)
        assert status.returncode == 0 and all(name in status.stdout for name in ("kafka-2", "kafka-3")), status.stdout
        one = lightwire("stack", "up", env=env)
        assert one.returncode == 1 and "--brokers 3" in one.stdout, one.stdout

        down = lightwire("stack", "down", env=env)
        assert down.returncode == 0 and "kafka, kafka-2, kafka-3" in down.stdout, down.stdout
        assert our_processes(state_dir) == []
        assert lightwire("stack", "status", env=env).returncode == 3
    finally:
        lightwire("stack", "down", env=env)
    assert our_processes(state_dir) == []
