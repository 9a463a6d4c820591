"""Each built-in reward against hand-computed values, and plug-in discovery through entry points."""

import sys

import pytest

from lightwire.v1 import events_pb2 as pb
from lightwire.services.reward import rewards
from lightwire.plugins.interface import reward_context
from lightwire.plugins.registry import (
    RewardPipeline,
    RewardSpec,
    UnknownPlugin,
    available_attributors,
    available_rewards,
    combine,
    load_attributor,
    load_reward,
    parse_specs,
)
from lightwire.plugins.rollout_view import CallView, SpanView, rollout_view


def call(latency=100.0, text="x"):
    return CallView(1, "r/1", "", "p", text, "", False, "stop", "", "", 200, latency, 3, 2)


def test_exact_match_ignores_case_spacing_and_a_final_period():
    ref = [{"answer": 42}, {"answer": 42}, {"answer": "Paris"}, {}, {"answer": "Paris"}]
    got = rewards.exact_match([""] * 5, ["42", " 42. ", "paris", "x", "It is Paris"], reference=ref)
    assert got == [1.0, 1.0, 1.0, None, 0.0]


def test_numeric_match_takes_the_last_number():
    # "40 + 2 = 42" -> 42 == 42; "Answer: 1,234" -> 1234 == 1234; "none" -> no number -> 0; no reference -> None;
    # a non-numeric reference ("Paris") is not this reward's business -> None.
    got = rewards.numeric_match([""] * 5, ["40 + 2 = 42", "Answer: 1,234", "none", "7", "7"],
                                reference=[{"answer": 42}, {"answer": "1,234"}, {"answer": 1}, None, {"answer": "Paris"}])
    assert got == [1.0, 1.0, 0.0, None, None]


def test_numeric_match_tolerances():
    ref = [{"answer": 3.14159}] * 2
    # |3.14 - 3.14159| = 0.00159: outside the default 1e-6, inside 0.01.
    assert rewards.numeric_match(["", ""], ["pi is 3.14", "3.14159"], reference=ref) == [0.0, 1.0]
    assert rewards.numeric_match(["", ""], ["pi is 3.14", "3"], tolerance=0.01, reference=ref) == [1.0, 0.0]
    # 1% relative: |990 - 1000| = 10 <= 0.01 * 1000
    assert rewards.numeric_match([""], ["990"], tolerance=0, relative_tolerance=0.01, reference=[{"answer": 1000}]) == [1.0]


def test_brevity_prefers_short_completions():
    # "" -> 1; 50 chars -> 1 - 50/200 = 0.75; 200 -> 0; 300 -> clipped at 0; budget 10: "abcde" -> 0.5
    assert rewards.brevity(["", "", "", ""], ["", "x" * 50, "y" * 200, "z" * 300]) == [1.0, 0.75, 0.0, 0.0]
    assert rewards.brevity([""], ["abcde"], budget_chars=10) == [0.5]
    with pytest.raises(ValueError, match="budget_chars"):
        rewards.brevity([""], ["a"], budget_chars=0)


def test_numeric_closeness_gives_partial_credit_for_near_misses():
    # 40 vs 50: 1 - 10/50 = 0.8; 150 vs 50: 1 - 100/50 -> 0; no number -> 0; 0.5 vs 0: 1 - 0.5/max(1, 0) = 0.5;
    # "Answer: 1,234" vs 1234 -> 1; no reference -> None
    got = rewards.numeric_closeness([""] * 6, ["it is 40", "150", "no idea", "0.5", "Answer: 1,234", "7"],
                                    reference=[{"answer": 50}, {"answer": 50}, {"answer": 50}, {"answer": 0}, {"answer": 1234}, None])
    assert got == [pytest.approx(0.8), 0.0, 0.0, 0.5, 1.0, None]


def test_task_completion_takes_the_agents_last_report():
    assert rewards.task_completion(["", ""], ["", ""], agent_rewards=[[0.0, 1.0], []]) == [1.0, None]


