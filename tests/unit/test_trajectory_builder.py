"""Transitions on captured token ids: one per call, merged turns with observations masked, mismatches counted."""

from lightwire.v1 import events_pb2 as pb
from lightwire.services.collector.trajectory_builder import build


def call(seq, prompt, completion, agent="", version=1, logprobs=None):
    logprobs = [-0.5] * len(completion) if logprobs is None else logprobs
    return pb.LlmCall(call_id=f"r/{seq}", seq=seq, prompt_token_ids=prompt, agent_name=agent, model_version=version,
                      completions=[pb.Completion(index=0, token_ids=completion, logprobs=logprobs)])


def test_one_transition_per_call_without_merging():
    built = build([call(1, [1, 2], [3, 4]), call(2, [1, 2, 3, 4, 9], [5])], merge=False)
    assert [(list(t.prompt_token_ids), list(t.response_token_ids), list(t.response_mask)) for t in built.transitions] == [
        ([1, 2], [3, 4], [1, 1]), ([1, 2, 3, 4, 9], [5], [1])]
    assert [list(t.response_logprobs) for t in built.transitions] == [[-0.5, -0.5], [-0.5]]
    assert (built.mismatches, built.call_ids) == (0, [["r/1"], ["r/2"]])


def test_a_turn_that_extends_the_previous_one_is_merged_with_its_observation_masked():
    # turn 1: prompt [1 2], response [3 4]; turn 2 prompt = [1 2 3 4] + observation [9 9], response [5]
    built = build([call(1, [1, 2], [3, 4]), call(2, [1, 2, 3, 4, 9, 9], [5], version=2)])
    [t] = built.transitions
    assert list(t.prompt_token_ids) == [1, 2]
    assert list(t.response_token_ids) == [3, 4, 9, 9, 5]
    assert list(t.response_mask) == [1, 1, 0, 0, 1]
    assert list(t.response_logprobs) == [-0.5, -0.5, 0.0, 0.0, -0.5]
    # the oldest weight version that produced a token bounds staleness: min(1, 2) = 1
    assert (t.merged_calls, t.model_version, t.call_id, t.seq, built.mismatches) == (2, 1, "r/1", 1, 0)
    assert built.call_ids == [["r/1", "r/2"]]


def test_three_turns_merge_into_one_and_calls_are_ordered_by_seq():
    # arrival order 3, 1, 2; seq order: [1] -> [2]; [1 2 7] -> [3]; [1 2 7 3 8 8] -> [4]
    built = build([call(3, [1, 2, 7, 3, 8, 8], [4]), call(1, [1], [2]), call(2, [1, 2, 7], [3])])
    [t] = built.transitions
    assert list(t.response_token_ids) == [2, 7, 3, 8, 8, 4]
    assert list(t.response_mask) == [1, 0, 1, 0, 0, 1]
    assert t.merged_calls == 3 and built.call_ids == [["r/1", "r/2", "r/3"]]


def test_a_turn_that_rewrites_history_starts_a_new_transition_and_is_counted():
    built = build([call(1, [1, 2], [3]), call(2, [1, 7, 3], [4])])
    assert [list(t.response_token_ids) for t in built.transitions] == [[3], [4]]
    assert built.mismatches == 1
    # A prompt shorter than the previous context cannot extend it either.
    assert build([call(1, [1, 2], [3]), call(2, [1], [4])]).mismatches == 1


def test_no_merging_across_agents_and_agent_filtering():
    calls = [call(1, [1], [2], agent="a"), call(2, [1, 2, 3], [4], agent="b"), call(3, [1, 2, 3, 4, 5], [6], agent="b")]
    built = build(calls)
    # a's call alone; b's two calls merge (b2's context [1 2 3 4] is a prefix of b3's prompt): 2 transitions, no mismatch
    assert [(t.agent_name, t.merged_calls) for t in built.transitions] == [("a", 1), ("b", 2)] and built.mismatches == 0
    only_b = build(calls, train_agents=["b"])
    assert [t.call_id for t in only_b.transitions] == ["r/2"] and only_b.call_ids == [["r/2", "r/3"]]


def test_calls_without_tokens_are_skipped_and_missing_logprobs_counted():
    built = build([pb.LlmCall(seq=1, prompt_token_ids=[1]), call(2, [1], [2, 3], logprobs=[-0.1])])
    [t] = built.transitions
    # one logprob for two tokens: unusable, zeros keep the arrays aligned and the count says so
    assert list(t.response_logprobs) == [0.0, 0.0]
    assert (built.skipped, built.missing_logprobs) == (1, 1)


def test_completion_zero_is_the_step_whatever_the_order_and_the_other_a_sample_after_it():
    c = pb.LlmCall(call_id="r/1", seq=1, prompt_token_ids=[1], completions=[
        pb.Completion(index=1, token_ids=[8], logprobs=[-1.0]), pb.Completion(index=0, token_ids=[5], logprobs=[-2.0])])
    built = build([c])
    step, sample = built.transitions
    assert list(step.response_token_ids) == [5] and list(step.response_logprobs) == [-2.0]
    assert list(sample.response_token_ids) == [8] and list(sample.response_logprobs) == [-1.0]
    assert (built.steps, built.sample_steps) == (1, [0])


