"""Shared fixtures. Integration tests get one real local stack (Kafka broker, chDB) per test session, on test ports."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Parallel test sessions on one machine (several developers, or CI beside a dev run) each set their own port.
TEST_KAFKA_PORT = int(os.environ.get("LW_TEST_KAFKA_PORT", "19092"))


@pytest.fixture(scope="session")
def test_kafka_port() -> int:
    """This session's first Kafka port; a test that runs brokers of its own takes ports a fixed step above it."""
    return TEST_KAFKA_PORT


@pytest.fixture(scope="session")
def stack_settings():
    from lightwire.tools.stack.settings import StackSettings

    return StackSettings(
        kafka_port=TEST_KAFKA_PORT,
        kafka_controller_port=TEST_KAFKA_PORT + 1,
        kafka_bootstrap=f"127.0.0.1:{TEST_KAFKA_PORT}",
        state_dir=ROOT / ".lightwire" / ("test-stack" if TEST_KAFKA_PORT == 19092 else f"test-stack-{TEST_KAFKA_PORT}"),
        stack_services="",
    )


@pytest.fixture(scope="session")
def local_stack(stack_settings):
    """The broker with every lw.* topic; started once, stopped at the end only if this session started it."""
    import shutil

    from lightwire.tools.stack.local_stack import LocalStack

    stack = LocalStack(stack_settings)
    started_here = not stack.kafka.running()
    if started_here:
        # A fresh broker per session: tests never see a previous session's records.
        shutil.rmtree(stack_settings.state_dir, ignore_errors=True)
    stack.up(services=[])
    yield stack
    if started_here:
        stack.down()


@pytest.fixture(scope="session")
def _three_broker_cluster(tmp_path_factory):
    """Three combined broker and controller nodes, as `stack up --brokers 3` starts them, on ports of their own."""
    from lightwire.tools.stack.kafka_broker import KafkaCluster
    from lightwire.tools.stack.settings import StackSettings

    port = TEST_KAFKA_PORT + 200
    cluster = KafkaCluster(StackSettings(stack_brokers=3, kafka_port=port, kafka_controller_port=port + 1, kafka_heap="512m",
                                         state_dir=tmp_path_factory.mktemp("three-brokers"), stack_services=""))
    started_s = cluster.start()
    print(f"\nthree-broker cluster on {cluster.settings.bootstrap} up in {started_s:.1f}s")
    yield cluster
    cluster.stop()


@pytest.fixture
def three_brokers(_three_broker_cluster):
    """The session's three-broker cluster with every node up: a node an earlier test killed is started again first."""
    _three_broker_cluster.start()
    return _three_broker_cluster


@pytest.fixture(scope="session")
def bootstrap(local_stack, stack_settings) -> str:
    return stack_settings.bootstrap


@pytest.fixture
def unique() -> str:
    """A suffix that makes this test's topics, keys and ids its own."""
    return uuid.uuid4().hex[:10]
