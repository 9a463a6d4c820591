import pytest
import torch

from lightwire.v1 import events_pb2 as pb
from lightwire.services.trainer.collate import collate


def traj(rid, reward, transitions):
    return pb.Trajectory(rollout_id=rid, reward=reward, transitions=transitions)


def tr(prompt, response, mask, logprobs, reward):
    return pb.Transition(prompt_token_ids=prompt, response_token_ids=response, response_mask=mask, response_logprobs=logprobs, reward=reward)


def test_sequences_keep_the_captured_tokens_and_align_masks_with_the_predicting_positions():
    batch = pb.TrainingBatch(batch_id="b", groups=[pb.TrajectoryGroup(group_id="g", trajectories=[
        traj("a", 1.0, [tr([1, 2], [3, 4, 5], [1, 0, 1], [-0.1, 0.0, -0.3], 1.0)]),
        traj("b", 0.0, [tr([1], [6], [1], [-0.2], 0.0), tr([1, 6, 7], [8], [1], [-0.4], 0.0)]),
    ])])
    s = collate(batch, pad_id=0)
    assert s.input_ids.tolist() == [[1, 2, 3, 4, 5], [1, 6, 0, 0, 0], [1, 6, 7, 8, 0]]
    assert s.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]]
    # row 0: prompt length 2 -> response tokens predicted at positions 1, 2, 3
    assert s.response_mask.tolist()[0] == [0, 1, 0, 1]
    assert s.behaviour_logprobs[0].tolist() == pytest.approx([0, -0.1, 0.0, -0.3])
    assert s.response_mask.tolist()[2] == [0, 0, 1, 0]
    # one reward per rollout: [1, 0] -> mean 0.5, sample std 0.7071 -> a: +0.7071, b's two transitions: -0.7071
    assert s.advantages.tolist() == pytest.approx([0.70711, -0.70711, -0.70711], rel=1e-4)
    # rollout b has two transitions: each counts half
    assert s.weights.tolist() == [1.0, 0.5, 0.5]
    assert s.model_tokens == 4


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError, match="no trainable tokens"):
        collate(pb.TrainingBatch(batch_id="b"), pad_id=0)


def test_advantages_score_each_transitions_credit_against_its_groups_rollout_rewards():
    step = [1, 2]  # every transition: prompt [1, 2], one model token
    batch = pb.TrainingBatch(batch_id="b", groups=[
        # rollout rewards [2, 0, 4]: mean 2, sample std 2; rollout a credits its two steps 2 and 1
        pb.TrajectoryGroup(group_id="spread", trajectories=[
            traj("a", 2.0, [tr(step, [3], [1], [-0.1], 2.0), tr(step, [4], [1], [-0.1], 1.0)]),
            traj("b", 0.0, [tr(step, [5], [1], [-0.1], 0.0)]),
            # c's first transition has no response tokens: no row, yet it still halves c's other step's weight
            traj("c", 4.0, [tr(step, [], [], [], 4.0), tr(step, [6], [1], [-0.1], 4.0)]),
        ]),
        # rollout rewards [0.5, 0.5]: zero spread, so no signal even for d's step credited 0.2
        pb.TrajectoryGroup(group_id="flat", trajectories=[
            traj("d", 0.5, [tr(step, [7], [1], [-0.1], 0.5), tr(step, [8], [1], [-0.1], 0.2)]),
            traj("e", 0.5, [tr(step, [9], [1], [-0.1], 0.5)]),
        ]),
    ])
    scaled = collate(batch, pad_id=0)
    # (credit - 2) / 2 for the first group's rows a1, a2, b, c2; zeros for d1, d2, e
    assert scaled.advantages.tolist() == pytest.approx([0.0, -0.5, -1.0, 1.0, 0.0, 0.0, 0.0], rel=1e-5, abs=1e-6)
    assert scaled.weights.tolist() == [0.5, 0.5, 1.0, 0.5, 0.5, 0.5, 1.0]
    # Dr. GRPO (no std): credit - group mean, which for the flat group keeps d2's lower credit: 0.2 - 0.5 = -0.3
    centred = collate(batch, pad_id=0, scale_by_std=False, batch_weight=0.5)
    assert centred.advantages.tolist() == pytest.approx([0.0, -1.0, -2.0, 2.0, 0.0, -0.3, 0.0], rel=1e-5, abs=1e-6)
    assert centred.weights.tolist() == [0.25, 0.25, 0.5, 0.25, 0.25, 0.25, 0.5]


def test_the_common_prefix_stops_where_a_row_differs_ends_or_the_limit_is():
    from lightwire.services.trainer.shared_prefix import common_prefix_length

    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 1, 0], [5, 6, 7, 8, 2]])
    attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert common_prefix_length(ids, attention, limit=5) == 3
    assert common_prefix_length(ids, attention, limit=2) == 2
    assert common_prefix_length(ids[[0, 2]], attention[[0, 2]], limit=5) == 4
    # padding is never shared, even where the pad ids agree
    assert common_prefix_length(torch.tensor([[5, 6, 0], [5, 6, 0]]), torch.tensor([[1, 1, 0], [1, 1, 0]]), limit=3) == 2
    assert common_prefix_length(ids[:1], attention[:1], limit=5) == 0  # one row shares with no one
