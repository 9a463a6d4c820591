"""The rollouts table's URL parameters: checked once, and a value never becomes SQL text."""

import pytest

from lightwire.services.collector.rollout_filters import MAX_LIMIT, FilterError, parse


def test_no_parameters_is_the_newest_first_page():
    query = parse({})
    sql, params = query.page_sql()
    assert (query.sort, query.descending, query.limit, query.offset) == ("finished", True, 50, 0)
    assert "WHERE 1 ORDER BY finished_ms DESC NULLS LAST" in sql
    assert params == {"limit": 50, "offset": 0}


def test_each_filter_is_a_fixed_clause_with_a_bound_value():
    hostile = "x' OR 1=1 --"
    query = parse({"status": "failed,timed_out", "split": "eval", "task": hostile, "agent": "vm", "q": "r-1",
                   "version": "3", "min_reward": "0.5", "max_reward": "1", "errors": "yes", "sort": "reward", "order": "asc",
                   "limit": "20", "offset": "40"})
    sql, params = query.page_sql()
    count_sql, count_params = query.count_sql()
    assert hostile not in sql and hostile not in count_sql
    assert params == {"status": ["failed", "timed_out"], "split": "eval", "task": hostile, "agent": "vm", "q": "r-1",
                      "version": 3, "min_reward": 0.5, "max_reward": 1.0, "errors": 1, "limit": 20, "offset": 40}
    assert count_params == {k: v for k, v in params.items() if k not in ("limit", "offset")}
    for clause in ("r.status IN {status:Array(String)}", "r.split = {split:String}", "{version:Int64} BETWEEN",
                   "r.reward >= {min_reward:Float64}", "r.num_errors >= {errors:UInt32}"):
        assert clause in sql and clause in count_sql
    assert "ORDER BY reward ASC NULLS LAST, rollout_id ASC" in sql


def test_blank_values_filter_nothing():
    assert parse({"status": "", "task": "  "}).where == ()


@pytest.mark.parametrize(("query", "message"), [
    ({"min_reward": "lots"}, "min_reward must be a number, got 'lots'"),
    ({"min_reward": "nan"}, "min_reward must be a finite number"),
    ({"status": "done"}, "status must be one or more of succeeded"),
    ({"sort": "nope"}, "sort must be one of finished"),
    ({"sort": "reward; DROP TABLE rollouts"}, "sort must be one of"),
    ({"order": "sideways"}, "order must be asc or desc"),
    ({"limit": "0"}, f"limit must be between 1 and {MAX_LIMIT}"),
    ({"limit": "1e9"}, "limit must be a whole number"),
    ({"offset": "-1"}, "offset must be between 0"),
    ({"version": "2**70"}, "version must be a whole number"),
    ({"errors": "maybe"}, "errors must be yes or no"),
    ({"task": "t" * 201}, "task is longer than 200 characters"),
    ({"min_reward": "2", "max_reward": "1"}, "min_reward (2.0) is above max_reward (1.0)"),
    ({"colour": "red"}, "unknown filter 'colour'; the rollouts table takes"),
])
def test_a_bad_parameter_is_refused_with_what_is_accepted(query, message):
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        parse(query)
