"""Credit assignment strategies and agent selection against hand-computed values."""

from dataclasses import dataclass

import pytest

from lightwire.services.collector import credit


def test_identical_gives_every_step_the_final_reward():
    assert credit.assign("identical", 0.8, 3) == [0.8, 0.8, 0.8]
    assert credit.assign("identical", 0.8, 0) == []


def test_discounted_counts_back_from_the_last_step():
    # gamma 0.5, reward 1 over 3 steps: [0.5^2, 0.5^1, 0.5^0] = [0.25, 0.5, 1.0]
    assert credit.assign("discounted", 1.0, 3, gamma=0.5) == [0.25, 0.5, 1.0]
    # gamma 0.9, reward -2 over 2 steps: [-2 * 0.9, -2] = [-1.8, -2.0]
    assert credit.assign("discounted", -2.0, 2, gamma=0.9) == pytest.approx([-1.8, -2.0])
    # gamma 1 is identical
    assert credit.assign("discounted", 0.3, 2) == [0.3, 0.3]
    with pytest.raises(ValueError, match="gamma"):
        credit.assign("discounted", 1.0, 2, gamma=1.5)


def test_per_step_adds_the_final_reward_to_the_last_step():
    # step rewards [0.1, None, 0.3] + final 1.0 on the last: [0.1, 0.0, 0.3 + 1.0] = [0.1, 0.0, 1.3]
    assert credit.assign("per_step", 1.0, 3, step_rewards=[0.1, None, 0.3]) == pytest.approx([0.1, 0.0, 1.3])
    # missing step rewards count 0: [0, 0 + 1]
    assert credit.assign("per_step", 1.0, 2) == [0.0, 1.0]
    # the final reward is optional: only the steps' own
    assert credit.assign("per_step", 1.0, 2, step_rewards=[0.5, 0.25], include_final=False) == [0.5, 0.25]
    with pytest.raises(ValueError, match="3 step rewards for 2 steps"):
        credit.assign("per_step", 1.0, 2, step_rewards=[1, 2, 3])


def test_step_rewards_reported_per_call_are_summed_per_transition():
    # transition 1 merged calls r/1 and r/2 (0.25 + 0.5 = 0.75); transition 2 is r/3 with no reward (0)
    assert credit.step_rewards_by_call([["r/1", "r/2"], ["r/3"]], {"r/1": 0.25, "r/2": 0.5, "other/1": 9.0}) == [0.75, 0.0]


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="identical, discounted, per_step"):
        credit.assign("magic", 1.0, 1)


@dataclass
class Call:
    seq: int
    agent_name: str


def test_agent_selection_by_name_or_pattern():
    assert credit.selected("solver", frozenset()) and credit.selected("solver", ["solver"])
    assert not credit.selected("critic", ["solver"])
    assert credit.selected("solver:v2", ["solver*"]) and not credit.selected("critic:v2", ["solver*"])
    calls = [Call(1, "planner"), Call(2, "solver"), Call(3, "critic"), Call(4, "solver")]
    assert [c.seq for c in credit.select_agents(calls, ["solver", "plan*"])] == [1, 2, 4]
    assert [c.seq for c in credit.select_agents(calls, [])] == [1, 2, 3, 4]
