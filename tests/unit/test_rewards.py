"""Each built-in reward against hand-computed values, and plug-in discovery through entry points."""

import sys
import textwrap

import pytest

from services.reward import rewards
from services.reward.registry import RewardPipeline, UnknownPlugin, load_reward, parse_specs
from services.reward.rollout_view import CallView, SpanView


def call(latency=100.0, text="x"):
    return CallView(1, "r/1", "", "p", text, "", False, "stop", "", "", 200, latency, 3, 2)


def test_exact_and_numeric_match():
    ref = [{"answer": 42}, {"answer": 42}, {"answer": "Paris"}, {}]
    assert rewards.exact_match([""] * 4, ["42", " 42. ", "paris", "x"], reference=ref) == [1.0, 1.0, 1.0, None]
    # The last number counts: "40 + 2 = 42" -> 42; "1,234" -> 1234; no number -> 0.
    got = rewards.numeric_match([""] * 4, ["40 + 2 = 42", "Answer: 1,234", "none", "7"],
                                reference=[{"answer": 42}, {"answer": 1234}, {"answer": 1}, None])
    assert got == [1.0, 1.0, 0.0, None]


def test_task_completion_takes_the_agents_last_report():
    assert rewards.task_completion(["", ""], ["", ""], agent_rewards=[[0.0, 1.0], []]) == [1.0, None]


def test_tool_success_rate():
    ok = SpanView("tool", "calc", 1, "", "", "", "")
    bad = SpanView("tool", "calc", 2, "ValueError", "boom", "", "")
    other = SpanView("agent", "plan", 0, "", "", "", "")
    # 2 of 3 tool spans succeeded -> 2/3; no tool spans -> None.
    assert rewards.tool_success_rate(["", ""], ["", ""], spans=[[ok, ok, bad, other], [other]]) == [pytest.approx(2 / 3), None]


def test_latency_penalty_is_zero_within_budget_and_linear_beyond():
    # budget 1000 ms: 600 ms -> 0; 1500 ms -> -(1500-1000)/1000 = -0.5; 5000 ms -> clipped at -1.
    calls = [[call(300), call(300)], [call(1500)], [call(5000)], []]
    assert rewards.latency_penalty([""] * 4, [""] * 4, budget_ms=1000, calls=calls) == [0.0, -0.5, -1.0, None]


def test_format_validity():
    assert rewards.format_validity(["", "", ""], ["Answer: 12", "the answer is twelve", "final answer = -3"]) == [1.0, 0.0, 1.0]


def test_user_feedback_is_the_mean():
    assert rewards.user_feedback(["", ""], ["", ""], feedback=[[1.0, 0.0, 0.5], []]) == [0.5, None]


def test_graceful_degradation_ranks_a_crash_below_a_tool_error():
    got = rewards.graceful_degradation(["", "", ""], ["", "", ""], attributions=[["agent_crash", "tool_exception"], ["tool_exception"], []])
    assert got == [-1.0, -0.25, 0.0]


def test_pipeline_parsing_and_unknown_names():
    assert parse_specs("a:0.5, b") == (parse_specs("a:0.5")[0], parse_specs("b:1")[0])
    pipeline = RewardPipeline.parse("task_completion", "arith=numeric_match:1+format_validity:0.2")
    assert [(s.name, s.weight) for s in pipeline.for_task("arith")] == [("numeric_match", 1.0), ("format_validity", 0.2)]
    assert [s.name for s in pipeline.for_task("other")] == ["task_completion"]
    with pytest.raises(UnknownPlugin, match="available: .*exact_match"):
        RewardPipeline.parse("no_such_reward")
    with pytest.raises(ValueError, match="must be a number"):
        parse_specs("a:high")


def test_a_reward_from_another_package_is_found_by_its_entry_point(tmp_path, monkeypatch):
    (tmp_path / "my_judge.py").write_text("def shout(prompts, completions, **ctx):\n    return [float(c.isupper()) for c in completions]\n")
    dist = tmp_path / "my_judge-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-judge\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [lightwire.rewards]
        shout = my_judge:shout
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = load_reward("shout")
    assert fn([""], ["YES"]) == [1.0] and fn([""], ["no"]) == [0.0]
    sys.modules.pop("my_judge", None)


def test_every_built_in_is_registered_under_its_entry_point():
    from importlib.metadata import entry_points

    from services.reward.attribution import BUILTIN_ATTRIBUTORS
    from services.reward.rewards import BUILTIN_REWARDS

    rewards_eps = {ep.name: ep.load() for ep in entry_points(group="lightwire.rewards")}
    attributor_eps = {ep.name: ep.load() for ep in entry_points(group="lightwire.attributors")}
    assert {k: rewards_eps[k] for k in BUILTIN_REWARDS} == BUILTIN_REWARDS
    assert {k: attributor_eps[k] for k in BUILTIN_ATTRIBUTORS} == BUILTIN_ATTRIBUTORS
