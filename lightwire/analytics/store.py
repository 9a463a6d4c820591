"""AnalyticsStore: versioned migrations, batched inserts and queries over clickhouse-connect.

The same code serves `chdb:///path` (the ClickHouse engine in-process; one process per path, so in embedded
mode the collector owns it) and `http://...` (a ClickHouse server, as in compose).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import clickhouse_connect

MIGRATIONS_PACKAGE = "lightwire.analytics"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS lw_schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3) DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).joinpath("migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"two migrations share a version number: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


class AnalyticsStore:
    def __init__(self, dsn: str):
        if not dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError(f"analytics DSN must start with chdb://, http:// or https://, got {dsn!r}")
        if dsn.startswith("chdb://"):
            # chDB wants its data directory to exist.
            from pathlib import Path

            Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
        self.dsn = dsn
        self.client = clickhouse_connect.get_client(dsn=dsn)
        # Building an insert context asks the server for the table's columns: once per table, not per insert.
        self._insert_contexts: dict[tuple[str, tuple[str, ...]], Any] = {}

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, in order; returns the versions applied now."""
        self.client.command(SCHEMA_TABLE)
        done = {row[0] for row in self.client.query("SELECT version FROM lw_schema_migrations").result_rows}
        applied = []
        for migration in load_migrations():
            if migration.version in done:
                continue
            # Statements are idempotent (IF NOT EXISTS), so a crash between them is repaired by the next run.
            for statement in migration.statements():
                self.client.command(statement)
            self.client.insert("lw_schema_migrations", [[migration.version, migration.name]], column_names=["version", "name"])
            applied.append(migration.version)
        return applied

    def applied_versions(self) -> list[int]:
        return sorted(row[0] for row in self.client.query("SELECT version FROM lw_schema_migrations").result_rows)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        key = (table, tuple(columns))
        context = self._insert_contexts.get(key)
        if context is None:
            context = self._insert_contexts[key] = self.client.create_insert_context(table, column_names=list(columns))
        context.data = rows
        self.client.insert(context=context)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        return self.client.query(sql, parameters=parameters).result_rows

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.client.query(sql, parameters=parameters)
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def close(self) -> None:
        self.client.close()
