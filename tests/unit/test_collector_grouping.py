from lightwire.v1 import collector_pb2
from lightwire.v1 import events_pb2 as pb
from services.collector import grouping
from services.collector.group_processor import GroupProcessor
from services.collector.outputs import Outputs

POLICY = grouping.GroupPolicy(timeout_ms=10_000, on_timeout="partial", min_group_size=2)


def traj(rollout_id: str, group: str, size: int = 3, status=pb.ROLLOUT_STATUS_SUCCEEDED, reward=0.0, version=1) -> pb.Trajectory:
    return pb.Trajectory(rollout_id=rollout_id, group_id=group, task_id=f"task-{group}", group_size=size, status=status,
                         reward=reward, min_model_version=version)


def batches(out: Outputs) -> list[pb.TrainingBatch]:
    return [e.batch for _, _, e in out.records if e.WhichOneof("payload") == "batch"]


def test_whole_groups_fill_batches_of_whole_groups_only():
    p, out = GroupProcessor({}, POLICY, batch_groups=2, batches_topic="t.batches", source="c", retention_ms=60_000), Outputs()
    p.handle([traj("a1", "A"), traj("b1", "B"), traj("a2", "A")], 1000, out)
    assert batches(out) == []
    p.handle([traj("a3", "A"), traj("a3", "A")], 1001, out)  # A is whole (3); the duplicate is ignored
    assert batches(out) == []
    p.handle([traj("b2", "B"), traj("b3", "B")], 1002, out)
    [batch] = batches(out)
    assert [g.group_id for g in batch.groups] == ["A", "B"]
    assert [[t.rollout_id for t in g.trajectories] for g in batch.groups] == [["a1", "a2", "a3"], ["b1", "b2", "b3"]]
    assert batch.batch_id == grouping.make_batch(list(batch.groups)).batch_id  # deterministic


def test_a_timed_out_group_is_trained_partially_or_dropped_by_policy():
    for policy, expected in ((POLICY, ["a1", "a2"]), (grouping.GroupPolicy(10_000, "drop", 2), None)):
        p, out = GroupProcessor({}, policy, batch_groups=1, batches_topic="t.b", source="c", retention_ms=60_000), Outputs()
        p.handle([traj("a1", "A"), traj("a2", "A")], 1000, out)
        p.tick(10_999, out)
        assert batches(out) == []
        p.tick(11_000, out)
        got = [[t.rollout_id for t in g.trajectories] for b in batches(out) for g in b.groups]
        assert got == ([expected] if expected else [])


def test_a_lone_member_of_a_timed_out_group_is_dropped_and_counted():
    p, out = GroupProcessor({}, POLICY, batch_groups=1, batches_topic="t.b", source="c", retention_ms=60_000), Outputs()
    p.handle([traj("a1", "A")], 1000, out)
    p.tick(20_000, out)
    assert batches(out) == [] and p.outcomes == {"timeout_dropped": 1}


def test_failed_rollouts_count_unless_the_policy_drops_them():
    group = collector_pb2.GroupState()
    for i, status in enumerate([pb.ROLLOUT_STATUS_SUCCEEDED, pb.ROLLOUT_STATUS_FAILED, pb.ROLLOUT_STATUS_SUCCEEDED]):
        grouping.add_member(group, traj(f"r{i}", "G", status=status), 0)
    keep = grouping.GroupPolicy(1000)
    drop = grouping.GroupPolicy(1000, drop_failed=True)
    assert len(grouping.trainable(group, keep)) == 3 and len(grouping.trainable(group, drop)) == 2


def test_batch_min_model_version_is_the_oldest_member():
    batch = grouping.make_batch([pb.TrajectoryGroup(group_id="A", trajectories=[traj("a", "A", version=4), traj("b", "A", version=2)])])
    assert batch.min_model_version == 2
