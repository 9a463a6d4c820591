"""Settings every Lightwire service shares. Each service subclasses `CommonSettings` once.

All settings come from environment variables with the prefix `LW_` (field `kafka_bootstrap` is read from
`LW_KAFKA_BOOTSTRAP`), then from defaults documented on each field. Nothing else reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lightwire.topics import Replication, TopicNames

ENV_PREFIX = "LW_"


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A setting written as "a, b,c" in the environment: a tuple of its non-empty, stripped parts. NoDecode keeps
# pydantic-settings from reading the variable as JSON first.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)]


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "lightwire"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma separated.")
    topic_prefix: str = Field("lw.", description="Prefix of every Lightwire topic name (lets deployments or tests share a broker).")
    topic_replication: int = Field(
        1, ge=1, description="Brokers that keep a copy of each partition of the topics Lightwire creates (its lw.* topics, the "
        "collector's changelogs); 3 on a three-broker cluster, where a write then survives the loss of any one broker. "
        "`lightwire stack` defaults it to its broker count, at most 3.")
    topic_min_insync_replicas: int = Field(
        0, ge=0, description="Copies a write needs before Kafka acknowledges it to an acks=all producer (every Lightwire "
        "producer); 0, the default, means a majority of topic_replication: 1 of 1, 2 of 3.")
    state_dir: Path = Field(Path(".lightwire"), description="Where local data lives: broker logs, chDB, checkpoints, pids.")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Reusable downloads: jars, converted models.")
    analytics_dsn: str = Field(
        "",
        description="ClickHouse DSN: chdb:///path (embedded, the default under state_dir) or http://user:pw@host:8123/db.",
    )
    instance_id: str = Field("", description="This process's name in events and logs; defaults to <service>-<pid>.")
    log_level: LogLevel = Field("INFO", description="Python logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line instead of aligned text.")
    api_keys: CommaList = Field(
        (), description="Comma-separated API keys (LW_API_KEYS) the gateway, the collector's read API and the dashboard "
        "accept; empty accepts every caller.")

    @model_validator(mode="after")
    def _check_replication(self) -> "CommonSettings":
        if self.topic_min_insync_replicas > self.topic_replication:
            raise ValueError(f"LW_TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync_replicas} is more than the "
                             f"LW_TOPIC_REPLICATION={self.topic_replication} copies a partition has: no write could be acknowledged; "
                             "lower it, or leave it 0 for a majority of the copies")
        return self

    def topic_names(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def replication(self) -> Replication:
        if self.topic_min_insync_replicas:
            return Replication(self.topic_replication, self.topic_min_insync_replicas)
        return Replication.majority(self.topic_replication)

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
