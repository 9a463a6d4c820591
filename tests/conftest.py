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
    started_here = not stack.broker.process.running()
    if started_here:
        # A fresh broker per session: tests never see a previous session's records.
        shutil.rmtree(stack_settings.state_dir, ignore_errors=True)
    stack.up(services=[])
    yield stack
    if started_here:
        stack.down()


@pytest.fixture(scope="session")
def bootstrap(local_stack, stack_settings) -> str:
    return stack_settings.bootstrap


@pytest.fixture
def unique() -> str:
    """A suffix that makes this test's topics, keys and ids its own."""
    return uuid.uuid4().hex[:10]
