"""`lightwire compare`'s table: each algorithm's last evaluation at its better decoding, against the base model at
its better one, with what it cost; checked on hand-made evaluations."""

from __future__ import annotations

import math

import pytest

from lightwire.tools.compare import AlgorithmRun, CompareConfig, summary_rows
from lightwire.tools.demo import best_decoding


def row(step: int, decoding: str, reward: float, best: bool, gain: float = 0.0, se: float = 0.0) -> dict:
    return {"step": step, "decoding": decoding, "heldout_reward": reward, "best_decoding": best, "stderr": 0.05,
            "vs_base_at_best": gain, "vs_base_at_best_stderr": se}


def test_the_better_decoding_is_the_higher_mean_and_greedy_on_a_tie():
    assert best_decoding({0.0: {"a": 1.0, "b": 0.0}, 0.7: {"a": 1.0, "b": 1.0}}) == 0.7
    assert best_decoding({0.0: {"a": 1.0}, 0.7: {"a": 1.0}}) == 0.0


def test_each_algorithm_is_read_at_its_last_step_and_better_decoding_against_the_base_at_its_best():
    base = {0.0: {"p1": 1.0, "p2": 0.0}, 0.7: {"p1": 0.0, "p2": 0.0}}  # greedy is the base's best
    grpo = AlgorithmRun("grpo", [row(0, "greedy", 0.5, True), row(0, "t=0.7", 0.0, False),
                                 row(4, "greedy", 0.6, False, 0.1, 0.05), row(4, "t=0.7", 0.8, True, 0.3, 0.1)], wall_s=100.0, cpu_s=1800.0,
                        trained_tokens=5120)
    rft = AlgorithmRun("rft", [row(4, "greedy", 0.5, True, 0.0, 0.04), row(4, "t=0.7", 0.2, False, -0.3, 0.05)], wall_s=90.0, cpu_s=0.0)
    g, r = summary_rows([grpo, rft], base, rollouts=64)
    assert (g["algorithm"], g["step"], g["decoding"], g["base_decoding"]) == ("grpo", 4, "t=0.7", "greedy")
    assert g["gain_vs_base_at_best"] == 0.3 and g["gain_in_stderrs"] == pytest.approx(3.0)
    assert g["reward_points_per_cpu_hour"] == pytest.approx(0.6)  # 0.3 in half a CPU-hour
    assert (g["greedy_reward"], g["t=0.7_reward"], g["rollouts"], g["trained_tokens"]) == (0.6, 0.8, 64, 5120)
    assert r["decoding"] == "greedy" and r["gain_vs_base_at_best"] == 0.0 and math.isnan(r["reward_points_per_cpu_hour"])


def test_unknown_algorithms_are_refused():
    with pytest.raises(ValueError, match="ppo"):
        CompareConfig(algorithms=("grpo", "ppo"))
    with pytest.raises(ValueError):
        CompareConfig(algorithms=())
