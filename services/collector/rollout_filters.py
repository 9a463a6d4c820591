"""The rollouts table of the read API: URL query parameters checked once, turned into bound SQL.

A filter's value never becomes SQL text: each known parameter adds a fixed clause with a bound parameter, the sort
column is looked up by name in `SORTS`, and anything else is refused with a message saying what is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

STATUSES = ("succeeded", "failed", "timed_out", "cancelled", "unspecified")
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000

# Sort name -> the expression (an alias of ROLLOUT_PAGE's select list).
SORTS = {
    "finished": "finished_ms", "reward": "reward", "calls": "calls", "errors": "errors", "duration": "duration_ms",
    "version": "version", "status": "status", "task": "task_id", "split": "split", "agent": "agent", "id": "rollout_id",
}

_FROM = """
    FROM (SELECT rollout_id, task_id, group_id, task_type, split, status, reward, num_calls, num_errors,
                 min_model_version, max_model_version, finished_at FROM rollouts FINAL) AS r
    LEFT JOIN (SELECT rollout_id, worker_id, started_at FROM rollout_starts FINAL) AS s ON s.rollout_id = r.rollout_id"""

ROLLOUT_PAGE = """
    SELECT r.rollout_id AS rollout_id, r.task_id AS task_id, r.task_type AS task_type, r.group_id AS group_id,
           r.split AS split, r.status AS status, r.reward AS reward, r.num_calls AS calls, r.num_errors AS errors,
           r.min_model_version AS min_version, r.max_model_version AS version,
           toUnixTimestamp64Milli(r.finished_at) AS finished_ms, toUnixTimestamp64Milli(s.started_at) AS started_ms,
           s.worker_id AS agent, finished_ms - started_ms AS duration_ms""" + _FROM + """
    WHERE __WHERE__ ORDER BY __ORDER__ LIMIT {limit:UInt32} OFFSET {offset:UInt32} SETTINGS join_use_nulls = 1"""

ROLLOUT_COUNT = "SELECT count() AS total" + _FROM + " WHERE __WHERE__ SETTINGS join_use_nulls = 1"


class FilterError(ValueError):
    """A query parameter the rollouts table cannot take; the message says why and what it accepts."""


@dataclass(frozen=True)
class RolloutQuery:
    where: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    sort: str = "finished"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def page_sql(self) -> tuple[str, dict]:
        direction = "DESC" if self.descending else "ASC"
        # Nulls (a rollout whose start was not recorded has no duration or agent) go last either way.
        order = f"{SORTS[self.sort]} {direction} NULLS LAST, rollout_id {direction}"
        sql = ROLLOUT_PAGE.replace("__WHERE__", self._where()).replace("__ORDER__", order)
        return sql, {**self.params, "limit": self.limit, "offset": self.offset}

    def count_sql(self) -> tuple[str, dict]:
        return ROLLOUT_COUNT.replace("__WHERE__", self._where()), dict(self.params)

    def _where(self) -> str:
        return " AND ".join(self.where) or "1"


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FilterError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise FilterError(f"{name} must be a finite number, got {raw!r}")
    return value


def whole_number(name: str, raw: str, low: int, high: int) -> int:
    """A URL parameter as a whole number in [low, high], or a FilterError saying what it takes."""
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise FilterError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _text(name: str, raw: str) -> str:
    if len(raw) > 200:
        raise FilterError(f"{name} is longer than 200 characters")
    return raw


def parse(query: Mapping[str, str]) -> RolloutQuery:
    """The rollouts table's parameters (all optional): status (comma list), split, task, agent, q (rollout id),
    group, version, min_reward, max_reward, errors (yes|no), sort, order (asc|desc), limit, offset."""
    unknown = sorted(set(query) - set(_CLAUSES) - {"sort", "order", "limit", "offset"})
    if unknown:
        known = ", ".join(sorted(set(_CLAUSES) | {"sort", "order", "limit", "offset"}))
        raise FilterError(f"unknown filter {', '.join(map(repr, unknown))}; the rollouts table takes {known}")
    where: list[str] = []
    params: dict = {}
    for name, raw in query.items():
        if name in _CLAUSES and raw.strip():
            clause, value = _CLAUSES[name](name, raw.strip())
            where.append(clause)
            params[name] = value
    sort = query.get("sort", "finished") or "finished"
    if sort not in SORTS:
        raise FilterError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    order = (query.get("order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise FilterError(f"order must be asc or desc, got {order!r}")
    limit = whole_number("limit", query["limit"], 1, MAX_LIMIT) if query.get("limit") else 50
    offset = whole_number("offset", query["offset"], 0, MAX_OFFSET) if query.get("offset") else 0
    if "min_reward" in params and "max_reward" in params and params["min_reward"] > params["max_reward"]:
        raise FilterError(f"min_reward ({params['min_reward']}) is above max_reward ({params['max_reward']})")
    return RolloutQuery(tuple(where), params, sort, order == "desc", limit, offset)


def _status(name: str, raw: str) -> tuple[str, list[str]]:
    wanted = [s.strip().lower() for s in raw.split(",") if s.strip()]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise FilterError(f"status must be one or more of {', '.join(STATUSES)} (comma separated), got {', '.join(map(repr, bad))}")
    return "r.status IN {status:Array(String)}", wanted


def _errors(name: str, raw: str) -> tuple[str, int]:
    if raw.lower() not in ("yes", "no"):
        raise FilterError(f"errors must be yes or no, got {raw!r}")
    # The clause is chosen by the value, the value itself stays a bound parameter of both.
    return ("r.num_errors >= {errors:UInt32}" if raw.lower() == "yes" else "r.num_errors < {errors:UInt32}"), 1


_CLAUSES = {
    "status": _status,
    "split": lambda n, v: ("r.split = {split:String}", _text(n, v)),
    "group": lambda n, v: ("r.group_id = {group:String}", _text(n, v)),
    "task": lambda n, v: ("(positionCaseInsensitive(r.task_id, {task:String}) > 0 "
                          "OR positionCaseInsensitive(r.task_type, {task:String}) > 0)", _text(n, v)),
    "agent": lambda n, v: ("positionCaseInsensitive(ifNull(s.worker_id, ''), {agent:String}) > 0", _text(n, v)),
    "q": lambda n, v: ("positionCaseInsensitive(r.rollout_id, {q:String}) > 0", _text(n, v)),
    "version": lambda n, v: ("{version:Int64} BETWEEN r.min_model_version AND r.max_model_version",
                             whole_number(n, v, 0, 2**62)),
    "min_reward": lambda n, v: ("r.reward >= {min_reward:Float64}", _number(n, v)),
    "max_reward": lambda n, v: ("r.reward <= {max_reward:Float64}", _number(n, v)),
    "errors": _errors,
}
