"""Proto <-> engine conversion: defaults of proto3 zeros, tool calls in the response."""

import json

import pytest

from lightwire.v1 import inference_pb2
from lightwire.services.inference.engine import CompletionOutput, GenerationRequest, GenerationResult, InferenceError, SamplingOptions
from lightwire.services.inference.wire import PreparedRequest, prompt_ids, response, sampling_options


def test_proto_zeros_mean_defaults():
    opts = sampling_options(inference_pb2.SamplingParams(), default_max_tokens=77)
    assert (opts.temperature, opts.top_p, opts.max_tokens, opts.n, opts.seed) == (0.0, 1.0, 77, 1, None)
    seeded = sampling_options(inference_pb2.SamplingParams(temperature=0.5, seed=0, has_seed=True, stop=["x"]), 10)
    assert seeded.seed == 0 and seeded.stop == ("x",)


def test_exactly_one_prompt_form():
    with pytest.raises(InferenceError, match="exactly one"):
        prompt_ids(None, messages=[], prompt="", token_ids=[], tools_json="")
    with pytest.raises(InferenceError, match="exactly one"):
        prompt_ids(None, messages=[], prompt="x", token_ids=[1], tools_json="")


def test_tool_calls_come_back_as_openai_json():
    text = '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'
    result = GenerationResult("m", 3, [1, 2], [CompletionOutput(0, [5, 6], [-0.1, -0.2], "stop", text)])
    prepared = PreparedRequest(GenerationRequest((1, 2), SamplingOptions(), "req-9"), tools_offered=True)
    out = response(result, prepared)
    c = out.completions[0]
    assert out.model_version == 3 and list(out.prompt_token_ids) == [1, 2]
    assert c.finish_reason == "tool_calls" and c.text == "" and not c.tool_call_parse_error
    calls = json.loads(c.tool_calls_json)
    assert calls == [{"id": "call_req-9_0_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]


def test_malformed_tool_call_flags_parse_error():
    text = '<tool_call>[{"name": "get_weather", "arguments": {"city": </tool_call>'
    result = GenerationResult("m", 1, [1], [CompletionOutput(0, [5], [-0.1], "stop", text)])
    out = response(result, PreparedRequest(GenerationRequest((1,), SamplingOptions()), tools_offered=True))
    c = out.completions[0]
    assert c.tool_call_parse_error and c.text == text and c.tool_calls_json == "" and c.finish_reason == "stop"
