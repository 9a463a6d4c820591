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
