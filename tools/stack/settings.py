"""Settings of `lightwire stack`: where the brokers listen, which jars they run, which services start with them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from lightwire.settings import CommaList, CommonSettings

# Node n of the cluster listens on the configured ports plus PORT_STEP * (n - 1): node 2 on 9094 and 9095 by default.
PORT_STEP = 2
# The replication `stack` gives its topics when LW_TOPIC_REPLICATION is not set: one copy per broker, at most this many.
MAX_DEFAULT_REPLICATION = 3


class StackSettings(CommonSettings):
    kafka_version: str = Field("4.3.1", description="Apache Kafka version fetched from Maven Central (deploy/kafka/pom.xml).")
    kafka_port: int = Field(
        9092, description="Broker listener port on 127.0.0.1 (the bootstrap server) of node 1; node n listens on this plus 2(n-1).")
    kafka_controller_port: int = Field(
        9093, description="KRaft controller listener port on 127.0.0.1 of node 1; node n listens on this plus 2(n-1).")
    kafka_heap: str = Field("768m", description="JVM heap (-Xmx) of each broker.")
    kafka_start_timeout_s: float = Field(90.0, description="How long `stack up` waits for every broker to answer.")
    stack_brokers: int = Field(
        1, ge=1, le=9,
        description="Kafka nodes `stack up` runs, each a combined broker and KRaft controller (every one a voter of the "
        "controller quorum); 3 survives the loss of any one, and the topics then get 3 copies (LW_TOPIC_REPLICATION).")
    topic_partitions: int = Field(4, description="Partitions of the rollout-keyed topics (the unit of collector scale-out).")
    java: str = Field("java", description="The java executable (Java 17 or newer).")
    mvn: str = Field("mvn", description="The Maven executable that fetches the broker jars.")
    stack_services: CommaList = Field(
        (),
        description="Comma-separated Lightwire services `stack up` starts after the broker, in order "
        "(e.g. inference,gateway,collector,trainer); empty starts only the infrastructure.",
    )
    stack_dashboard: bool = Field(True, description="Start the dashboard (lightwire serve dashboard) right after the collector.")

    @model_validator(mode="before")
    @classmethod
    def _replicate_across_the_brokers(cls, data: Any) -> Any:
        """With LW_TOPIC_REPLICATION unset, every broker keeps a copy (at most 3): one setting, LW_STACK_BROKERS=3,
        gives a cluster whose topics survive the loss of a broker."""
        if isinstance(data, dict) and data.get("topic_replication") is None:
            brokers = int(data.get("stack_brokers") or 1)
            data = {**data, "topic_replication": min(brokers, MAX_DEFAULT_REPLICATION)}
        return data

    @model_validator(mode="after")
    def _check_ports(self) -> "StackSettings":
        ports = [port for node in range(1, self.stack_brokers + 1) for port in self.node_ports(node)]
        if len(set(ports)) != len(ports):
            raise ValueError(f"the {self.stack_brokers} Kafka node(s) would share ports ({ports}): node n listens on "
                             f"LW_KAFKA_PORT and LW_KAFKA_CONTROLLER_PORT plus {PORT_STEP}(n-1); set those two an odd "
                             "number apart (9092 and 9093) or further apart than the nodes span")
        return self

    def node_ports(self, node_id: int) -> tuple[int, int]:
        """(broker port, controller port) of node `node_id` (1-based)."""
        offset = PORT_STEP * (node_id - 1)
        return self.kafka_port + offset, self.kafka_controller_port + offset

    @property
    def bootstrap(self) -> str:
        """Every broker of the stack, comma separated: a client starts from whichever answers."""
        return ",".join(f"127.0.0.1:{self.node_ports(n)[0]}" for n in range(1, self.stack_brokers + 1))

    def service_names(self) -> list[str]:
        return list(self.stack_services)
