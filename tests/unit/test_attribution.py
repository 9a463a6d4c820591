"""Each attributor on a hand-built rollout: the class, the step it is attached to, the evidence."""

import json

import pytest

from lightwire.v1 import events_pb2 as pb
from lightwire.services.reward import attribution as at
from lightwire.error_classes import TAXONOMY
from lightwire.plugins.interface import attribute_all
from lightwire.plugins.registry import UnknownPlugin, available_attributors, load_attributor
from lightwire.plugins.rollout_view import rollout_view_from_events


def call(seq, text="ok", tool_calls="", parse_error=False, error_class="", status=200, message="", agent="",
         finish="stop", completion_tokens=1, prompt_tokens=10):
    return pb.LlmCall(rollout_id="r", call_id=f"r/{seq}", seq=seq, http_status=status, error_class=error_class, error_message=message,
                      agent_name=agent, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                      completions=[pb.Completion(text=text, tool_calls_json=tool_calls, tool_call_parse_error=parse_error,
                                                 finish_reason=finish)])


def view(calls=(), spans=(), status=pb.ROLLOUT_STATUS_SUCCEEDED, error=None, timed_out=False):
    finished = pb.RolloutFinished(rollout_id="r", status=status, num_calls=len(calls))
    if error is not None:
        finished.error.CopyFrom(error)
    return rollout_view_from_events(list(calls), list(spans), finished, timed_out)


def classes(found):
    return [(a.error_class, a.step) for a in found]


def tool_call(name, arguments, call_id="c1"):
    return json.dumps([{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}])


def test_the_view_orders_calls_by_seq_and_knows_its_rollout():
    v = rollout_view_from_events([call(2), call(1)], [], None, False)
    assert [c.seq for c in v.calls] == [1, 2] and v.rollout_id == "r" and v.status == pb.ROLLOUT_STATUS_UNSPECIFIED
    assert rollout_view_from_events([], [], None, True).status == pb.ROLLOUT_STATUS_TIMED_OUT


def test_upstream_errors_from_the_error_class_or_a_5xx():
    v = view([call(1), call(2, error_class="upstream_error", status=502, message="bad gateway"), call(3, status=500),
              call(4, status=504, error_class="timeout"), call(5, status=400)])
    found = at.upstream_errors(v)
    assert classes(found) == [("upstream_error", 2), ("upstream_error", 3)]
    assert found[0].message == "bad gateway" and found[1].message == "HTTP 500" and found[0].attributor == "upstream_errors"


def test_timeouts_of_a_call_or_of_the_whole_rollout():
    v = view([call(1), call(2), call(3, status=504, error_class="timeout")])
    assert classes(at.timeouts(v)) == [("timeout", 3)]
    # The rollout timed out after its second call: attached to the last call made.
    assert classes(at.timeouts(view([call(1), call(2)], timed_out=True))) == [("timeout", 2)]
    # ... and before any call: step 0.
    assert classes(at.timeouts(view([], timed_out=True))) == [("timeout", 0)]


def test_tool_exception_is_attached_after_the_call_that_asked_for_the_tool():
    span = pb.AgentSpan(rollout_id="r", kind="tool", name="calculator", after_seq=2,
                        error=pb.ErrorInfo(type="ZeroDivisionError", message="division by zero", stack="Traceback..."))
    ok = pb.AgentSpan(rollout_id="r", kind="tool", name="calculator", after_seq=1)
    [a] = at.tool_exceptions(view([call(1), call(2), call(3)], [ok, span]))
    assert (a.error_class, a.step, a.stack) == ("tool_exception", 2, "Traceback...")
    assert a.message == "calculator: ZeroDivisionError: division by zero"


def test_a_tool_error_reported_only_at_finish_is_still_a_tool_exception():
    error = pb.ErrorInfo(type="ValueError", message="bad input", error_class="tool_exception")
    assert classes(at.tool_exceptions(view([call(1)], status=pb.ROLLOUT_STATUS_FAILED, error=error))) == [("tool_exception", 1)]


def test_invalid_tool_json_from_a_parse_flag_or_bad_arguments():
    v = view([call(1, parse_error=True), call(2, tool_calls=tool_call("calc", "{oops")), call(3, tool_calls=tool_call("calc", '{"x": 1}')),
              call(4, tool_calls='{"not": "a list"}'), call(5, tool_calls=tool_call("calc", {"x": 1}))])
    # 1: flagged by the gateway; 2: arguments do not parse; 3: fine; 4: not a list; 5: already-parsed arguments are fine
    assert classes(at.invalid_tool_json(v)) == [("invalid_tool_json", 1), ("invalid_tool_json", 2), ("invalid_tool_json", 4)]


