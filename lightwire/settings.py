"""Settings every Lightwire service shares. Each service subclasses `CommonSettings` once.

All settings come from environment variables with the prefix `LW_` (field `kafka_bootstrap` is read from
`LW_KAFKA_BOOTSTRAP`), then from defaults documented on each field. Nothing else reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lightwire.topics import TopicNames

ENV_PREFIX = "LW_"


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "lightwire"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    topic_prefix: str = Field("lw.", description="Prefix of every Lightwire topic name (lets deployments or tests share a broker).")
    state_dir: Path = Field(Path(".lightwire"), description="Where local data lives: broker logs, chDB, checkpoints, pids.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Reusable downloads: jars, converted models.")
    analytics_dsn: str = Field(
        "",
        description="ClickHouse DSN: chdb:///path (embedded, the default under state_dir) or http://user:pw@host:8123/db.",
    )
    instance_id: str = Field("", description="This process's name in events and logs; defaults to <service>-<pid>.")
    log_level: str = Field("INFO", description="Python logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line instead of aligned text.")
    api_keys: str = Field("", description="Comma-separated API keys the gateway accepts; empty accepts every caller.")

    def topic_names(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def resolved_analytics_dsn(self) -> str:
        if self.analytics_dsn:
            return self.analytics_dsn
        return f"chdb://{(self.state_dir / 'analytics').resolve()}"


class ServiceSettings(CommonSettings):
    """A service's settings: where its `/healthz` answers and which ports it listens on (for stack and compose)."""

    def health_url(self) -> str:
        raise NotImplementedError

    def listen_ports(self) -> set[int]:
        raise NotImplementedError
