"""Construction of the collector's Faust app: broker, producer, consumer and web settings, and client log levels.

Kept apart from the agents so the settings the worker runs with can be read in one place.
"""

from __future__ import annotations

import logging

from lightwire.services.collector.batch_delivery import BatchDeliveryApp
from lightwire.services.collector.settings import CollectorSettings


def build_app(settings: CollectorSettings, app_id: str, partitions: int) -> BatchDeliveryApp:
    return BatchDeliveryApp(
        app_id,
        broker=[f"kafka://{b.strip()}" for b in settings.kafka_bootstrap.split(",")],
        store="memory://",
        topic_partitions=partitions,
        # Faust's own topics (table changelogs, the group-member topic) are replicated as the lw.* topics are.
        topic_replication_factor=settings.topic_replication,
        table_standby_replicas=0,
        producer_acks=-1,
        producer_max_request_size=16 << 20,
        # Faust's producer carries the table changelogs: one write per rollout per batch. Its defaults (no linger,
        # 16 KiB batches) send them in many small requests, and each request costs the event loop more than
        # the records in it.
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.collector_session_timeout_s,
        # A third of the session timeout, as Kafka advises: two heartbeats can go missing before a member is dropped.
        broker_heartbeat_interval=settings.collector_session_timeout_s / 3,
        web_enabled=True,
        web_bind=settings.collector_host,
        web_port=settings.collector_port,
        web_in_thread=False,
        datadir=str((settings.state_dir / "collector" / app_id).resolve()),
        autodiscover=False,
    )


def quiet_kafka_client_logs() -> None:
    """aiokafka logs every produced record at debug level, and building each record costs more than sending it.

    The Faust worker sets up logging after the app is built, so this runs once the worker is up.
    """
    root = logging.getLogger()
    logging.getLogger("aiokafka").setLevel(max(logging.INFO, root.getEffectiveLevel()))
    # Faust's topics log every changelog record they publish at debug level too.
    logging.getLogger("faust.topics").setLevel(max(logging.INFO, root.getEffectiveLevel()))
