"""Rollout assembly as pure logic: a dict stands in for the Faust table, a simple finalizer for the reward pipeline."""

from __future__ import annotations

from lightwire.runtime import codec
from lightwire.topics import TopicNames
from lightwire.v1 import collector_pb2
from lightwire.v1 import events_pb2 as pb
from lightwire.services.collector import rollout_state
from lightwire.services.collector.outputs import Outputs, apply_state_writes
from lightwire.services.collector.rollout_processor import RolloutProcessor, Timing

NAMES = TopicNames("t.")


def call(rollout_id: str, seq: int, run: str = "", started_ms: int = 0) -> pb.Event:
    call_id = f"{rollout_id}/{seq}@{run}" if run else f"{rollout_id}/{seq}"
    return codec.make_event("gw", event_id=f"{call_id}-event", llm_call=pb.LlmCall(
        rollout_id=rollout_id, call_id=call_id, seq=seq, prompt_token_ids=[1, 2], started_unix_ms=started_ms,
        completions=[pb.Completion(token_ids=[3], logprobs=[-0.5], text="x")], model_version=1,
    ))


def finished(rollout_id: str, num_calls: int, status=pb.ROLLOUT_STATUS_SUCCEEDED) -> pb.Event:
    return codec.make_event("gw", event_id=f"{rollout_id}-fin", rollout_finished=pb.RolloutFinished(
        rollout_id=rollout_id, status=status, num_calls=num_calls))


def started(rollout_id: str, group: str = "g1", split: str = "train") -> pb.Event:
    task = pb.Task(task_id="t1", group_id=group, group_size=2, split=split)
    return codec.make_event("gw", event_id=f"{rollout_id}-start", rollout_started=pb.RolloutStarted(rollout_id=rollout_id, task=task))


def feedback(rollout_id: str, value: float, event_id: str) -> pb.Event:
    return codec.make_event("ext", event_id=event_id, feedback=pb.Feedback(call_id=f"{rollout_id}/1", name="thumbs", value=value))


def simple_finalize(state: collector_pb2.RolloutState, timed_out: bool):
    c = rollout_state.contents(state)
    task = c.started.task if c.started else pb.Task()
    status = pb.ROLLOUT_STATUS_TIMED_OUT if timed_out else (c.finished.status if c.finished else pb.ROLLOUT_STATUS_UNSPECIFIED)
    fb = sum(f.value for f in c.feedback)
    trajectory = pb.Trajectory(rollout_id=state.rollout_id, task_id=task.task_id, group_id=task.group_id, split=task.split,
                               status=status, num_calls=len(c.calls), reward=fb, group_size=task.group_size)
    return trajectory, {"feedback": fb}


def processor(grace_ms=0, timeout_ms=10_000) -> RolloutProcessor:
    return RolloutProcessor({}, simple_finalize, NAMES, "t.groups", Timing(grace_ms, timeout_ms, retention_ms=60_000), "collector")


def released(out: Outputs) -> list[pb.Trajectory]:
    return [e.trajectory for topic, _, e in out.records if topic == NAMES.trajectories and e.WhichOneof("payload") == "trajectory"]


def test_a_rollout_completes_when_finish_and_every_declared_call_arrived_in_any_order():
    p, out = processor(), Outputs()
    p.handle([started("r1"), call("r1", 2), finished("r1", 2)], 1000, out)
    assert released(out) == []
    p.handle([call("r1", 1)], 1001, out)
    [t] = released(out)
    assert t.rollout_id == "r1" and t.num_calls == 2 and t.status == pb.ROLLOUT_STATUS_SUCCEEDED
    # The group member goes to the groups topic keyed by group id, with a deterministic id.
    assert [(topic, key, e.event_id) for topic, key, e in out.records if topic == "t.groups"] == [("t.groups", "g1", "member-r1")]


def test_duplicates_are_applied_once_and_a_released_rollout_is_not_released_again():
    p, out = processor(), Outputs()
    events = [started("r1"), call("r1", 1), call("r1", 1), finished("r1", 1)]
    p.handle(events, 1000, out)
    p.handle(events, 1001, out)  # a replay after a crash
    assert [t.num_calls for t in released(out)] == [1]
    assert len(out.rows.rows["llm_calls"]) == 1


def test_a_missing_call_times_out_with_what_the_rollout_has():
    p, out = processor(timeout_ms=5_000), Outputs()
    p.handle([started("r1"), call("r1", 1), finished("r1", 3)], 1000, out)
    p.tick(4_000, out)
    assert released(out) == []
    p.tick(6_001, out)
    [t] = released(out)
    assert t.status == pb.ROLLOUT_STATUS_TIMED_OUT and t.num_calls == 1


def test_feedback_within_the_grace_period_is_applied_and_late_feedback_becomes_a_correction():
    p, out = processor(grace_ms=2_000), Outputs()
    p.handle([started("r1"), call("r1", 1), finished("r1", 1)], 1000, out)
    p.handle([feedback("r1", 1.0, "fb-1")], 1500, out)
    p.tick(2_999, out)
    assert released(out) == []
    p.tick(3_000, out)
    [t] = released(out)
    assert t.reward == 1.0
    p.handle([feedback("r1", -1.0, "fb-2"), feedback("r1", -1.0, "fb-2")], 4000, out)
    corrections = [e for _, _, e in out.records if e.event_id.startswith("late-")]
    assert [(c.event_id, c.reward.value, c.reward.late) for c in corrections] == [("late-fb-2", -1.0, True)]
    late_rows = [r for r in out.rows.rows["rewards"].values() if r[6] == 1]
    assert len(late_rows) == 1


