"""Dynamic sampling on the driver's side: a uniform group is replaced until the batch holds enough groups with a
signal, never overfilled, never past the cap. The driver's Kafka I/O is replaced by a fake that finishes each
published group with scripted rewards."""

from __future__ import annotations

import asyncio

import pytest

from lightwire.tools.tasks.batch_fill import FillPolicy, batched, carries_signal, more_groups
from lightwire.tools.tasks.driver import GroupProgress, TaskDriver, TaskSpec
from lightwire.topics import TopicNames


def test_a_group_carries_a_signal_when_its_rewards_differ():
    assert carries_signal([0.0, 1.0, 0.0]) and not carries_signal([1.0, 1.0]) and not carries_signal([0.0])


def test_a_group_every_rollout_solved_is_batched_only_under_a_solved_reward():
    drop, drop_unsolved = FillPolicy(groups=1, max_groups=1), FillPolicy(groups=1, max_groups=1, solved_reward=1.0)
    assert not batched([1.0, 1.0], drop) and batched([1.0, 1.0], drop_unsolved)
    assert not batched([0.0, 0.0], drop_unsolved) and not batched([0.5, 0.5], drop_unsolved) and not batched([], drop_unsolved)
    assert batched([0.0, 1.0], drop) and batched([0.0, 1.0], drop_unsolved)


def test_more_groups_fills_exactly_and_stops_at_the_cap():
    policy = FillPolicy(groups=4, max_groups=10)
    assert more_groups(useful=0, in_flight=0, published=0, policy=policy) == 4
    assert more_groups(useful=1, in_flight=2, published=4, policy=policy) == 1  # one uniform group finished
    assert more_groups(useful=3, in_flight=1, published=5, policy=policy) == 0  # full if the last one teaches
    assert more_groups(useful=0, in_flight=0, published=8, policy=FillPolicy(groups=4, max_groups=9)) == 1
    with pytest.raises(ValueError):
        FillPolicy(groups=4, max_groups=3)


class ScriptedDriver(TaskDriver):
    """Each published group finishes at the next poll with the next scripted rewards."""

    def __init__(self, rewards: list[list[float]]):
        super().__init__("127.0.0.1:1", TopicNames("t."))
        self.script = list(rewards)
        self.published: list[str] = []

    async def publish_group(self, spec, group_size, model_version, tag=""):
        group_id = f"{spec.task_id}.{len(self.published)}"
        self.published.append(group_id)
        self.in_flight[group_id] = GroupProgress(group_size, 0.0, task_id=spec.task_id)
        return group_id

    async def poll(self, timeout_ms=200):
        done = []
        for group_id in list(self.in_flight):
            progress = self.in_flight.pop(group_id)
            progress.rewards = self.script.pop(0)
            self.finished[group_id] = progress
            done.append(group_id)
        return done


def problems(n: int) -> list[TaskSpec]:
    return [TaskSpec(f"p{i}", "arith", {}, {}) for i in range(n)]


def fill(script: list[list[float]], policy: FillPolicy):
    async def go():
        driver = ScriptedDriver(script)  # its (unused) producer wants a running loop
        pool = problems(10)
        return driver, await driver.fill(lambda n: driver.draw(pool, n), 2, policy)

    return asyncio.run(go())


def test_uniform_groups_are_replaced_until_the_batch_is_full():
    driver, report = fill([[0, 0], [0, 1], [1, 1], [1, 0], [0, 1], [0, 0], [1, 0]], FillPolicy(groups=3, max_groups=9))
    pool = problems(10)
    # 3 published, two of them uniform: 2 more, both with a signal; the scripted rest is never asked for.
    assert (report.published, report.useful, report.uniform, report.full) == (5, 3, 2, True)
    assert [g.split(".")[0] for g in driver.published] == ["p0", "p1", "p2", "p3", "p4"]  # in turn, none twice
    assert driver.draw(pool, 2)[0].task_id == "p5"  # the cursor runs on into the next step


def test_the_cap_ends_a_batch_that_cannot_fill():
    _, report = fill([[0, 0]] * 6, FillPolicy(groups=2, max_groups=5))
    assert (report.published, report.useful, report.full) == (5, 0, False)


def test_under_drop_unsolved_a_solved_group_fills_the_batch_and_a_failed_one_is_replaced():
    _, report = fill([[1, 1], [0, 0], [1, 0], [1, 1]], FillPolicy(groups=3, max_groups=9, solved_reward=1.0))
    assert (report.published, report.useful, report.uniform, report.full) == (4, 3, 1, True)
