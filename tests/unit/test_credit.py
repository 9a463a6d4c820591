import pytest

from services.reward import credit


def test_identical_gives_every_step_the_final_reward():
    assert credit.assign("identical", 0.8, 3) == [0.8, 0.8, 0.8]


def test_discounted_counts_back_from_the_last_step():
    # gamma 0.5, reward 1: [0.25, 0.5, 1.0]
    assert credit.assign("discounted", 1.0, 3, gamma=0.5) == [0.25, 0.5, 1.0]


def test_per_step_adds_the_final_reward_to_the_last_step():
    # step rewards [0.1, None, 0.3] + final 1.0 on the last: [0.1, 0.0, 1.3]
    assert credit.assign("per_step", 1.0, 3, step_rewards=[0.1, None, 0.3]) == pytest.approx([0.1, 0.0, 1.3])
    assert credit.assign("per_step", 1.0, 2) == [0.0, 1.0]


def test_unknown_strategy_and_agent_selection():
    with pytest.raises(ValueError, match="identical, discounted, per_step"):
        credit.assign("magic", 1.0, 1)
    assert credit.selected("solver", frozenset()) and credit.selected("solver", frozenset({"solver"}))
    assert not credit.selected("critic", frozenset({"solver"}))
