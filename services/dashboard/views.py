"""Each view's figures: asked of the read API, shaped by figures.py and timeline.py. One function per view."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from lightwire.services.dashboard import figures
from lightwire.services.dashboard.read_api import ReadApi
from lightwire.services.dashboard.timeline import Decode, rollout_page

async def overview(api: ReadApi) -> dict[str, Any]:
    found, live = await asyncio.gather(api.get("/api/overview"), api.live())
    totals = found["totals"][0]
    now = totals["now_ms"]
    return {
        "curve": figures.learning_curve(found["reward_by_version"]),
        "calls": figures.rates(found["calls_per_bucket"], "calls", now),
        "call_failures": figures.rates(found["calls_per_bucket"], "failed", now),
        "rollouts": figures.rates(found["rollouts_per_bucket"], "rollouts", now),
        "errors": figures.error_rates(found["errors_by_class"], totals["rollouts"]),
        "served": figures.served_versions(live, found["served_by_gateway"]),
        "trainer": {"live": live.get("trainer"), "latest_step": (found["latest_step"] or [None])[0],
                    "latest_version": (found["latest_version"] or [None])[0]},
        "totals": totals,
    }


async def training(api: ReadApi) -> dict[str, Any]:
    found, behaviour, live = await asyncio.gather(api.get("/api/training"), api.get("/api/behaviour"), api.live())
    steps = found["steps"]
    return {"steps": steps, "batches": found["batches"], "skipped": sum(1 for s in steps if s["skipped"]),
            "trainer": live.get("trainer"), "behaviour": behaviour["by_version"]}


async def rollouts(api: ReadApi, query: Mapping[str, str]) -> dict[str, Any]:
    # Forwarded as given: the collector checks them, and its message names what is wrong and what it takes.
    return await api.get("/api/rollouts", dict(query))


async def rollout(api: ReadApi, rollout_id: str, decode: Decode) -> dict[str, Any]:
    return rollout_page(await api.rollout(rollout_id), decode)


async def errors(api: ReadApi) -> dict[str, Any]:
    found = await api.get("/api/errors")
    return {"matrix": figures.error_matrix(found["by_step"]),
            "by_version": figures.errors_by_version(found["by_version"], found["rollouts_by_version"]),
            "recent": found["recent"]}


async def feedback(api: ReadApi) -> dict[str, Any]:
    return await api.get("/api/feedback")