def test_syntax_errors_in_generated_code():
    good = "```python\nprint(1 + 1)\n```"
    bad = "Here:\n```python\ndef f(:\n    pass\n```"
    not_python = "```bash\nls -la (\n```"
    [a] = at.code_syntax_errors(view([call(1, good), call(2, bad), call(3, not_python)]))
    assert (a.error_class, a.step) == ("code_syntax_error", 2) and a.message.startswith("line 1:")
    assert a.stack == "def f(:\n    pass\n"  # the offending block is the evidence


def test_three_identical_calls_in_a_row_are_a_loop():
    v = view([call(1, "search"), call(2, "search"), call(3, "search"), call(4, "search"), call(5, "other")])
    assert classes(at.loops(v)) == [("loop", 3)]  # one loop, attached where the 3rd repetition happened
    assert at.loops(view([call(1, "a"), call(2, "b"), call(3, "a")])) == []
    # k is a parameter: with k=2 the run 1..4 is reported once, at seq 2
    assert classes(at.loops(v, repeats=2)) == [("loop", 2)]


def test_repeated_tool_calls_are_a_loop_even_with_fresh_call_ids():
    calls = [call(s, "", tool_calls=tool_call("search", '{"q": "x"}', call_id=f"id{s}")) for s in (1, 2, 3)]
    assert classes(at.loops(view(calls))) == [("loop", 3)]


def test_failed_calls_do_not_make_a_loop():
    # Three upstream failures with empty text are the server's problem, not the policy repeating itself.
    v = view([call(s, "", status=502, error_class="upstream_error") for s in (1, 2, 3)])
    assert at.loops(v) == []


def test_context_overflow():
    v = view([call(1, status=400, message="prompt is longer than the maximum context length (2048)"),
              call(2, status=400, message="bad temperature"),
              call(3, error_class="context_overflow", status=400),
              call(4, finish="length", completion_tokens=0, prompt_tokens=2048),  # the prompt filled the window
              call(5, finish="length", completion_tokens=64)])  # hit max_tokens: not an overflow
    found = at.context_overflow(v)
    assert classes(found) == [("context_overflow", 1), ("context_overflow", 3), ("context_overflow", 4)]
    assert found[2].message == "prompt of 2048 tokens left no room"


def test_agent_crash_from_a_failed_finish_but_not_from_a_tool_error():
    crash = pb.ErrorInfo(type="KeyError", message="'answer'", stack="Traceback...")
    [a] = at.agent_crash(view([call(1), call(2)], status=pb.ROLLOUT_STATUS_FAILED, error=crash))
    assert (a.error_class, a.step, a.message, a.stack) == ("agent_crash", 2, "KeyError: 'answer'", "Traceback...")
    tool = pb.ErrorInfo(type="ValueError", message="x", error_class="tool_exception")
    assert at.agent_crash(view([call(1)], status=pb.ROLLOUT_STATUS_FAILED, error=tool)) == []
    # A succeeded rollout did not crash, whatever it reported along the way.
    recovered = pb.AgentSpan(kind="error", name="retry", after_seq=1, error=pb.ErrorInfo(type="RuntimeError", message="flaky"))
    assert at.agent_crash(view([call(1), call(2)], [recovered])) == []


def test_a_crash_reported_as_a_span_and_at_finish_counts_once_at_the_spans_step():
    error = pb.ErrorInfo(type="RuntimeError", message="planner died", stack="tb")
    span = pb.AgentSpan(kind="agent", name="planner", after_seq=1, error=error)
    found = at.agent_crash(view([call(1), call(2)], [span], status=pb.ROLLOUT_STATUS_FAILED, error=error))
    assert classes(found) == [("agent_crash", 1)]
    # Failed with no error at all: still a crash, at the last call.
    assert classes(at.agent_crash(view([call(1)], status=pb.ROLLOUT_STATUS_FAILED))) == [("agent_crash", 1)]


def test_attribute_all_deduplicates_and_orders_by_step():
    v = view([call(1, "a"), call(2, "a"), call(3, "a"), call(4, "b", status=502, error_class="upstream_error")])
    found = attribute_all(v, [at.upstream_errors, load_attributor("loops"), at.upstream_errors])
    assert classes(found) == [("loop", 3), ("upstream_error", 4)]
    with pytest.raises(UnknownPlugin, match="available"):
        load_attributor("no_such_attributor")


def test_every_attributor_returns_only_taxonomy_classes_on_a_bad_rollout():
    error = pb.ErrorInfo(type="E", message="m")
    v = view([call(1, "```python\n(\n```", parse_error=True, status=500), call(2, finish="length", completion_tokens=0)],
             [pb.AgentSpan(kind="tool", name="t", after_seq=1, error=error)], status=pb.ROLLOUT_STATUS_FAILED, error=error, timed_out=True)
    found = attribute_all(v, [load_attributor(name) for name in available_attributors()])
    assert {a.error_class for a in found} <= set(TAXONOMY)
    assert {a.error_class for a in found} >= {"upstream_error", "timeout", "tool_exception", "invalid_tool_json",
                                               "code_syntax_error", "context_overflow"}
