"""The collector's analytics sink: batched inserts on one thread (chDB is one process, one writer)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lightwire.analytics.store import AnalyticsStore
from lightwire.services.collector.analytics_rows import TABLE_COLUMNS, RowBuffer

log = logging.getLogger(__name__)


class AnalyticsWriter:
    """Owns the store. Every store call runs on its single worker thread, so reads and writes never interleave."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics")
        self._store: AnalyticsStore | None = None

    async def open(self) -> list[int]:
        def _open() -> list[int]:
            self._store = AnalyticsStore(self.dsn)
            return self._store.migrate()

        applied = await asyncio.get_running_loop().run_in_executor(self._executor, _open)
        log.info("analytics store ready", extra={"dsn": self.dsn, "migrations_applied": applied})
        return applied

    async def flush(self, buffer: RowBuffer) -> tuple[int, float]:
        """Insert the buffered rows, one insert per table; returns (rows, seconds the inserts took on the thread).

        The seconds are the inserts' own, not the wait for the thread: the caller's clock would also count
        whatever else held the event loop meanwhile.
        """
        tables = buffer.drain()
        if not tables:
            return 0, 0.0

        def _insert() -> tuple[int, float]:
            assert self._store is not None
            t0 = time.perf_counter()
            for table, rows in tables.items():
                self._store.insert(table, TABLE_COLUMNS[table], rows)
            return sum(len(r) for r in tables.values()), time.perf_counter() - t0

        return await asyncio.get_running_loop().run_in_executor(self._executor, _insert)

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        def _query() -> list[dict[str, Any]]:
            assert self._store is not None
            return self._store.query_dicts(sql, parameters)

        return await asyncio.get_running_loop().run_in_executor(self._executor, _query)

    async def close(self) -> None:
        if self._store is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
        self._executor.shutdown(wait=True)
