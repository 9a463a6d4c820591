from lightwire.v1 import collector_pb2, events_pb2 as pb
from lightwire.services.collector import grouping
from lightwire.services.collector.group_processor import BOOK_KEY, GroupProcessor
from lightwire.services.collector.outputs import Outputs, apply_state_writes

# Most tests here are of the mechanics and give every member reward 0: uniform groups are kept so that they batch.
POLICY = grouping.GroupPolicy(timeout_ms=10_000, on_timeout="partial", min_group_size=2, uniform_groups="keep")


def traj(rollout_id: str, group: str, size: int = 3, status=pb.ROLLOUT_STATUS_SUCCEEDED, reward=0.0, version=1) -> pb.Trajectory:
    return pb.Trajectory(rollout_id=rollout_id, group_id=group, task_id=f"task-{group}", group_size=size, status=status,
                         reward=reward, min_model_version=version)


def batches(out: Outputs) -> list[pb.TrainingBatch]:
    return [e.batch for _, _, e in out.records if e.WhichOneof("payload") == "batch"]


def step(p: GroupProcessor, out: Outputs, trajectories=None, tick_at=None, now=1000) -> None:
    if tick_at is None:
        p.handle(trajectories, now, out)
    else:
        p.tick(tick_at, out)
    apply_state_writes(p.table, out)


def processor(policy=POLICY, batch_groups=2) -> GroupProcessor:
    return GroupProcessor({}, policy, batch_groups=batch_groups, batches_topic="t.b", source="c", retention_ms=60_000)


def test_whole_groups_fill_batches_of_whole_groups_only():
    p, out = processor(), Outputs()
    step(p, out, [traj("a1", "A"), traj("b1", "B"), traj("a2", "A")])
    assert batches(out) == []
    step(p, out, [traj("a3", "A"), traj("a3", "A")])  # A is whole (3); the duplicate is ignored
    assert batches(out) == []
    step(p, out, [traj("b2", "B"), traj("b3", "B")])
    [batch] = batches(out)
    assert [g.group_id for g in batch.groups] == ["A", "B"]
    assert [[t.rollout_id for t in g.trajectories] for g in batch.groups] == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    assert batch.batch_id == grouping.make_batch(list(batch.groups)).batch_id  # deterministic
    # Emitted members are dropped from the table; the book keeps only tombstones.
    assert list(p.table) == [BOOK_KEY]
    step(p, out, [traj("a1", "A")])  # a replayed member of a released group changes nothing
    assert len(batches(out)) == 1 and list(p.table) == [BOOK_KEY]


def test_batches_do_not_depend_on_where_micro_batches_cut_the_stream():
    """A replay after a crash cuts the member stream elsewhere; it must rebuild the same batches (same ids)."""
    # C completes first, then A, then B: batches follow that order, not the order of group ids within a step.
    stream = [traj("c1", "C", 2), traj("a1", "A", 2), traj("c2", "C", 2), traj("b1", "B", 2), traj("a2", "A", 2),
              traj("b2", "B", 2), traj("d1", "D", 2), traj("d2", "D", 2)]
    seen = []
    for cuts in ([8], [1] * 8, [3, 5], [5, 3], [4, 4]):
        p, out, start = processor(), Outputs(), 0
        for n in cuts:
            step(p, out, stream[start:start + n])
            start += n
        seen.append([(b.batch_id, [g.group_id for g in b.groups]) for b in batches(out)])
    assert [groups for _, groups in seen[0]] == [["C", "A"], ["B", "D"]]
    assert all(s == seen[0] for s in seen)


def test_a_timed_out_group_is_trained_partially_or_dropped_by_policy():
    for policy, expected in ((POLICY, ["a1", "a2"]), (grouping.GroupPolicy(10_000, "drop", 2, uniform_groups="keep"), None)):
        p, out = processor(policy, batch_groups=1), Outputs()
        step(p, out, [traj("a1", "A"), traj("a2", "A")])
        step(p, out, tick_at=10_999)
        assert batches(out) == []
        step(p, out, tick_at=11_000)
        got = [[t.rollout_id for t in g.trajectories] for b in batches(out) for g in b.groups]
        assert got == ([expected] if expected else [])


def test_a_lone_member_of_a_timed_out_group_is_dropped_and_counted():
    p, out = processor(batch_groups=1), Outputs()
    step(p, out, [traj("a1", "A")])
    step(p, out, tick_at=20_000)
    assert batches(out) == [] and p.outcomes == {"timeout_dropped": 1}
    assert list(p.table) == [BOOK_KEY]


def test_failed_rollouts_count_unless_the_policy_drops_them():
    members = [traj(f"r{i}", "G", status=s) for i, s in enumerate(
        [pb.ROLLOUT_STATUS_SUCCEEDED, pb.ROLLOUT_STATUS_FAILED, pb.ROLLOUT_STATUS_SUCCEEDED])]
    assert len(grouping.trainable(members, grouping.GroupPolicy(1000))) == 3
    assert len(grouping.trainable(members, grouping.GroupPolicy(1000, drop_failed=True))) == 2


def test_batch_min_model_version_is_the_oldest_member():
    batch = grouping.make_batch([pb.TrajectoryGroup(group_id="A", trajectories=[traj("a", "A", version=4), traj("b", "A", version=2)])])
    assert batch.min_model_version == 2


