"""The task driver's curriculum: weights from posterior success rates (hand-computed), seeded draws, and the driver's
choice of problems, unchanged while the curriculum is off."""

import asyncio
from collections import Counter

import pytest
from pydantic import ValidationError

from lightwire.topics import TopicNames
from lightwire.tools.tasks.arithmetic import generate
from lightwire.tools.tasks.curriculum import Curriculum
from lightwire.tools.tasks.driver import GroupProgress, TaskDriver, TaskSpec, choose, in_turn
from lightwire.tools.tasks.settings import TaskSettings


def test_weight_is_p_times_one_minus_p_of_the_posterior_rate_with_a_floor():
    c = Curriculum(floor=0.1)
    c.record("half", 1, 2)    # p = (1 + 0.5) / (2 + 1) = 0.5        -> 0.25
    c.record("most", 3, 4)    # p = (3 + 0.5) / (4 + 1) = 0.7        -> 0.7 * 0.3 = 0.21
    c.record("never", 0, 1)   # p = (0 + 0.5) / (1 + 1) = 0.25       -> 0.25 * 0.75 = 0.1875
    c.record("always", 4, 4)  # p = (4 + 0.5) / (4 + 1) = 0.9        -> 0.09, under the floor: 0.1
    assert c.success_rate("unseen") == 0.5 and c.weight("unseen") == 0.25
    assert c.success_rate("half") == pytest.approx(0.5) and c.weight("half") == pytest.approx(0.25)
    assert c.success_rate("most") == pytest.approx(0.7) and c.weight("most") == pytest.approx(0.21)
    assert c.success_rate("never") == pytest.approx(0.25) and c.weight("never") == pytest.approx(0.1875)
    assert c.success_rate("always") == pytest.approx(0.9) and c.weight("always") == 0.1
    c.record("always", 0, 5)  # observations add up: (4 + 0 + 0.5) / (9 + 1) = 0.45 -> 0.45 * 0.55 = 0.2475
    assert c.weight("always") == pytest.approx(0.2475)


def test_a_problem_of_a_known_kind_takes_its_prior_rate_from_the_kind():
    c = Curriculum(floor=0.0)
    c.know({"sub-1": "sub", "sub-2": "sub", "sub-3": "sub", "add-1": "add", "plain": ""})
    c.record("sub-1", 0, 4)
    c.record("sub-2", 1, 4)   # the kind: 1 in 8, q = (1 + 0.5) / (8 + 1) = 1/6
    assert c.kind_counts == {"sub": (1, 8)} and c.kind_rate("sub") == pytest.approx(1 / 6)
    assert c.success_rate("sub-3") == pytest.approx(1 / 6)                      # unseen: its kind's rate
    assert c.weight("sub-3") == pytest.approx(1 / 6 * 5 / 6)
    assert c.success_rate("sub-2") == pytest.approx((1 + 1 / 6) / (4 + 1))     # its own outcomes over the kind's
    assert c.success_rate("add-1") == 0.5 and c.success_rate("plain") == 0.5   # an unseen kind, no kind: 0.5
    c.record("plain", 2, 2)
    assert c.kind_counts == {"sub": (1, 8)} and c.success_rate("plain") == pytest.approx(2.5 / 3)


def test_observe_counts_rewards_at_the_success_threshold():
    c = Curriculum(success_at=0.5)
    c.observe("t", [1.0, 0.5, 0.49, 0.0])
    assert c.counts == {"t": (2, 4)}
    with pytest.raises(ValueError, match="3 successes in 2 attempts"):
        c.record("t", 3, 2)
    with pytest.raises(ValueError, match="floor"):
        Curriculum(floor=0.3)


def test_draws_are_distinct_and_deterministic_given_the_seed():
    ids = [f"t{i}" for i in range(20)]
    first = Curriculum(seed=7).draw(ids, 5)
    assert first == Curriculum(seed=7).draw(ids, 5) and len(set(first)) == 5 and set(first) <= set(ids)
    assert sorted(Curriculum(seed=7).draw(ids[:3], 5)) == ids[:3]  # fewer than k: all of them
    assert any(Curriculum(seed=s).draw(ids, 5) != first for s in range(8, 12))


