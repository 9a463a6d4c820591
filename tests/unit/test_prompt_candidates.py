import json

from lightwire.tools.prompts.candidates import Candidate, Demonstration, best, candidate_sets, demonstration_from_calls

CALL = {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6 * 7"}'}}


def chat_call(messages, reply, status=200) -> dict:
    return {"endpoint": "chat.completions", "http_status": status, "request_json": json.dumps({"model": "m", "messages": messages}),
            "response_json": json.dumps({"choices": [{"index": 0, "message": reply}]})}


def test_the_demonstration_is_the_last_answered_calls_exchange_without_the_system_message():
    first = [{"role": "system", "content": "Solve."}, {"role": "user", "content": "6 times 7?"}]
    second = first + [{"role": "assistant", "content": None, "tool_calls": [{**CALL, "extra": 1}]},
                      {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    calls = [chat_call(first, {"role": "assistant", "content": None, "tool_calls": [CALL]}),
             chat_call(second, {"role": "assistant", "content": "Answer: 42", "refusal": None}),
             chat_call(second, {"role": "assistant", "content": "x"}, status=500)]
    demo = demonstration_from_calls(calls, "r1", 1.0)
    assert demo.messages == (
        {"role": "user", "content": "6 times 7?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "assistant", "content": "Answer: 42"},
    )
    assert demo.tool_calls == 1 and json.loads(demo.messages_json())[-1]["content"] == "Answer: 42"


def test_rollouts_without_an_answered_chat_call_give_no_demonstration():
    assert demonstration_from_calls([], "r", 1.0) is None
    assert demonstration_from_calls([chat_call([{"role": "user", "content": "q"}], {"role": "assistant"}, status=400)], "r", 1.0) is None
    broken = {"endpoint": "chat.completions", "http_status": 200, "request_json": "{", "response_json": "{}"}
    assert demonstration_from_calls([broken], "r", 1.0) is None
    only_system = chat_call([{"role": "system", "content": "s"}], {"role": "assistant", "content": "a"})
    assert demonstration_from_calls([only_system], "r", 1.0) is None


def pool(n: int) -> list[Demonstration]:
    return [Demonstration(({"role": "user", "content": str(i)},), f"r{i:02d}", 1.0) for i in range(n)]


def ids(sets) -> list[tuple[str, ...]]:
    return [tuple(d.rollout_id for d in s) for s in sets]


def test_candidate_sets_are_the_same_for_the_same_seed_and_pool_in_any_order():
    a = candidate_sets(pool(8), 2, 5, seed=3)
    assert ids(a) == ids(candidate_sets(list(reversed(pool(8))), 2, 5, seed=3))
    assert ids(a) != ids(candidate_sets(pool(8), 2, 5, seed=4))
    assert len(a) == 5 and len(set(ids(a))) == 5
    assert all(len(s) == 2 and s[0].rollout_id < s[1].rollout_id for s in a)  # pool order within a set


def test_a_small_pool_gives_the_distinct_sets_it_has():
    assert sorted(ids(candidate_sets(pool(3), 2, 10, seed=0))) == [("r00", "r01"), ("r00", "r02"), ("r01", "r02")]
    assert ids(candidate_sets(pool(1), 2, 3, seed=0)) == [("r00",)]
    assert candidate_sets([], 2, 3, seed=0) == [] and candidate_sets(pool(3), 0, 3, seed=0) == []


def test_higher_reward_demonstrations_rank_first():
    mixed = [Demonstration((), "a", 0.5), Demonstration((), "b", 1.0)]
    assert ids(candidate_sets(mixed, 2, 1, seed=0)) == [("b", "a")]


def test_best_is_the_top_mean_ties_to_fewer_demonstrations_and_must_beat_the_own_prompt():
    one, two = pool(2)
    a = Candidate(2, (one, two), {"p1": 1.0, "p2": 0.0})
    b = Candidate(3, (one,), {"p1": 0.0, "p2": 1.0})
    c = Candidate(4, (two,), {"p1": 0.0, "p2": 0.0})
    assert best([a, b, c], {"p1": 0.0, "p2": 0.0}) is b  # 0.5 each: the shorter prompt
    assert best([a, Candidate(5, (one,), {"p1": 1.0, "p2": 0.0})], {}).version == 5
    assert best([a, b], {"p1": 1.0, "p2": 0.0}) is None  # no better than the agent's own prompt
    assert best([], {"p1": 0.0}) is None
