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


def test_what_the_policy_does_by_version_and_decoding_from_the_recorded_calls(tmp_path):
    """The behaviour query behind the Training page and the demo's table, on hand-made calls: three rollouts under
    version 2 at t=0 (two calculator calls then an answer line, one bare answer, one truncated), one under version 3 at
    t=0.7 with an attributed error, and one with no call at all."""
    dsn = f"chdb://{tmp_path / 'analytics'}"
    out = run_in_fresh_process(f"""
        import json
        from lightwire.analytics.store import AnalyticsStore
        from lightwire.answer_format import ANSWER_LINE
        from lightwire.runtime import codec
        from lightwire.v1 import events_pb2 as pb
        from lightwire.services.collector import queries
        from lightwire.services.collector.analytics_rows import TABLE_COLUMNS, RowBuffer, add_event_rows, add_trajectory_rows
        store = AnalyticsStore({dsn!r})
        store.migrate()
        buffer = RowBuffer()
        def call(rollout, seq, temperature, content=None, tool=False, finish="stop", tokens=10):
            request = {{"messages": []}} if temperature is None else {{"messages": [], "temperature": temperature}}
            message = {{"role": "assistant", "content": content}}
            if tool:
                message["tool_calls"] = [{{"id": "c", "type": "function", "function": {{"name": "calculator", "arguments": "{{}}"}}}}]
            response = {{"choices": [{{"index": 0, "message": message, "finish_reason": finish}}]}}
            c = pb.LlmCall(rollout_id=rollout, call_id=f"{{rollout}}/{{seq}}", seq=seq, completion_tokens=tokens,
                           started_unix_ms=1_700_000_000_000 + 1000 * seq, request_json=json.dumps(request), response_json=json.dumps(response))
            c.completions.add(finish_reason=finish)
            add_event_rows(buffer, codec.make_event("t", event_id=f"e-{{rollout}}-{{seq}}", llm_call=c))
        def rollout(rid, version, reward, errors=0):
            t = pb.Trajectory(rollout_id=rid, split="eval", reward=reward, min_model_version=version, max_model_version=version)
            for i in range(errors):
                t.attributions.add(step=1, error_class="tool_exception")
            add_trajectory_rows(buffer, codec.make_event("t", event_id=f"t-{{rid}}", trajectory=t), {{}})
        call("a", 1, 0.0, tool=True, finish="tool_calls", tokens=30); call("a", 2, 0.0, tool=True, finish="tool_calls", tokens=30)
        call("a", 3, 0.0, content="Answer: 12", tokens=6)
        call("b", 1, 0.0, content="answer = 7", tokens=4)
        call("c", 1, 0.0, content="Let me think about", finish="length", tokens=48)
        call("d", 1, 0.7, tool=True, finish="tool_calls", tokens=20); call("d", 2, 0.7, content="The result is 5", tokens=8)
        rollout("a", 2, 1.0); rollout("b", 2, 0.0); rollout("c", 2, 0.0); rollout("d", 3, 0.0, errors=1); rollout("e", 3, 0.0)
        for table, rows in buffer.drain().items():
            store.insert(table, TABLE_COLUMNS[table], rows)
        for r in store.query_dicts(queries.BEHAVIOUR["by_version"], {{"answer_line": f"(?i){{ANSWER_LINE}}"}}):
            print(json.dumps(r, sort_keys=True))
    """)
    rows = [__import__("json").loads(line) for line in out.splitlines()]
    by_key = {(r["model_version"], r["temperature"]): r for r in rows}
    assert set(by_key) == {(2, 0.0), (3, 0.7), (3, None)}
    v2 = by_key[(2, 0.0)]
    assert (v2["rollouts"], v2["reward_mean"], v2["calls_per_rollout"]) == (3, pytest.approx(1 / 3), pytest.approx(5 / 3))
    assert (v2["tool_call_rate"], v2["answer_line_rate"], v2["truncated_rate"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert v2["tokens_per_call"] == pytest.approx((30 + 30 + 6 + 4 + 48) / 5) and v2["error_rate"] == 0
    v3 = by_key[(3, 0.7)]
    assert (v3["rollouts"], v3["tool_call_rate"], v3["answer_line_rate"], v3["calls_per_rollout"], v3["error_rate"]) == (1, 1, 0, 2, 1)
    bare = by_key[(3, None)]  # a rollout with no recorded call: no decoding, no calls
    assert (bare["rollouts"], bare["calls_per_rollout"], bare["tokens_per_call"]) == (1, 0, None)