def test_tool_success_rate_from_plain_results_or_spans():
    # 2 of 3 tool calls succeeded -> 2/3; no tool ran -> None.
    assert rewards.tool_success_rate(["", ""], ["", ""], tool_results=[[True, True, False], []]) == [pytest.approx(2 / 3), None]
    ok = SpanView("tool", "calc", 1, "", "", "", "")
    bad = SpanView("tool", "calc", 2, "ValueError", "boom", "", "")
    other = SpanView("agent", "plan", 0, "RuntimeError", "x", "", "")  # not a tool: does not count
    # spans: ok, ok, bad -> 2/3 (the agent span is ignored)
    assert rewards.tool_success_rate(["", ""], ["", ""], spans=[[ok, ok, bad, other], [other]]) == [pytest.approx(2 / 3), None]


def test_latency_penalty_is_zero_within_budget_and_linear_beyond():
    # budget 1000 ms: 300 + 300 = 600 -> 0; 1500 -> -(1500-1000)/1000 = -0.5; 5000 -> -4 clipped to -1; no calls -> None.
    got = rewards.latency_penalty([""] * 4, [""] * 4, budget_ms=1000, latencies_ms=[[300, 300], [1500], [5000], []])
    assert got == [0.0, -0.5, -1.0, None]
    # The same from CallViews: 750 + 500 = 1250 -> -(250/1000) = -0.25
    assert rewards.latency_penalty([""], [""], budget_ms=1000, calls=[[call(750), call(500)]]) == [-0.25]


def test_format_validity_default_and_per_task_pattern():
    assert rewards.format_validity([""] * 3, ["Answer: 12", "the answer is twelve", "final answer = -3"]) == [1.0, 0.0, 1.0]
    # A reference's own format wins: here a \boxed{...} answer.
    ref = [{"format": r"\\boxed\{[^}]+\}"}, {"format": r"\\boxed\{[^}]+\}"}]
    assert rewards.format_validity(["", ""], ["so \\boxed{7}", "Answer: 7"], reference=ref) == [1.0, 0.0]


def test_user_feedback_is_the_mean():
    # (1 + 0 + 0.5) / 3 = 0.5
    assert rewards.user_feedback(["", ""], ["", ""], feedback=[[1.0, 0.0, 0.5], []]) == [0.5, None]


def test_graceful_degradation_ranks_a_crash_below_a_wrong_answer():
    got = rewards.graceful_degradation([""] * 4, [""] * 4,
                                       attributions=[["agent_crash", "tool_exception"], ["tool_exception"], [], ["upstream_error"]])
    # worst severity: crash 1 -> -1; tool 0.25 -> -0.25; clean -> 0; upstream is not the policy's fault -> 0
    assert got == [-1.0, -0.25, 0.0, 0.0]
    # With numeric_match (weight 1) + graceful_degradation (weight 1): wrong answer 0 + 0 = 0 > crash 0 + (-1) = -1.
    specs = parse_specs("numeric_match,graceful_degradation")
    assert combine({"numeric_match": 0.0, "graceful_degradation": 0.0}, specs) > combine(
        {"numeric_match": 0.0, "graceful_degradation": -1.0}, specs)


def test_context_lists_must_have_one_entry_per_sample():
    with pytest.raises(ValueError, match="one per sample"):
        rewards.user_feedback(["", ""], ["", ""], feedback=[[1.0]])


def test_reward_context_from_a_rollout_feeds_every_built_in():
    calls = [pb.LlmCall(seq=s, call_id=f"r/{s}", latency_ms=400.0, completions=[pb.Completion(text=t)])
             for s, t in ((2, "so Answer: 42"), (1, "let me compute"))]
    spans = [pb.AgentSpan(kind="tool", name="calc", after_seq=1), pb.AgentSpan(kind="tool", name="calc", error=pb.ErrorInfo(type="E"))]
    task = pb.Task(task_type="arith", reference_json='{"answer": 42}')
    view = rollout_view("r", task, calls, spans, [pb.RolloutReward(value=1.0)], [pb.Feedback(value=0.5)], None, False)
    ctx = reward_context(view, ["tool_exception"])
    p, c = [view.final_prompt], [view.final_completion]
    assert c == ["so Answer: 42"]  # the call with the highest seq, whatever the arrival order
    got = {name: load_reward(name)(p, c, **ctx)[0] for name in available_rewards()}
    # latency 400 + 400 = 800 < 10 s budget -> 0; 1 of 2 tools ok -> 0.5; worst = tool_exception -> -0.25
    assert got == {"exact_match": 0.0, "numeric_match": 1.0, "task_completion": 1.0, "tool_success_rate": 0.5,
                   "latency_penalty": 0.0, "format_validity": 1.0, "user_feedback": 0.5, "graceful_degradation": -0.25,
                   # 13 characters of a 200 budget -> 1 - 13/200 = 0.935; 42 is exactly the reference -> 1
                   "brevity": pytest.approx(0.935), "numeric_closeness": 1.0}


