"""The KRaft cluster id `kafka-storage format` gets: random, and never taken for an option."""

from __future__ import annotations

import argparse
import base64
import subprocess
import uuid

import pytest

from lightwire.tools.stack import kafka_broker
from lightwire.tools.stack.kafka_broker import KafkaCluster
from lightwire.tools.stack.settings import StackSettings


def storage_format_args(argv: list[str]) -> argparse.Namespace:
    """Parse the tail of a StorageTool command line as kafka-storage (argparse4j) does: a separate argument that
    starts with '-' is an option, never the value of the one before it."""
    tail = argv[argv.index("kafka.tools.StorageTool") + 1:]
    parser = argparse.ArgumentParser(prog="kafka-storage", exit_on_error=False)
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = sub.add_parser("format", exit_on_error=False)
    fmt.add_argument("-t", "--cluster-id", required=True)
    fmt.add_argument("-c", "--config", required=True)
    try:
        return parser.parse_args(tail)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise AssertionError(f"kafka-storage would reject {tail}: {exc}") from None


REAL_UUID4 = uuid.uuid4


def first_draw_starting_with(prefix_byte: int):
    """A uuid4() replacement whose first UUID starts with `prefix_byte` (0xF8-0xFB encode to a leading '-'),
    the later ones random."""
    draws = 0

    def uuid4() -> uuid.UUID:
        nonlocal draws
        draws += 1
        return uuid.UUID(bytes=bytes([prefix_byte]) + REAL_UUID4().bytes[1:]) if draws == 1 else REAL_UUID4()

    return uuid4


def test_ids_look_like_kafkas_and_never_start_with_a_dash():
    ids = [kafka_broker.new_cluster_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    # About one id in 64 would start with '-' if it were not redrawn; make sure the draw itself is not skewed away.
    assert any("-" in cluster_id for cluster_id in ids)


def test_a_draw_that_starts_with_a_dash_is_redrawn(monkeypatch):
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x10" + bytes(15))])
    monkeypatch.setattr(kafka_broker.uuid, "uuid4", lambda: next(draws))
    assert base64.urlsafe_b64encode(b"\xf8" + bytes(15)).decode().startswith("-")
    assert kafka_broker.new_cluster_id() == base64.urlsafe_b64encode(b"\x10" + bytes(15)).decode().rstrip("=")


@pytest.mark.parametrize("first_byte", [0xF8, 0xF9, 0xFA, 0xFB, 0x00, 0x7F])
def test_the_format_command_line_carries_any_id_as_its_value(tmp_path, monkeypatch, first_byte):
    """Even an id that starts with '-' (the old draw made one in 64) must reach kafka-storage as the id."""
    broker = KafkaCluster(StackSettings(state_dir=tmp_path, cache_dir=tmp_path / "cache"))
    broker.write_config()
    calls: list[list[str]] = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(kafka_broker.subprocess, "run", fake_run)
    for _ in range(50):
        # Whatever the id generator does with such draws, the command line must carry what it returned.
        monkeypatch.setattr(kafka_broker.uuid, "uuid4", first_draw_starting_with(first_byte))
        assert broker.format_storage() is True
    for argv in calls:
        args = storage_format_args(argv)
        assert args.command == "format" and args.config == str(broker.nodes[0].config_file)
        assert len(args.cluster_id) == 22 and len(base64.urlsafe_b64decode(args.cluster_id + "==")) == 16


def test_ids_that_start_with_a_dash_parse_in_the_command_line_form(tmp_path):
    broker = KafkaCluster(StackSettings(state_dir=tmp_path, cache_dir=tmp_path / "cache"))
    for _ in range(2_000):
        cluster_id = base64.urlsafe_b64encode(b"\xf8" + uuid.uuid4().bytes[1:]).decode().rstrip("=")
        assert cluster_id.startswith("-")
        assert storage_format_args(broker.format_command(broker.nodes[0], cluster_id)).cluster_id == cluster_id
