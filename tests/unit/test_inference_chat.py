"""Tool-call parsing and tool rendering (pure functions, no model)."""

import json

import pytest

from lightwire.services.inference.chat import (
    TOOLS_SYSTEM_PROMPT,
    ChatTurn,
    _with_tools_system_prompt,
    parse_completion,
    parse_tools_json,
    render_tool_calls,
)
from lightwire.services.inference.engine import InferenceError

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_smollm2_list_format_becomes_openai_tool_calls():
    text = '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}]</tool_call>'
    parsed = parse_completion(text, tools_offered=True, id_prefix="req1_0")
    assert not parsed.parse_error
    assert parsed.content == ""
    assert [c["id"] for c in parsed.tool_calls] == ["call_req1_0_0", "call_req1_0_1"]
    first = parsed.tool_calls[0]
    assert first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"city": "Paris"}


def test_hermes_single_object_blocks_and_surrounding_text():
    text = 'Let me check.\n<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>'
    parsed = parse_completion(text, tools_offered=True)
    assert parsed.content == "Let me check."
    assert json.loads(parsed.tool_calls[0]["function"]["arguments"]) == {"city": "Rome"}


def test_unclosed_block_at_the_end_still_parses():
    parsed = parse_completion('<tool_call>[{"name": "f", "arguments": {}}]', tools_offered=True)
    assert parsed.tool_calls[0]["function"]["name"] == "f"


def test_bare_json_list_is_a_call():
    parsed = parse_completion('[{"name": "f", "arguments": {"x": 1}}]', tools_offered=True)
    assert parsed.tool_calls and not parsed.parse_error


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>[{"name": "f", "arguments": {"x": 1}</tool_call>',  # truncated JSON
        '<tool_call>{"arguments": {}}</tool_call>',  # no name
        '<tool_call>[{"name": "f", "arguments": [1, 2]}]</tool_call>',  # arguments not an object
    ],
)
def test_malformed_call_stays_text_with_parse_error(text):
    parsed = parse_completion(text, tools_offered=True)
    assert parsed.parse_error
    assert parsed.tool_calls == []
    assert parsed.content == text


def test_plain_text_and_no_tools_are_content():
    assert parse_completion("Paris is sunny.", tools_offered=True).tool_calls == []
    tagged = '<tool_call>[{"name": "f", "arguments": {}}]</tool_call>'
    assert parse_completion(tagged, tools_offered=False).content == tagged


def test_empty_call_list_means_no_call():
    parsed = parse_completion("<tool_call>[]</tool_call>", tools_offered=True)
    assert parsed.tool_calls == [] and not parsed.parse_error


def test_tools_rendered_into_system_prompt():
    messages = _with_tools_system_prompt([{"role": "user", "content": "weather?"}], [WEATHER])
    assert messages[0]["role"] == "system"
    assert '"name": "get_weather"' in messages[0]["content"]
    assert messages[0]["content"].startswith(TOOLS_SYSTEM_PROMPT.split("\n")[0])
    merged = _with_tools_system_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}], [WEATHER])
    assert merged[0]["content"].startswith("Be brief.\n\n") and len(merged) == 2


def test_assistant_tool_calls_rendered_back_in_model_format():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    assert render_tool_calls([call]) == '<tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>'
    assert ChatTurn("assistant", tool_calls=(call,)).tool_calls[0]["id"] == "c1"


def test_tools_json_validation():
    assert parse_tools_json("") is None
    assert parse_tools_json(json.dumps([WEATHER]))[0]["function"]["name"] == "get_weather"
    for bad in ("{", '{"a": 1}', '[{"type": "function"}]'):
        with pytest.raises(InferenceError):
            parse_tools_json(bad)
