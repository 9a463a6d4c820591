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


def test_completion_zero_is_the_one_trained_whatever_the_order():
    c = pb.LlmCall(call_id="r/1", seq=1, prompt_token_ids=[1], completions=[
        pb.Completion(index=1, token_ids=[8], logprobs=[-1.0]), pb.Completion(index=0, token_ids=[5], logprobs=[-2.0])])
    [t] = build([c]).transitions
    assert list(t.response_token_ids) == [5] and list(t.response_logprobs) == [-2.0]


def test_interleaved_agents_each_continue_their_own_conversation():
    # a: [1] -> [2]; b: [7] -> [8]; a again: [1 2 3] -> [4] extends a's [1 2] even though b spoke in between
    built = build([call(1, [1], [2], agent="a"), call(2, [7], [8], agent="b"), call(3, [1, 2, 3], [4], agent="a")])
    assert [(t.agent_name, list(t.response_token_ids), list(t.response_mask)) for t in built.transitions] == [
        ("a", [2, 3, 4], [1, 0, 1]), ("b", [8], [1])]
    assert built.call_ids == [["r/1", "r/3"], ["r/2"]] and built.mismatches == 0
