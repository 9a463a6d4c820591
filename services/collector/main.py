"""`lightwire serve collector`: the Faust worker with the analytics store it owns."""

from __future__ import annotations

import asyncio

from lightwire.runtime.kafka import describe_topics
from lightwire.services.collector.analytics_writer import AnalyticsWriter
from lightwire.services.collector.app import Collector
from lightwire.services.collector.finalize import TrajectoryFinalizer
from lightwire.services.collector.settings import CollectorSettings
from lightwire.services.collector.web import register_views


def build(settings: CollectorSettings) -> Collector:
    # Tables must be partitioned like the rollout topic (co-partitioning); read its partition count from the broker.
    partitions = asyncio.run(describe_topics(settings.kafka_bootstrap)).get(settings.topic_names().rollout_events)
    if not partitions:
        raise SystemExit(f"topic {settings.topic_names().rollout_events} does not exist: run `lightwire stack up` or `lightwire topics`")
    (settings.state_dir / "collector").mkdir(parents=True, exist_ok=True)
    writer = AnalyticsWriter(settings.resolved_analytics_dsn())
    # Before the worker starts: agents must never see a store without its schema.
    asyncio.run(writer.open())
    collector = Collector(settings, TrajectoryFinalizer.from_settings(settings), writer, partitions)
    register_views(collector)
    return collector


def main() -> None:
    import faust

    settings = CollectorSettings()
    collector = build(settings)
    worker = faust.Worker(collector.app, loglevel=settings.log_level.lower().replace("warning", "warn"), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
