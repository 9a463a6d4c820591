"""Settings of `lightwire stack`: where the broker listens, which jars it runs, which services start with it."""

from __future__ import annotations

from pydantic import Field

from lightwire.settings import CommaList, CommonSettings


class StackSettings(CommonSettings):
    kafka_version: str = Field("4.3.1", description="Apache Kafka version fetched from Maven Central (deploy/kafka/pom.xml).")
    kafka_port: int = Field(9092, description="Broker listener port on 127.0.0.1 (the bootstrap server).")
    kafka_controller_port: int = Field(9093, description="KRaft controller listener port on 127.0.0.1.")
    kafka_heap: str = Field("768m", description="Broker JVM heap (-Xmx).")
    kafka_start_timeout_s: float = Field(90.0, description="How long `stack up` waits for the broker to answer.")
    topic_partitions: int = Field(4, description="Partitions of the rollout-keyed topics (the unit of collector scale-out).")
    java: str = Field("java", description="The java executable (Java 17 or newer).")
    mvn: str = Field("mvn", description="The Maven executable that fetches the broker jars.")
    stack_services: CommaList = Field(
        (),
        description="Comma-separated Lightwire services `stack up` starts after the broker, in order "
        "(e.g. inference,gateway,collector,trainer); empty starts only the infrastructure.",
    )
    stack_dashboard: bool = Field(True, description="Start the dashboard (lightwire serve dashboard) right after the collector.")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def service_names(self) -> list[str]:
        return list(self.stack_services)
