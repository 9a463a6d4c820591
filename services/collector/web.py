"""The collector's HTTP face (Faust web): /healthz, /metrics and the read API over the analytics.

In embedded mode the collector is the one process that may open chDB, so everything that reads the analytics (the
dashboard, `lightwire status`, tests) reads through these routes. Each answers JSON; a bad parameter is a 400 and
an unknown rollout a 404, each with a message; a failed query is logged here and answered without its traceback.
With LW_API_KEYS set, /api/* takes the same bearer keys as the gateway (/healthz and /metrics stay open for
health checks and scrapers).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lightwire.answer_format import ANSWER_LINE
from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.collector import queries
from lightwire.services.collector.packed_tokens import unpack_call
from lightwire.services.collector.rollout_filters import FilterError, parse, whole_number

log = logging.getLogger(__name__)


def _value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # a standard deviation of one sample; JSON has no NaN
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_value(x) for x in v]
    return v


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _value(v) for k, v in row.items()} for row in rows]


def _rollout_partitions(collector) -> list[int]:
    """Partitions of the rollout topic this instance owns now, none while rebalancing (benchmarks wait on it)."""
    app = collector.app
    if app.rebalancing:
        return []
    topic = collector.rollout_topic.get_topic_name()
    return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)


def _error(web, status: int, kind: str, message: str):
    return web.json({"error": {"message": message, "type": kind}}, status=status)


def _bounded_int(request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name, "")
    return whole_number(name, raw, 1, high) if raw else default


def register_views(collector) -> None:
    app, writer = collector.app, collector.writer
    keys = ApiKeys(collector.settings.api_keys)

    async def run(named: dict[str, str], params: dict | None = None) -> dict[str, list[dict[str, Any]]]:
        # One after another on the writer's thread: chDB takes one statement at a time anyway.
        return {name: _jsonable(await writer.query(sql, params)) for name, sql in named.items()}

    def read_api(handler):
        """Keys checked, bad input answered 400, and a failure answered with a message, never a traceback."""

        @functools.wraps(handler)
        async def guarded(web, request, **kwargs):
            if not keys.allows(request.headers.get("Authorization")):
                return _error(web, 401, "unauthorized", "this read API needs an API key: Authorization: Bearer <key>")
            try:
                return await handler(web, request, **kwargs)
            except FilterError as exc:
                return _error(web, 400, "invalid_filter", str(exc))
            except Exception as exc:
                log.exception("read API query failed", extra={"path": request.path})
                return _error(web, 500, "query_failed", f"the analytics query failed ({type(exc).__name__}); see the collector's log")

        return guarded

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({
            "status": "ok",
            "app_id": collector.settings.app_id(),
            "released": collector.rollouts.released,
            "pending": len(collector.rollouts.deadlines),
            "batches": collector.groups.batches,
            "groups": dict(collector.groups.outcomes),
            "rollout_partitions": _rollout_partitions(collector),
        })

    @app.page("/metrics")
    async def metrics(web, request):
        # aiohttp refuses a charset inside content_type; Prometheus reads text/plain as UTF-8 anyway.
        return web.bytes(generate_latest(collector.metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    def named_queries(path: str, named: dict[str, str], limit: tuple[int, int] | None = None,
                      fixed: dict[str, Any] | None = None) -> None:
        """A route answering a dict of named queries; `limit` (default, highest) bounds the rows of each; `fixed`
        parameters are the same on every request."""

        async def handler(web, request):
            params = {**(fixed or {}), **({"limit": _bounded_int(request, "limit", *limit)} if limit else {})} or None
            return web.json(await run(named, params))

        handler.__name__ = path.strip("/").replace("/", "_")  # Faust names a page's view after its function
        app.page(path)(read_api(handler))

    named_queries("/api/summary", queries.SUMMARY)
    named_queries("/api/overview", queries.OVERVIEW)
    named_queries("/api/training", queries.TRAINING, limit=(500, 5000))
    named_queries("/api/errors", queries.ERRORS)
    named_queries("/api/behaviour", queries.BEHAVIOUR, fixed={"answer_line": f"(?i){ANSWER_LINE}"})
    named_queries("/api/feedback", queries.FEEDBACK, limit=(200, 1000))

    @app.page("/api/counts")
    @read_api
    async def counts(web, request):
        return web.json({name: rows[0] for name, rows in (await run(queries.COUNTS)).items()})

    @app.page("/api/rollouts")
    @read_api
    async def rollouts(web, request):
        query = parse(dict(request.query))
        page_sql, page_params = query.page_sql()
        count_sql, count_params = query.count_sql()
        rows = _jsonable(await writer.query(page_sql, page_params))
        total = (await writer.query(count_sql, count_params))[0]["total"]
        return web.json({"rows": rows, "total": total, "limit": query.limit, "offset": query.offset,
                         "sort": query.sort, "order": "desc" if query.descending else "asc"})

    @app.page("/api/rollouts/{rollout_id}")
    @read_api
    async def rollout(web, request, rollout_id):
        if len(rollout_id) > 500:
            return _error(web, 404, "not_found", "no rollout with an id that long in the analytics")
        found = await run(queries.ROLLOUT, {"rollout_id": rollout_id})
        if not found["rollout"] and not found["calls"] and not found["start"]:
            return _error(web, 404, "not_found", f"no rollout {rollout_id!r} in the analytics")
        found["calls"] = [unpack_call(call) for call in found["calls"]]
        return web.json(found)
