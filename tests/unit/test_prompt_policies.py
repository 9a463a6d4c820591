import json

import pytest

from lightwire.v1 import events_pb2
from lightwire.services.gateway.prompt_policies import (
    VERSION_KEY, InvalidPolicy, PromptPolicies, apply_policy, parse_policy,
)
from lightwire.services.gateway.protocol import ChatMessage

TYPES = frozenset({"arith"})
CALL = {"id": "call_0", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "2 + 3"}'}}
DEMO = [{"role": "user", "content": "2 and 3?"}, {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_0", "content": "5"}, {"role": "assistant", "content": "Answer: 5"}]


def policy_event(version=1, mode="keep", system="", demos=(DEMO,), serving=True, task_type="arith") -> events_pb2.PromptPolicy:
    return events_pb2.PromptPolicy(task_type=task_type, version=version, system_mode=mode, system=system, serving=serving,
                                   demonstrations=[events_pb2.Demonstration(messages_json=json.dumps(d)) for d in demos])


def msgs(*docs) -> list[ChatMessage]:
    return [ChatMessage.model_validate(d) for d in docs]


def dump(messages) -> list[dict]:
    return [m.model_dump(exclude_none=True) for m in messages]


def test_demonstrations_go_after_the_system_message_and_before_the_conversation():
    agent = msgs({"role": "system", "content": "Be brief."}, {"role": "user", "content": "7 times 6?"})
    shaped = dump(apply_policy(agent, parse_policy(policy_event(), TYPES)))
    assert shaped[0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in shaped] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert shaped[2]["tool_calls"] == [CALL] and shaped[3]["tool_call_id"] == "call_0"
    assert shaped[-1] == {"role": "user", "content": "7 times 6?"}


def test_without_a_system_message_the_demonstrations_come_first():
    agent = msgs({"role": "user", "content": "7 times 6?"})
    shaped = dump(apply_policy(agent, parse_policy(policy_event(), TYPES)))
    assert [m["role"] for m in shaped] == ["user", "assistant", "tool", "assistant", "user"]
    assert shaped[0]["content"] == "2 and 3?"


@pytest.mark.parametrize("agent_system, mode, expected", [
    ("Be brief.", "replace", "Use the calculator."),
    (None, "replace", "Use the calculator."),
    ("Be brief.", "extend", "Be brief.\n\nUse the calculator."),
    (None, "extend", "Use the calculator."),
    ("Be brief.", "keep", "Be brief."),
])
def test_system_modes(agent_system, mode, expected):
    agent = msgs(*([{"role": "system", "content": agent_system}] if agent_system else []), {"role": "user", "content": "q"})
    shaped = dump(apply_policy(agent, parse_policy(policy_event(mode=mode, system="Use the calculator.", demos=()), TYPES)))
    assert shaped[0] == {"role": "system", "content": expected}
    assert shaped[1:] == [{"role": "user", "content": "q"}]


def test_replace_folds_several_leading_system_messages_into_one():
    agent = msgs({"role": "system", "content": "a"}, {"role": "developer", "content": "b"}, {"role": "user", "content": "q"})
    shaped = dump(apply_policy(agent, parse_policy(policy_event(mode="replace", system="new", demos=()), TYPES)))
    assert shaped == [{"role": "system", "content": "new"}, {"role": "user", "content": "q"}]


def test_later_turns_of_a_multi_turn_exchange_are_untouched():
    agent = msgs({"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                 {"role": "assistant", "content": "", "tool_calls": [CALL]}, {"role": "tool", "tool_call_id": "call_0", "content": "5"})
    shaped = dump(apply_policy(agent, parse_policy(policy_event(), TYPES)))
    assert shaped[-3:] == dump(agent[1:])
    assert len(shaped) == len(agent) + len(DEMO)
    # A system message later in the conversation is the agent's, not a leading one to edit.
    late = msgs({"role": "user", "content": "q"}, {"role": "system", "content": "later"})
    assert dump(apply_policy(late, parse_policy(policy_event(mode="replace", system="new", demos=()), TYPES)))[-1] == \
        {"role": "system", "content": "later"}


def test_content_parts_in_the_system_message_are_extended_as_text():
    agent = msgs({"role": "system", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]},
                 {"role": "user", "content": "q"})
    shaped = apply_policy(agent, parse_policy(policy_event(mode="extend", system="More.", demos=()), TYPES))
    assert shaped[0].text() == "Be brief.\n\nMore."


@pytest.mark.parametrize("event, reason", [
    (policy_event(task_type="sql"), "unknown task type 'sql'"),
    (policy_event(task_type=""), "unknown task type ''"),
    (policy_event(version=0), "version must be 1 or more"),
    (policy_event(mode="prepend", system="x"), "system_mode must be one of"),
    (policy_event(mode="replace", system=" "), "needs a non-empty system text"),
    (policy_event(demos=([],)), "non-empty JSON list"),
    (policy_event(demos=([{"role": "narrator", "content": "x"}],)), "not an OpenAI chat message"),
    (policy_event(demos=([{"role": "system", "content": "x"}],)), "holds a system message"),
])
def test_bad_policies_are_refused_with_the_reason(event, reason):
    with pytest.raises(InvalidPolicy, match=reason):
        parse_policy(event, TYPES)


def test_demonstrations_that_are_not_json_are_refused():
    event = policy_event(demos=())
    event.demonstrations.add(messages_json="[{not json")
    with pytest.raises(InvalidPolicy, match="is not JSON"):
        parse_policy(event, TYPES)


def test_no_task_types_means_prompt_policies_are_off():
    with pytest.raises(InvalidPolicy, match="off on this gateway"):
        parse_policy(policy_event(), frozenset())


def task(task_type="arith", **metadata) -> events_pb2.Task:
    return events_pb2.Task(task_type=task_type, metadata=metadata)


def test_the_newest_serving_version_is_served_and_candidates_only_when_asked_for():
    store = PromptPolicies(TYPES)
    assert store.choose(task()) is None
    store.add(policy_event(version=1))
    store.add(policy_event(version=3, serving=False))
    store.add(policy_event(version=2))
    assert store.choose(task()).version == 2
    assert store.choose(task(**{VERSION_KEY: "3"})).version == 3
    assert store.choose(task(**{VERSION_KEY: "0"})) is None
    assert store.choose(task(**{VERSION_KEY: "9"})) is None  # not read yet: the agent's own messages
    assert store.choose(task(**{VERSION_KEY: "three"})) is None
    assert store.choose(task("other")) is None
    assert store.loaded() == {"arith": [1, 2, 3]} and store.serving() == {"arith": 2}
    store.add(policy_event(version=3, serving=True))  # the chosen candidate, announced again as serving
    assert store.choose(task()).version == 3
