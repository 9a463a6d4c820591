from lightwire.v1 import events_pb2 as pb
from services.reward.trajectory_builder import build


def call(seq, prompt, completion, agent="", version=1):
    return pb.LlmCall(call_id=f"r/{seq}", seq=seq, prompt_token_ids=prompt, agent_name=agent, model_version=version,
                      completions=[pb.Completion(token_ids=completion, logprobs=[-0.5] * len(completion))])


def test_a_turn_that_extends_the_previous_one_is_merged_with_its_observation_masked():
    # turn 1: prompt [1 2], response [3 4]; turn 2 prompt = [1 2 3 4] + observation [9 9], response [5]
    built = build([call(1, [1, 2], [3, 4]), call(2, [1, 2, 3, 4, 9, 9], [5], version=2)])
    [t] = built.transitions
    assert list(t.prompt_token_ids) == [1, 2]
    assert list(t.response_token_ids) == [3, 4, 9, 9, 5]
    assert list(t.response_mask) == [1, 1, 0, 0, 1]
    assert list(t.response_logprobs) == [-0.5, -0.5, 0.0, 0.0, -0.5]
    assert (t.merged_calls, t.model_version, built.mismatches) == (2, 1, 0)


def test_a_turn_that_rewrites_history_starts_a_new_transition_and_is_counted():
    built = build([call(1, [1, 2], [3]), call(2, [1, 7, 3], [4])])
    assert [list(t.response_token_ids) for t in built.transitions] == [[3], [4]]
    assert built.mismatches == 1


def test_no_merging_when_disabled_or_across_agents():
    calls = [call(1, [1], [2]), call(2, [1, 2, 3], [4])]
    assert len(build(calls, merge=False).transitions) == 2
    assert build(calls, merge=False).mismatches == 0
    assert len(build([call(1, [1], [2], agent="a"), call(2, [1, 2, 3], [4], agent="b")]).transitions) == 2


def test_calls_without_tokens_are_skipped():
    assert build([pb.LlmCall(seq=1, prompt_token_ids=[1])]).transitions == []