def test_pipeline_parsing_weights_and_unknown_names():
    assert parse_specs("a:0.5, b") == (RewardSpec("a", 0.5), RewardSpec("b", 1.0))
    assert parse_specs("remote:judge, remote:judge:2") == (RewardSpec("remote:judge"), RewardSpec("remote:judge", 2.0))
    pipeline = RewardPipeline.parse("task_completion", "arith=numeric_match:1+format_validity:0.2")
    assert [(s.name, s.weight) for s in pipeline.for_task("arith")] == [("numeric_match", 1.0), ("format_validity", 0.2)]
    assert [s.name for s in pipeline.for_task("other")] == ["task_completion"]
    # 1 * 1.0 + 0.2 * 1.0 = 1.2; a component that did not apply (None, so absent) adds nothing
    assert combine({"numeric_match": 1.0, "format_validity": 1.0}, pipeline.for_task("arith")) == pytest.approx(1.2)
    assert combine({"format_validity": 1.0}, pipeline.for_task("arith")) == pytest.approx(0.2)
    with pytest.raises(UnknownPlugin, match="available: .*exact_match"):
        RewardPipeline.parse("no_such_reward")
    with pytest.raises(ValueError, match="must be a number"):
        parse_specs("a:high")
    with pytest.raises(ValueError, match="type=name"):
        RewardPipeline.parse("exact_match", "arith")


def test_pipeline_chooses_attributors_per_task_type():
    pipeline = RewardPipeline.parse("exact_match", attributors="all", task_attributors="code=code_syntax_errors+loops")
    assert pipeline.attributors_for("code") == ("code_syntax_errors", "loops")
    assert "agent_crash" in pipeline.attributors_for("chat") and len(pipeline.attributors_for("chat")) == 8
    with pytest.raises(UnknownPlugin, match="no attributor named 'nope'; available: .*loops"):
        RewardPipeline.parse("exact_match", task_attributors="code=nope")
    with pytest.raises(UnknownPlugin, match="available"):
        load_attributor("nope")


def _install_plugin(tmp_path, monkeypatch, module: str, source: str, group: str, line: str) -> None:
    (tmp_path / f"{module}.py").write_text(source)
    dist = tmp_path / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{line}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_reward_from_another_package_is_found_by_its_entry_point(tmp_path, monkeypatch):
    source = "def shout(prompts, completions, **ctx):\n    return [float(c.isupper()) for c in completions]\n"
    _install_plugin(tmp_path, monkeypatch, "my_judge", source, "lightwire.rewards", "shout = my_judge:shout")
    fn = load_reward("shout")
    assert fn([""], ["YES"]) == [1.0] and fn([""], ["no"]) == [0.0]
    assert "shout" in available_rewards()
    sys.modules.pop("my_judge", None)


def test_a_broken_plugin_says_which_and_why(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "broken_judge", "raise ImportError('needs numpy 9')\n",
                    "lightwire.rewards", "broken = broken_judge:judge")
    with pytest.raises(UnknownPlugin, match="'broken' is registered as 'broken_judge:judge' but does not load"):
        load_reward("broken")
    sys.modules.pop("broken_judge", None)


def test_every_built_in_is_registered_under_its_entry_point():
    """pyproject.toml's entry points are the one registration: every public function of the built-in modules is there."""
    import inspect

    from lightwire.services.reward import attribution

    def public_functions(module, first_param):
        return {n for n, f in inspect.getmembers(module, inspect.isfunction)
                if f.__module__ == module.__name__ and not n.startswith("_")
                and list(inspect.signature(f).parameters)[:1] == [first_param]}

    assert public_functions(rewards, "prompts") == set(available_rewards())
    assert public_functions(attribution, "view") == set(available_attributors())
