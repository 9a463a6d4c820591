"""What `lightwire export` puts in a row and which trajectories it keeps: hand-built trajectories, hand-checked rows."""

from __future__ import annotations

import pytest

from lightwire.v1 import events_pb2 as pb
from lightwire.tools.export.rows import ExportFilter, pair_rows, transition_rows


def traj(rollout_id: str, reward: float, *, group: str = "g", split: str = "train", task_type: str = "arith",
         versions: tuple[int, int] = (1, 1), agents: tuple[str, ...] = ("solver",), first_prompt=(1, 2)) -> pb.Trajectory:
    t = pb.Trajectory(rollout_id=rollout_id, group_id=group, task_id=f"t-{group}", task_type=task_type, split=split, reward=reward,
                      min_model_version=versions[0], max_model_version=versions[1])
    for i, agent in enumerate(agents):
        prompt = list(first_prompt) if i == 0 else [1, 2, 9, 9, 4]
        t.transitions.add(call_id=f"{rollout_id}/{i + 1}", seq=i + 1, prompt_token_ids=prompt, response_token_ids=[7, 8, 3 + round(reward * 10)],
                          response_mask=[1, 0, 1], response_logprobs=[-0.5, 0.0, -1.25], reward=reward, model_version=versions[i % 2],
                          agent_name=agent)
    return t


def test_a_transition_row_carries_the_exact_tokens_masks_and_logprobs_in_trl_field_names():
    (row,) = transition_rows(traj("r1", 0.0), label_threshold=0.0)
    assert row["prompt_input_ids"] == [1, 2] and row["completion_input_ids"] == [7, 8, 3]
    assert row["response_mask"] == [1, 0, 1] and row["completion_logprobs"] == [-0.5, 0.0, -1.25]
    # TRL's tokenized SFT format: input_ids with completion_mask aligned to it, 0 on the prompt and on tool tokens.
    assert row["input_ids"] == [1, 2, 7, 8, 3] and row["completion_mask"] == [0, 0, 1, 0, 1]
    assert row["label"] is True and row["reward"] == 0.0 and row["call_id"] == "r1/1" and row["model_version"] == 1
    (low,) = transition_rows(traj("r2", 0.5), label_threshold=1.0)
    assert low["label"] is False


def test_the_agent_filter_keeps_only_that_agents_calls():
    t = traj("r1", 1.0, agents=("planner", "solver"), versions=(1, 2))
    assert [r["call_id"] for r in transition_rows(t, label_threshold=1.0, agent="solver")] == ["r1/2"]
    assert [r["model_version"] for r in transition_rows(t, label_threshold=1.0)] == [1, 2]
    assert ExportFilter(agent="planner").keeps(t) and not ExportFilter(agent="critic").keeps(t)


@pytest.mark.parametrize("flt, kept", [
    (ExportFilter(), {"a", "b", "c", "d"}),
    (ExportFilter(split="eval"), {"c"}),
    (ExportFilter(task_type="sql"), {"d"}),
    (ExportFilter(min_reward=0.5), {"a", "c"}),
    (ExportFilter(max_reward=0.0), {"b", "d"}),
    (ExportFilter(min_reward=0.2, max_reward=0.8), {"c"}),
    # a rollout counts as every version it touched: b ran on 2 and 3
    (ExportFilter(min_version=3), {"b", "d"}),
    (ExportFilter(max_version=2), {"a", "b", "c"}),
    (ExportFilter(min_version=2, max_version=2), {"b", "c"}),
])
def test_filters_by_split_task_type_reward_and_version(flt, kept):
    ts = [traj("a", 1.0, versions=(1, 1)), traj("b", 0.0, versions=(2, 3)), traj("c", 0.5, split="eval", versions=(2, 2)),
          traj("d", 0.0, task_type="sql", versions=(4, 4))]
    assert {t.rollout_id for t in ts if flt.keeps(t)} == kept


def test_empty_ranges_are_refused():
    with pytest.raises(ValueError, match="reward range"):
        ExportFilter(min_reward=1.0, max_reward=0.0)
    with pytest.raises(ValueError, match="version range"):
        ExportFilter(min_version=3, max_version=2)


def test_pairs_put_each_groups_best_against_its_worst_and_skip_ties():
    ts = [traj("g1a", 0.2, group="g1"), traj("g1b", 1.0, group="g1", first_prompt=(1, 2)), traj("g1c", 0.0, group="g1"),
          traj("g2a", 0.5, group="g2"), traj("g2b", 0.5, group="g2"), traj("g3a", 1.0, group="g3")]
    rows, skipped = pair_rows(ts)
    assert skipped == 2  # g2: a tie; g3: one rollout
    (row,) = rows
    assert (row["chosen_rollout_id"], row["rejected_rollout_id"]) == ("g1b", "g1c")
    assert (row["chosen_reward"], row["rejected_reward"]) == (1.0, 0.0)
    assert row["prompt_input_ids"] == [1, 2] and row["chosen_input_ids"] == [7, 8, 13] and row["rejected_input_ids"] == [7, 8, 3]
