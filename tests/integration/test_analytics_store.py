"""The analytics store on the real ClickHouse engine (chDB) through clickhouse-connect."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lightwire.analytics.store import AnalyticsStore, load_migrations

pytestmark = pytest.mark.integration


def run_in_fresh_process(code: str) -> str:
    """chDB holds its data path for the life of a process: a restart means a new process."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_migrations_apply_once_and_data_survives_a_restart(tmp_path):
    dsn = f"chdb://{tmp_path / 'analytics'}"
    every_version = [m.version for m in load_migrations()]
    out = run_in_fresh_process(f"""
        from lightwire.analytics.store import AnalyticsStore
        store = AnalyticsStore({dsn!r})
        first, second = store.migrate(), store.migrate()
        store.insert("rewards", ["event_id", "rollout_id", "name", "value", "source"],
                     [["e1", "r1", "exact", 1.0, "agent"], ["e2", "r1", "latency", -0.25, "function"],
                      ["e1", "r1", "exact", 1.0, "agent"]])
        print(first, second, store.query("SELECT count() FROM rewards FINAL")[0][0])
    """)
    assert out == f"{every_version} [] 2"

    out = run_in_fresh_process(f"""
        from lightwire.analytics.store import AnalyticsStore
        store = AnalyticsStore({dsn!r})
        print(store.migrate(), store.applied_versions())
        rows = store.query_dicts("SELECT event_id, name, value FROM rewards FINAL WHERE rollout_id = {{r:String}} ORDER BY event_id", {{"r": "r1"}})
        print(rows)
    """)
    assert out.splitlines() == [
        f"[] {every_version}",
        "[{'event_id': 'e1', 'name': 'exact', 'value': 1.0}, {'event_id': 'e2', 'name': 'latency', 'value': -0.25}]",
    ]


def test_every_migration_is_idempotent_statement_by_statement(tmp_path):
    """A crash between two statements is repaired by re-running the migration."""
    store = AnalyticsStore(f"chdb://{tmp_path / 'a'}")
    try:
        for migration in load_migrations():
            for statement in migration.statements():
                store.client.command(statement)
                store.client.command(statement)
        assert {"llm_calls", "rollouts", "rewards", "errors", "train_steps", "weight_versions"} <= {
            row[0] for row in store.query("SHOW TABLES")
        }
    finally:
        store.close()


def test_a_dsn_of_another_kind_is_refused():
    with pytest.raises(ValueError, match="chdb://, http:// or https://"):
        AnalyticsStore("postgres://x")


def test_collector_rows_keep_event_times_to_the_millisecond(tmp_path):
    """Rows carry DateTime64(3) values as epoch milliseconds; the store must read them back as that instant."""
    dsn = f"chdb://{tmp_path / 'analytics'}"
    out = run_in_fresh_process(f"""
        from lightwire.analytics.store import AnalyticsStore
        from lightwire.runtime import codec
        from lightwire.v1 import events_pb2 as pb
        from lightwire.services.collector.analytics_rows import TABLE_COLUMNS, RowBuffer, add_event_rows
        store = AnalyticsStore({dsn!r})
        store.migrate()
        buffer = RowBuffer()
        call = pb.LlmCall(rollout_id="r1", call_id="r1/1", seq=1, started_unix_ms=1_700_000_000_123, request_json='{{"a": 1}}')
        add_event_rows(buffer, codec.make_event("t", event_id="c1", llm_call=call))
        reward = codec.make_event("t", event_id="w1", reward=pb.RolloutReward(rollout_id="r1", name="agent", value=1.0))
        reward.time_unix_ms = 1_700_000_001_007
        add_event_rows(buffer, reward)
        for table, rows in buffer.drain().items():
            store.insert(table, TABLE_COLUMNS[table], rows)
        print(store.query("SELECT toString(started_at, 'UTC'), request_json FROM llm_calls FINAL"))
        print(store.query("SELECT toString(created_at, 'UTC') FROM rewards FINAL"))
    """)
    assert out.splitlines() == ["[('2023-11-14 22:13:20.123', '{\"a\": 1}')]", "[('2023-11-14 22:13:21.007',)]"]
