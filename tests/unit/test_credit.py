"""Credit assignment strategies, agent selection and the finalizer's credit against hand-computed values."""

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from lightwire.runtime import codec
from lightwire.services.collector import credit, rollout_state
from lightwire.services.collector.finalize import TrajectoryFinalizer
from lightwire.services.collector.settings import CollectorSettings
from lightwire.v1 import events_pb2 as pb


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


def test_attributed_penalises_a_failed_rollouts_blamed_steps_and_gives_the_others_the_final_reward():
    # failed, 4 steps, final 0.2, step 2 blamed, penalty -1: [0.2, 0.2, -1.0, 0.2]
    assert credit.assign("attributed", 0.2, 4, blamed_steps=[2], failed=True, penalty=-1.0) == [0.2, 0.2, -1.0, 0.2]
    # two blamed steps, penalty -0.5, final 0: [-0.5, 0.0, -0.5]
    assert credit.assign("attributed", 0.0, 3, blamed_steps=[0, 2], failed=True, penalty=-0.5) == [-0.5, 0.0, -0.5]
    # the default penalty is -1
    assert credit.assign("attributed", 0.0, 2, blamed_steps=[1], failed=True) == [0.0, -1.0]
    # a rollout that did not fail, or has no blamed step, is credited as identical
    assert credit.assign("attributed", 1.0, 3, blamed_steps=[1], failed=False) == [1.0, 1.0, 1.0]
    assert credit.assign("attributed", 0.0, 3, failed=True) == [0.0, 0.0, 0.0]
    assert credit.assign("attributed", 0.0, 0, failed=True) == []
    with pytest.raises(ValueError, match="blamed step 3 of 3 steps"):
        credit.assign("attributed", 0.0, 3, blamed_steps=[3], failed=True)


def test_the_other_strategies_ignore_the_attribution():
    assert credit.assign("identical", 0.5, 2, blamed_steps=[0], failed=True, penalty=-1.0) == [0.5, 0.5]


def test_a_step_is_blamed_when_it_holds_a_blamed_call():
    # step 0 merged r/1 and r/2, step 1 is r/3, step 2 is r/4; r/2 and r/4 are blamed: steps 0 and 2
    assert credit.blamed_steps([["r/1", "r/2"], ["r/3"], ["r/4"]], {"r/2", "r/4", "other/1"}) == [0, 2]
    assert credit.blamed_steps([["r/1"]], set()) == []


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="identical, discounted, per_step, attributed"):
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


# The finalizer: attributions blame calls by seq, credit blames the steps holding them.

def finalize(status, spans=(), calls=3, merge=False, **settings):
    finalizer = TrajectoryFinalizer.from_settings(CollectorSettings(collector_credit="attributed", collector_merge_turns=merge,
                                                                    collector_attributors="all", **settings))
    state = rollout_state.new_state("r", 0)
    prompt = [1]
    for seq in range(1, calls + 1):
        # Each turn extends the previous prompt+completion by one token: merged when merging is on.
        call = pb.LlmCall(rollout_id="r", call_id=f"r/{seq}", seq=seq, prompt_token_ids=prompt, model_version=1,
                          completions=[pb.Completion(token_ids=[10 + seq], logprobs=[-0.5], text=f"step {seq}")])
        rollout_state.apply(state, codec.make_event("gw", event_id=f"c{seq}", llm_call=call), 1)
        prompt = prompt + [10 + seq, 7]
    for i, span in enumerate(spans):
        rollout_state.apply(state, codec.make_event("gw", event_id=f"s{i}", span=span), 1)
    rollout_state.apply(state, codec.make_event("gw", event_id="rw", reward=pb.RolloutReward(rollout_id="r", name="agent", value=0.25)), 1)
    rollout_state.apply(state, codec.make_event("gw", event_id="fin", rollout_finished=pb.RolloutFinished(
        rollout_id="r", status=status, num_calls=calls)), 1)
    trajectory, _ = finalizer(state, False)
    return trajectory


def tool_failure(after_seq: int):
    return pb.AgentSpan(rollout_id="r", span_id=f"t{after_seq}", name="calculator", kind="tool", after_seq=after_seq,
                        error=pb.ErrorInfo(type="ZeroDivisionError", message="division by zero"))


def test_the_finalizer_penalises_the_call_a_tool_exception_is_attributed_to():
    failed = finalize(pb.ROLLOUT_STATUS_FAILED, [tool_failure(2)])
    assert ("tool_exception", 2) in [(a.error_class, a.step) for a in failed.attributions]
    # final reward 0.25 (the agent's), call 2 blamed: [0.25, -1.0, 0.25]
    assert failed.reward == 0.25 and [t.reward for t in failed.transitions] == [0.25, -1.0, 0.25]
    # the penalty is a setting
    assert [t.reward for t in finalize(pb.ROLLOUT_STATUS_FAILED, [tool_failure(2)], collector_credit_penalty=-0.5).transitions] == [
        0.25, -0.5, 0.25]
    # a rollout that succeeded despite the exception: identical credit
    assert [t.reward for t in finalize(pb.ROLLOUT_STATUS_SUCCEEDED, [tool_failure(2)]).transitions] == [0.25, 0.25, 0.25]
    # a class left out of LW_COLLECTOR_CREDIT_ERROR_CLASSES blames nothing
    kept = finalize(pb.ROLLOUT_STATUS_FAILED, [tool_failure(2)], collector_credit_error_classes="loop")
    assert [t.reward for t in kept.transitions] == [0.25, 0.25, 0.25]


def test_a_merged_transition_holding_the_blamed_call_takes_the_penalty():
    # Three turns merged into one transition (one step): call 2 blamed, so that step: [-1.0]
    merged = finalize(pb.ROLLOUT_STATUS_FAILED, [tool_failure(2)], merge=True)
    assert len(merged.transitions) == 1 and [t.reward for t in merged.transitions] == [-1.0]


def test_the_blaming_classes_are_error_classes():
    assert CollectorSettings().collector_credit_error_classes == ("tool_exception", "invalid_tool_json", "loop", "context_overflow")
    with pytest.raises(ValidationError, match="tool_exceptions"):
        CollectorSettings(collector_credit_error_classes="tool_exceptions")
