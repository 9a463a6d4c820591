"""A multi-broker cluster in tests: how its topics are replicated, who leads what, and killing the broker that does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from lightwire.tools.stack.kafka_broker import KafkaCluster, KafkaNode


@dataclass(frozen=True)
class TopicReplication:
    """What the cluster says of one topic: each partition's replicas, in-sync replicas and leader, and its min ISR."""

    replicas: dict[int, tuple[int, ...]]
    in_sync: dict[int, tuple[int, ...]]
    leaders: dict[int, int]
    min_insync: int


async def describe_replication(bootstrap: str, names: list[str]) -> dict[str, TopicReplication]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        min_isr: dict[str, int] = {}
        for response in await admin.describe_configs(resources):
            for _error, _message, _type, name, entries in response.resources:
                min_isr[name] = next(int(e[1]) for e in entries if e[0] == "min.insync.replicas")
    finally:
        await admin.close()
    out = {}
    for topic in described:
        if topic["error_code"] or not topic["partitions"]:
            raise RuntimeError(f"Kafka could not describe topic {topic['topic']}: error {topic['error_code']}")
        partitions = {p["partition"]: p for p in topic["partitions"]}
        out[topic["topic"]] = TopicReplication(
            replicas={i: tuple(p["replicas"]) for i, p in partitions.items()},
            in_sync={i: tuple(p["isr"]) for i, p in partitions.items()},
            leaders={i: p["leader"] for i, p in partitions.items()},
            min_insync=min_isr[topic["topic"]],
        )
    return out


def kill_leader(cluster: KafkaCluster, topic: str, partition: int = 0) -> tuple[KafkaNode, list[int]]:
    """kill -9 the node leading `partition` of `topic` (a node that leads something, so a topic of one copy would lose
    it); returns the node and every partition of the topic it led. It stays down until `cluster.start()`."""
    leaders = asyncio.run(describe_replication(cluster.settings.bootstrap, [topic]))[topic].leaders
    node = cluster.nodes[leaders[partition] - 1]
    node.process.kill()
    return node, sorted(p for p, leader in leaders.items() if leader == node.node_id)