def test_interleaved_agents_each_continue_their_own_conversation():
    # a: [1] -> [2]; b: [7] -> [8]; a again: [1 2 3] -> [4] extends a's [1 2] even though b spoke in between
    built = build([call(1, [1], [2], agent="a"), call(2, [7], [8], agent="b"), call(3, [1, 2, 3], [4], agent="a")])
    assert [(t.agent_name, list(t.response_token_ids), list(t.response_mask)) for t in built.transitions] == [
        ("a", [2, 3, 4], [1, 0, 1]), ("b", [8], [1])]
    assert built.call_ids == [["r/1", "r/3"], ["r/2"]] and built.mismatches == 0


def n3_call(seq, prompt, completions, call_id=None):
    return pb.LlmCall(call_id=call_id or f"r/{seq}", seq=seq, prompt_token_ids=prompt, model_version=1, completions=[
        pb.Completion(index=i, token_ids=tokens, logprobs=[-0.1 * (i + 1)] * len(tokens)) for i, tokens in enumerate(completions)])


def test_a_call_with_three_completions_yields_three_transitions_on_the_same_prompt():
    built = build([n3_call(1, [1, 2], [[3, 4], [5], [6, 7, 8]])])
    assert [list(t.prompt_token_ids) for t in built.transitions] == [[1, 2]] * 3
    assert [list(t.response_token_ids) for t in built.transitions] == [[3, 4], [5], [6, 7, 8]]
    assert [list(t.response_mask) for t in built.transitions] == [[1, 1], [1], [1, 1, 1]]
    assert [[round(x, 4) for x in t.response_logprobs] for t in built.transitions] == [[-0.1, -0.1], [-0.2], [-0.3, -0.3, -0.3]]
    assert [(t.call_id, t.seq, t.merged_calls) for t in built.transitions] == [("r/1", 1, 1)] * 3
    # One step (the call), two samples of it: credit is assigned over the step and shared.
    assert (built.steps, built.call_ids, built.sample_steps) == (1, [["r/1"]], [0, 0])
    assert built.per_transition([0.7]) == [0.7, 0.7, 0.7]


def test_only_completion_zero_merges_and_samples_share_the_step_they_continue():
    # turn 1 has n=3; turn 2 extends turn 1's completion 0 ([1 2] + [3]) by the observation [9]; turn 3 rewrites history.
    calls = [n3_call(1, [1, 2], [[3], [4], [5]]), n3_call(2, [1, 2, 3, 9], [[6]]), n3_call(3, [0], [[7], [8]])]
    built = build(calls)
    assert [list(t.response_token_ids) for t in built.transitions] == [[3, 9, 6], [7], [4], [5], [8]]
    assert [list(t.prompt_token_ids) for t in built.transitions] == [[1, 2], [0], [1, 2], [1, 2], [0]]
    assert (built.steps, built.call_ids, built.sample_steps, built.mismatches) == (2, [["r/1", "r/2"], ["r/3"]], [0, 0, 1], 1)
    assert built.per_transition([0.25, 1.0]) == [0.25, 1.0, 0.25, 0.25, 1.0]


def test_samples_are_built_in_place_too_and_without_tokens_left_out():
    trajectory = pb.Trajectory()
    built = build([n3_call(1, [1], [[2], [], [3]])], into=trajectory.transitions)
    assert [list(t.response_token_ids) for t in trajectory.transitions] == [[2], [3]]
    assert len(built.transitions) == 2 and built.sample_steps == [0]


def test_the_finalizer_gives_every_completion_of_a_call_its_step_credit():
    from lightwire.runtime import codec
    from lightwire.services.collector import rollout_state
    from lightwire.services.collector.finalize import TrajectoryFinalizer
    from lightwire.services.collector.settings import CollectorSettings

    finalizer = TrajectoryFinalizer.from_settings(CollectorSettings(collector_credit="discounted", collector_gamma=0.5,
                                                                    collector_merge_turns=False))
    state = rollout_state.new_state("r", 0)
    calls = [n3_call(1, [1], [[2], [3], [4]], call_id="r/1"), n3_call(2, [5], [[6]], call_id="r/2")]
    for i, c in enumerate(calls):
        c.rollout_id = "r"
        rollout_state.apply(state, codec.make_event("gw", event_id=f"c{i}", llm_call=c), 1)
    rollout_state.apply(state, codec.make_event("gw", event_id="rw", reward=pb.RolloutReward(rollout_id="r", name="agent", value=1.0)), 1)
    rollout_state.apply(state, codec.make_event("gw", event_id="fin", rollout_finished=pb.RolloutFinished(
        rollout_id="r", status=pb.ROLLOUT_STATUS_SUCCEEDED, num_calls=2)), 1)
    trajectory, _ = finalizer(state, False)
    assert [list(t.response_token_ids) for t in trajectory.transitions] == [[2], [6], [3], [4]]
    # discounted over the two steps: step 1 gets gamma * final, step 2 the final; the samples of call 1 get step 1's.
    final = trajectory.reward
    assert final != 0
    assert [t.reward for t in trajectory.transitions] == [0.5 * final, final, 0.5 * final, 0.5 * final]