def test_draws_follow_the_weights():
    c = Curriculum(floor=0.1, seed=0)
    c.record("solved", 4, 4)  # weight 0.1 (the floor) against "open", unseen, 0.25: P(open) = 0.25 / 0.35 = 0.714
    drawn = Counter(c.draw(["open", "solved"], 1)[0] for _ in range(20_000))
    assert drawn["open"] / 20_000 == pytest.approx(0.25 / 0.35, abs=0.015)


def problems(n: int) -> list[TaskSpec]:
    return [TaskSpec(task_id=f"p{i}", task_type="arith", input={}, reference={}) for i in range(n)]


def test_without_a_curriculum_problems_come_in_turn_as_before():
    ps = problems(5)
    # the demo's rotation: step s takes problems (s * k + i) % n
    assert [p.task_id for p in in_turn(ps, 2, 1)] == ["p2", "p3"]
    assert [p.task_id for p in choose(ps, 2, 2)] == ["p4", "p0"]
    assert choose(ps, 3, 4, None) == [ps[(4 * 3 + i) % 5] for i in range(3)]


def test_with_a_curriculum_the_driver_draws_and_learns_from_finished_training_groups():
    async def driver() -> TaskDriver:  # made on a loop (its producer wants one); nothing is started or connected
        return TaskDriver("127.0.0.1:1", TopicNames("t."), curriculum=Curriculum(seed=3))

    d = asyncio.run(driver())
    ps = problems(6)
    chosen = d.choose(ps, 4, 1)
    assert chosen == [ps[int(t[1:])] for t in Curriculum(seed=3).draw([p.task_id for p in ps], 4)]
    d.observe(GroupProgress(4, 0.0, rewards=[1.0, 0.0, 1.0, 1.0], task_id="p1", split="train"))
    d.observe(GroupProgress(1, 0.0, rewards=[1.0], task_id="p2", split="eval"))  # held out: not observed
    assert d.curriculum.counts == {"p1": (3, 4)}


def test_the_curriculum_learns_the_kinds_of_the_problems_it_chooses_from():
    kinds = ["add", "sub", "mul", "two_step"]
    ps = [p for p in generate(40, 0, seed=1)]
    assert {p.kind for p in ps} == set(kinds)
    c = Curriculum(seed=0)
    choose(ps, 4, 0, c)
    assert c.kinds == {p.task_id: p.kind for p in ps}
    seen, unseen = ps[:30], ps[30:]
    for p in seen:  # every two-step problem fails, every other kind is half right
        c.observe(p.task_id, [0.0, 0.0] if p.kind == "two_step" else [1.0, 0.0])
    # An unseen two-step problem is as unlikely as its kind (at the floor), an unseen one of another kind is not.
    for p in unseen:
        assert c.weight(p.task_id) == (0.1 if p.kind == "two_step" else pytest.approx(0.25, abs=0.01))
    n_two = sum(p.kind == "two_step" for p in unseen)
    assert 0 < n_two < len(unseen)
    drawn = Counter(choose(unseen, 1, 0, c)[0].kind == "two_step" for _ in range(20_000))
    expected = sum(c.weight(p.task_id) for p in unseen if p.kind == "two_step") / sum(c.weight(p.task_id) for p in unseen)
    assert drawn[True] / 20_000 == pytest.approx(expected, abs=0.015) and expected < 0.7 * n_two / len(unseen)


def test_task_settings(monkeypatch):
    s = TaskSettings()
    assert (s.task_curriculum, s.task_curriculum_floor, s.task_curriculum_success) == ("off", 0.1, 0.5)
    monkeypatch.setenv("LW_TASK_CURRICULUM", "on")
    monkeypatch.setenv("LW_TASK_CURRICULUM_FLOOR", "0.05")
    assert (TaskSettings().task_curriculum, TaskSettings().task_curriculum_floor) == ("on", 0.05)
    monkeypatch.setenv("LW_TASK_CURRICULUM_FLOOR", "0.5")
    with pytest.raises(ValidationError):
        TaskSettings()
