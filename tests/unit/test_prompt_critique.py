import json

from lightwire.tools.prompts.candidates import Candidate
from lightwire.tools.prompts.critique import (
    MAX_INSTRUCTIONS, Failure, critique_messages, failure_from_rollout, keep_beam, parse_instructions, system_of,
)

CALL = {"id": "c0", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "6 +"}'}}


def detail(reply: dict, errors=()) -> dict:
    messages = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "6 and 7?"}]
    call = {"http_status": 200, "request_json": json.dumps({"messages": messages}),
            "response_json": json.dumps({"choices": [{"message": reply}]})}
    return {"calls": [call, {**call, "http_status": 500}], "errors": list(errors)}


def test_a_failure_shows_the_question_the_last_reply_and_the_attributed_errors():
    d = detail({"role": "assistant", "content": "", "tool_calls": [CALL]}, [{"error_class": "tool_exception", "message": "bad syntax"}])
    f = failure_from_rollout(d, 0.0)
    assert f == Failure("6 and 7?", '[tool call: [{"name": "calculator", "arguments": "{\\"expression\\": \\"6 +\\"}"}]]',
                        ("tool_exception: bad syntax",), 0.0)
    assert system_of(d) == "Solve it."
    assert failure_from_rollout({"calls": [], "errors": []}, 0.0) is None
    assert system_of({"calls": [{"request_json": json.dumps({"messages": [{"role": "user", "content": "q"}]})}]}) == ""


def test_the_critic_sees_the_instructions_and_every_failure():
    messages = critique_messages("Solve it.", [Failure("q1", "Answer: 3", (), 0.0), Failure("q2", "", ("loop: again",), 0.0)])
    asked = messages[-1]["content"]
    assert "Solve it." in asked and "Task 1: q1" in asked and "Task 2: q2" in asked and "Errors: loop: again" in asked
    assert "(nothing)" in asked and "<instructions>" in asked


def test_proposals_are_read_from_their_tags_and_refused_when_unusable():
    assert parse_instructions("It guessed.\n<instructions>\nUse the calculator.\n</instructions>", "Solve it.") == "Use the calculator."
    assert parse_instructions("<instructions>Use the calculator, always", "") == "Use the calculator, always"  # cut off
    assert parse_instructions("Use the calculator.", "") is None  # no tags: not a proposal
    assert parse_instructions("<instructions> Solve it. </instructions>", "Solve it.") is None  # unchanged
    assert parse_instructions("<instructions></instructions>", "") is None
    assert parse_instructions(f"<instructions>{'x' * (MAX_INSTRUCTIONS + 1)}</instructions>", "") is None


def test_the_beam_keeps_the_best_scores_ties_to_the_earlier_version():
    a, b, c = Candidate(1, (), {"p": 0.5}), Candidate(2, (), {"p": 1.0}), Candidate(3, (), {"p": 0.5})
    assert [x.version for x in keep_beam([c, a, b], 2)] == [2, 1]
    assert keep_beam([], 2) == []
