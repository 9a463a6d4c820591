"""The collector's HTTP face (Faust web): /healthz, /metrics and the read API over the analytics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lightwire.services.collector.queries import COUNTS, ROLLOUT, SUMMARY


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in rows]


def _rollout_partitions(collector) -> list[int]:
    """Partitions of the rollout topic this instance owns now, none while rebalancing (benchmarks wait on it)."""
    app = collector.app
    if app.rebalancing:
        return []
    topic = collector.rollout_topic.get_topic_name()
    return sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topic)


def register_views(collector) -> None:
    app, writer = collector.app, collector.writer

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({
            "status": "ok",
            "app_id": collector.settings.app_id(),
            "released": collector.rollouts.released,
            "pending": len(collector.rollouts.deadlines),
            "batches": collector.groups.batches,
            "rollout_partitions": _rollout_partitions(collector),
        })

    @app.page("/metrics")
    async def metrics(web, request):
        # aiohttp refuses a charset inside content_type; Prometheus reads text/plain as UTF-8 anyway.
        return web.bytes(generate_latest(collector.metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/summary")
    async def summary(web, request):
        return web.json({name: _jsonable(await writer.query(sql)) for name, sql in SUMMARY.items()})

    @app.page("/api/counts")
    async def counts(web, request):
        return web.json({name: (await writer.query(sql))[0] for name, sql in COUNTS.items()})

    @app.page("/api/rollouts/{rollout_id}")
    async def rollout(web, request, rollout_id):
        params = {"rollout_id": rollout_id}
        found = {name: _jsonable(await writer.query(sql, params)) for name, sql in ROLLOUT.items()}
        if not found["rollout"] and not found["calls"]:
            return web.json({"error": {"message": f"no rollout {rollout_id!r} in the analytics", "type": "not_found"}}, status=404)
        return web.json(found)