def test_table_writes_are_ordered_members_then_book_then_deletions():
    p, out = processor(batch_groups=1), Outputs()
    p.handle([traj("a1", "A", size=2), traj("b1", "B", size=2)], 1000, out)
    keys = list(out.state_writes)
    assert keys.index(b"t/a1") < keys.index(BOOK_KEY) and keys.index(b"t/b1") < keys.index(BOOK_KEY)
    apply_state_writes(p.table, out)
    p.handle([traj("a2", "A", size=2)], 1001, out)
    keys = list(out.state_writes)
    assert keys.index(BOOK_KEY) < keys.index(b"t/a1") and out.state_writes[b"t/a1"] is None
    # A member whose group goes out in the step that brought it is never stored.
    assert b"t/a2" not in keys and [t.rollout_id for b in batches(out) for g in b.groups for t in g.trajectories] == ["a1", "a2"]


def test_uniform_groups_are_dropped_and_counted_by_default():
    assert grouping.GroupPolicy(1000).uniform_groups == "drop"
    p, out = processor(grouping.GroupPolicy(10_000), batch_groups=1), Outputs()
    # A: rewards 1, 1, 1 (no advantage can be non-zero); B: 0, 1, 0 (signal).
    step(p, out, [traj("a1", "A", reward=1.0), traj("a2", "A", reward=1.0), traj("a3", "A", reward=1.0)])
    assert batches(out) == [] and p.outcomes == {"uniform_dropped": 1}
    assert list(p.table) == [BOOK_KEY]  # its members are deleted, the book keeps a tombstone
    assert grouping_state(p, "A").outcome == "uniform_dropped"
    step(p, out, [traj("b1", "B", reward=0.0), traj("b2", "B", reward=1.0), traj("b3", "B", reward=0.0)])
    [batch] = batches(out)
    assert [g.group_id for g in batch.groups] == ["B"]
    assert p.outcomes == {"uniform_dropped": 1, "batched": 1}
    step(p, out, [traj("a1", "A", reward=0.5)])  # a replayed member of the dropped group changes nothing
    assert len(batches(out)) == 1 and p.outcomes == {"uniform_dropped": 1, "batched": 1}


def test_uniform_groups_are_batched_when_kept():
    p, out = processor(grouping.GroupPolicy(10_000, uniform_groups="keep"), batch_groups=1), Outputs()
    step(p, out, [traj("a1", "A", size=2, reward=1.0), traj("a2", "A", size=2, reward=1.0)])
    assert [g.group_id for b in batches(out) for g in b.groups] == ["A"] and p.outcomes == {"batched": 1}


def test_drop_unsolved_batches_a_group_every_rollout_solved_and_drops_the_rest_of_the_uniform_ones():
    # rft imitates solved rollouts: A (all solved) is four examples; B (all failed) and C (all half-marks under a
    # solved reward of 1) hold none; D has a signal as in every mode.
    p, out = processor(grouping.GroupPolicy(10_000, uniform_groups="drop_unsolved"), batch_groups=1), Outputs()
    for group, rewards in (("A", (1.0, 1.0, 1.0)), ("B", (0.0, 0.0, 0.0)), ("C", (0.5, 0.5, 0.5)), ("D", (0.0, 1.0, 0.0))):
        step(p, out, [traj(f"{group.lower()}{i}", group, reward=r) for i, r in enumerate(rewards)])
    assert [g.group_id for b in batches(out) for g in b.groups] == ["A", "D"]
    assert p.outcomes == {"batched": 2, "uniform_dropped": 2}
    assert grouping_state(p, "B").outcome == grouping_state(p, "C").outcome == "uniform_dropped"


def test_the_solved_reward_is_the_policys():
    p, out = processor(grouping.GroupPolicy(10_000, uniform_groups="drop_unsolved", solved_reward=0.5), batch_groups=1), Outputs()
    step(p, out, [traj("c1", "C", size=2, reward=0.5), traj("c2", "C", size=2, reward=0.5)])
    assert [g.group_id for b in batches(out) for g in b.groups] == ["C"]


def test_a_uniform_partial_group_is_dropped_too():
    p, out = processor(grouping.GroupPolicy(10_000), batch_groups=1), Outputs()
    step(p, out, [traj("a1", "A", reward=0.0), traj("a2", "A", reward=0.0)])  # 2 of 3: partial at the timeout
    step(p, out, tick_at=11_000)
    assert batches(out) == [] and p.outcomes == {"uniform_dropped": 1}


def test_a_group_is_uniform_only_when_no_advantage_can_differ():
    def member(reward: float, *credits: float) -> pb.Trajectory:
        t = traj("r", "G", reward=reward)
        t.transitions.extend(pb.Transition(reward=c) for c in credits)
        return t

    assert grouping.uniform([member(0.0, 0.0, 0.0), member(0.0, 0.0)])
    assert grouping.uniform([member(1.0)])  # a group of one has no comparison
    assert not grouping.uniform([member(0.0), member(1e-9)])  # exact, as the trainer's zero-spread test
    # Equal rewards, but one step's credit differs (an attributed penalty): centred without std scaling, it has a gradient.
    assert not grouping.uniform([member(0.0, 0.0, -1.0), member(0.0, 0.0)])


def test_counted_outcomes_say_batched_or_why_dropped():
    assert [grouping.counted(o) for o in ("complete", "timeout_partial", "timeout_dropped", "dropped_failed", "uniform_dropped")] == [
        "batched", "batched", "timeout_dropped", "dropped_failed", "uniform_dropped"]


def grouping_state(p: GroupProcessor, group_id: str) -> collector_pb2.GroupState:
    book = collector_pb2.GroupBook()
    book.ParseFromString(p.table[BOOK_KEY])
    return book.groups[group_id]