def test_eval_rollouts_are_released_but_never_grouped_for_training():
    p, out = processor(), Outputs()
    p.handle([started("r1", split="eval"), call("r1", 1), finished("r1", 1)], 1000, out)
    assert len(released(out)) == 1
    assert not [r for r in out.records if r[0] == "t.groups"]


def test_state_survives_in_the_table_and_deadlines_are_rebuilt_from_it():
    table: dict[bytes, bytes] = {}
    p = RolloutProcessor(table, simple_finalize, NAMES, "t.groups", Timing(0, 5_000, 60_000), "c")
    out = Outputs()
    p.handle([started("r1"), call("r1", 1)], 1000, out)
    assert table == {}, "state is staged until the step's outputs are written"
    apply_state_writes(table, out)
    # A new process (after a crash) recovers the table from the changelog, not the in-memory index.
    q = RolloutProcessor(table, simple_finalize, NAMES, "t.groups", Timing(0, 5_000, 60_000), "c")
    q.rebuild_deadlines(2_000)
    # Silence counts from the takeover (2,000), not from the last event (1,000): the time the partition had no live
    # reader is no sign that the agent went away, and its remaining calls may still be in the backlog.
    q.tick(6_001, out)
    assert released(out) == []
    q.tick(7_000, out)
    assert [t.status for t in released(out)] == [pb.ROLLOUT_STATUS_TIMED_OUT]
    q.tick(70_000, out)
    apply_state_writes(table, out)
    assert table == {}, "released rollouts are forgotten after the retention period"


def test_calls_outside_any_rollout_are_analytics_only():
    p, out = processor(), Outputs()
    p.handle([call("", 1)], 1000, out)
    assert len(out.rows.rows["llm_calls"]) == 1 and out.records == [] and p.table == {}


def test_a_batch_assembled_while_the_previous_one_is_still_being_written_sees_its_states():
    from lightwire.services.collector.outputs import PendingStates

    table: dict[bytes, bytes] = {}
    pending = PendingStates(table)
    p = RolloutProcessor(pending, simple_finalize, NAMES, "t.groups", Timing(0, 10_000, retention_ms=60_000), "collector")
    first, second = Outputs(), Outputs()
    p.handle([started("r1"), call("r1", 1), started("r2")], 1000, first)
    handle1 = pending.stage(first)
    # Batch 2 is assembled before batch 1's outputs are written: the table itself is still empty.
    assert table == {}
    p.handle([call("r1", 2), finished("r1", 2), call("r2", 1)], 1001, second)
    handle2 = pending.stage(second)
    assert [t.num_calls for t in released(second)] == [2]
    # Writes complete in order; each applies its own states, and a later step's value is not dropped by an earlier one.
    apply_state_writes(table, first)
    pending.applied(handle1)
    assert pending.writes_pending == 2 and pending.get(b"r1") != table[b"r1"]
    apply_state_writes(table, second)
    pending.applied(handle2)
    assert pending.writes_pending == 0
    state = collector_pb2.RolloutState()
    state.ParseFromString(table[b"r1"])
    assert state.released and len(state.seen_event_ids) == 4
    # A replay of batch 2 against the final state changes nothing.
    again = Outputs()
    p.handle([call("r1", 2), finished("r1", 2)], 1002, again)
    assert released(again) == [] and not again.rows.rows.get("llm_calls")


def test_a_rollout_that_outlives_a_gateway_restart_keeps_every_call_in_start_order():
    # The restarted gateway numbers the rollout's calls from 1 again; its run in the call id keeps them apart.
    p, out = processor(), Outputs()
    before = [call("r1", 1, "runA", 100), call("r1", 2, "runA", 200)]
    after = [call("r1", 1, "runB", 300), call("r1", 2, "runB", 400)]
    p.handle([started("r1"), after[1], before[0], after[0], before[1], finished("r1", 4)], 1000, out)
    [t] = released(out)
    assert t.num_calls == 4
    contents_calls = [e.llm_call for e in before + after]
    ordered = rollout_state.in_rollout_order(reversed(contents_calls))
    assert [(c.call_id, c.seq) for c in ordered] == [("r1/1@runA", 1), ("r1/2@runA", 2), ("r1/1@runB", 3), ("r1/2@runB", 4)]
    assert [c.seq for c in contents_calls] == [1, 2, 1, 2], "the events themselves are left as they came"
    assert len(out.rows.rows["llm_calls"]) == 4


def test_a_call_that_arrives_after_its_trajectory_still_reaches_the_analytics():
    p, out = processor(), Outputs()
    p.handle([started("r1"), call("r1", 1), finished("r1", 1)], 1000, out)
    assert len(released(out)) == 1
    apply_state_writes(p.table, out)
    late = Outputs()
    p.handle([call("r1", 2), call("r1", 2)], 2000, late)  # a late call, delivered twice
    assert released(late) == [] and len(late.rows.rows["llm_calls"]) == 1 and p.late_events == 1
