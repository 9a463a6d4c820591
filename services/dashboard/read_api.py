"""The dashboard's one way to the data: the collector's read API (HTTP), and the live health of inference and trainer.

The dashboard never opens the analytics itself: in embedded mode chDB belongs to the collector process. Answers the
collector gives for bad input (400, 404) pass through with their messages; one that does not come is an
`UpstreamError` saying which service did not answer, never a traceback.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx

from lightwire.runtime.api_keys import bearer_header
from lightwire.services.dashboard.settings import DashboardSettings


class UpstreamError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class ReadApi:
    def __init__(self, settings: DashboardSettings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        # The read API takes the gateway's keys: the dashboard presents the first one it was given.
        self.collector = httpx.AsyncClient(base_url=settings.dashboard_collector_url.rstrip("/"), headers=bearer_header(settings.api_keys),
                                           timeout=settings.dashboard_upstream_timeout_s, transport=transport)
        self.probes = httpx.AsyncClient(timeout=settings.dashboard_probe_timeout_s, transport=transport)

    async def close(self) -> None:
        await self.collector.aclose()
        await self.probes.aclose()

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        where = self.settings.dashboard_collector_url
        try:
            response = await self.collector.get(path, params=params)
        except httpx.HTTPError as exc:
            raise UpstreamError(503, "collector_unavailable",
                                f"the collector's read API at {where} did not answer ({type(exc).__name__}); "
                                "is the collector running?") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        error = (body or {}).get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else f"the collector answered {response.status_code}"
        kind = error.get("type", "collector_error") if isinstance(error, dict) else "collector_error"
        if response.status_code in (400, 404):
            raise UpstreamError(response.status_code, kind, message)
        if response.status_code == 401:
            raise UpstreamError(503, "collector_unauthorized",
                                "the collector's read API refused the dashboard's key: give both the same LW_API_KEYS")
        raise UpstreamError(503, kind, message)

    async def rollout(self, rollout_id: str) -> dict[str, Any]:
        return await self.get(f"/api/rollouts/{quote(rollout_id, safe='')}")

    async def live(self) -> dict[str, Any]:
        """What inference serves and where the trainer is, asked now; a replica that does not answer says so."""
        urls = list(self.settings.dashboard_inference_urls)
        trainer = self.settings.dashboard_trainer_url
        answers = await asyncio.gather(*(self._probe(u) for u in urls), self._probe(trainer) if trainer else _none())
        replicas = [{"url": u, **a} for u, a in zip(urls, answers[:-1])]
        return {"inference": replicas, "trainer": {"url": trainer, **answers[-1]} if trainer else None}

    async def _probe(self, base: str) -> dict[str, Any]:
        try:
            response = await self.probes.get(base.rstrip("/") + "/healthz")
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return {"up": False}
        return {"up": response.status_code == 200, **{k: body.get(k) for k in ("model", "model_version", "version", "step",
                                                                               "batches_done", "skipped", "dropped_stale")
                                                      if k in body}}


async def _none() -> dict:
    return {}
