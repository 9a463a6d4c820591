"""Each attributor on a hand-built rollout: the class, the step it is attached to, the evidence."""

from lightwire.v1 import events_pb2 as pb
from services.reward import attribution as at
from services.reward.rollout_view import rollout_view


def call(seq, text="ok", tool_calls="", parse_error=False, error_class="", status=200, message="", agent=""):
    return pb.LlmCall(rollout_id="r", call_id=f"r/{seq}", seq=seq, http_status=status, error_class=error_class, error_message=message,
                      agent_name=agent, completions=[pb.Completion(text=text, tool_calls_json=tool_calls, tool_call_parse_error=parse_error)])


def view(calls=(), spans=(), status=pb.ROLLOUT_STATUS_SUCCEEDED, error=None, timed_out=False):
    finished = pb.RolloutFinished(rollout_id="r", status=status, num_calls=len(calls))
    if error is not None:
        finished.error.CopyFrom(error)
    return rollout_view("r", pb.Task(task_type="t"), list(calls), list(spans), [], [], finished, timed_out)


def classes(found):
    return [(a.error_class, a.step) for a in found]


def test_upstream_errors_and_timeouts():
    v = view([call(1), call(2, error_class="upstream_error", status=502, message="bad gateway"), call(3, status=504, error_class="timeout")])
    assert classes(at.upstream_errors(v)) == [("upstream_error", 2)]
    assert classes(at.timeouts(v)) == [("timeout", 3)]
    assert classes(at.timeouts(view([call(1), call(2)], timed_out=True))) == [("timeout", 2)]


def test_tool_exception_is_attached_after_the_call_that_asked_for_the_tool():
    span = pb.AgentSpan(rollout_id="r", kind="tool", name="calculator", after_seq=2,
                        error=pb.ErrorInfo(type="ZeroDivisionError", message="division by zero", stack="Traceback..."))
    [a] = at.tool_exceptions(view([call(1), call(2)], [span]))
    assert (a.error_class, a.step, a.stack) == ("tool_exception", 2, "Traceback...")
    assert "ZeroDivisionError: division by zero" in a.message


def test_invalid_tool_json_from_a_parse_flag_or_bad_arguments():
    bad_args = '[{"id": "c", "type": "function", "function": {"name": "calc", "arguments": "{oops"}}]'
    good_args = '[{"id": "c", "type": "function", "function": {"name": "calc", "arguments": "{\\"x\\": 1}"}}]'
    v = view([call(1, parse_error=True), call(2, tool_calls=bad_args), call(3, tool_calls=good_args)])
    assert classes(at.invalid_tool_json(v)) == [("invalid_tool_json", 1), ("invalid_tool_json", 2)]


def test_syntax_errors_in_generated_code():
    good = "```python\nprint(1 + 1)\n```"
    bad = "Here:\n```python\ndef f(:\n    pass\n```"
    [a] = at.code_syntax_errors(view([call(1, good), call(2, bad)]))
    assert (a.error_class, a.step) == ("code_syntax_error", 2) and "line 1" in a.message


def test_three_identical_calls_in_a_row_are_a_loop():
    v = view([call(1, "search"), call(2, "search"), call(3, "search"), call(4, "search"), call(5, "other")])
    assert classes(at.loops(v)) == [("loop", 3)]
    assert at.loops(view([call(1, "a"), call(2, "b"), call(3, "a")])) == []


def test_context_overflow():
    v = view([call(1, status=400, message="prompt is longer than the maximum context length (2048)"), call(2, status=400, message="bad temperature")])
    assert classes(at.context_overflow(v)) == [("context_overflow", 1)]


def test_agent_crash_from_a_failed_finish_but_not_from_a_tool_error():
    crash = pb.ErrorInfo(type="KeyError", message="'answer'", stack="Traceback...")
    assert classes(at.agent_crash(view([call(1), call(2)], status=pb.ROLLOUT_STATUS_FAILED, error=crash))) == [("agent_crash", 2)]
    tool = pb.ErrorInfo(type="ValueError", message="x", error_class="tool_exception")
    assert at.agent_crash(view([call(1)], status=pb.ROLLOUT_STATUS_FAILED, error=tool)) == []


def test_attribute_all_deduplicates_and_orders_by_step():
    v = view([call(1, "a"), call(2, "a"), call(3, "a", status=502, error_class="upstream_error")])
    found = at.attribute_all(v, [at.loops, at.upstream_errors, at.upstream_errors])
    assert classes(found) == [("loop", 3), ("upstream_error", 3)]
