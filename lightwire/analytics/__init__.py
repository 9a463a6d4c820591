"""The analytics store: ClickHouse through clickhouse-connect, embedded (chDB) or a server, one schema."""
