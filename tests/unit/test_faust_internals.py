"""The collector's batch delivery (services/collector/batch_delivery.py) subclasses faust-streaming's consumer and
reads its private state. That is only safe on the exact version it was written against: pyproject.toml pins it, and
this test fails loudly, naming what moved, when an upgrade changes anything the subclass relies on."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

ROOT = Path(__file__).resolve().parents[2]
BATCH_DELIVERY = ROOT / "services" / "collector" / "batch_delivery.py"

# Private names of Faust's Consumer that batch_delivery reads, writes or overrides.
FAUST_PRIVATE = ("_commit_every", "_read_offset", "_add_gap", "_waiting_for_ack", "_wait_next_records",
                 "_unacked_messages", "_to_message", "_stopped", "_committed_offset", "_buffered_partitions",
                 "_acked_index", "_acked", "_drain_messages", "_n_acked")


def _pinned_faust() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if d.startswith("faust-streaming")]
    assert len(pins) == 1 and "==" in pins[0], f"faust-streaming must be an exact pin in pyproject.toml, got {pins}"
    return pins[0].split("==", 1)[1]


def test_installed_faust_is_the_pinned_version():
    assert version("faust-streaming") == _pinned_faust(), (
        "faust-streaming changed: re-check services/collector/batch_delivery.py against the new Consumer, then move the pin")


def test_every_private_name_batch_delivery_uses_is_listed_here():
    used = set(re.findall(r"\b(?:self|consumer|fetcher|Consumer)\.(_[a-z][a-z_]*)", BATCH_DELIVERY.read_text()))
    own = {"_batch_queues", "_rest"}  # batch_delivery's own state
    assert used - own <= set(FAUST_PRIVATE), f"batch_delivery uses Faust internals this test does not check: {used - own - set(FAUST_PRIVATE)}"


def test_faust_consumer_still_has_what_batch_delivery_relies_on():
    source = inspect.getsource(faust_consumer) + inspect.getsource(faust_aiokafka)
    missing = [name for name in FAUST_PRIVATE if not re.search(rf"\b{name}\b", source)]
    assert not missing, f"faust-streaming {version('faust-streaming')} no longer has {missing}"
    # The overridden fetch loop and the message conversion keep the signatures the subclass calls them with.
    assert list(inspect.signature(faust_consumer.Consumer._drain_messages).parameters) == ["self", "fetcher"]
    assert "tp" in inspect.signature(faust_aiokafka.Consumer._to_message).parameters
