"""Fixtures of the integration tests beyond the session's stack (tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from lightwire import topics
from lightwire.runtime.kafka import ensure_topics


@pytest.fixture
def collector_env(bootstrap, unique, tmp_path):
    prefix = f"t{unique}."
    names = topics.TopicNames(prefix)
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(4, names)))
    return names
