"""The Apache Kafka broker of the local stack: official jars from Maven Central, KRaft, one combined node."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from lightwire.tools.stack.ports import check_ports_free
from lightwire.tools.stack.processes import ManagedProcess
from lightwire.tools.stack.settings import StackSettings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG = DEPLOY_DIR / "log4j2.properties"
MAIN_CLASS = "kafka.Kafka"


class BrokerError(RuntimeError):
    pass


# Ids Kafka's own Uuid.randomUuid() never hands out: the zero id and the metadata topic's id.
_RESERVED_IDS = {"AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ"}


def new_cluster_id() -> str:
    """A random cluster id the way `kafka-storage random-uuid` makes one: a UUID in URL-safe base64 without padding,
    redrawn while it starts with '-' (as org.apache.kafka.common.Uuid.randomUuid() does) or is a reserved id."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-") and cluster_id not in _RESERVED_IDS:
            return cluster_id


class KafkaBroker:
    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.home = (settings.state_dir / "kafka").resolve()
        self.data_dir = self.home / "data"
        self.config_file = self.home / "server.properties"
        self.process = ManagedProcess("kafka", self.home, marker=str(self.config_file))

    @property
    def libs_dir(self) -> Path:
        # Keyed by the pom's content, so a version bump fetches a fresh classpath.
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
        return (self.settings.cache_dir / f"kafka-{self.settings.kafka_version}-{digest}" / "libs").resolve()

    def ensure_jars(self) -> Path:
        """Fetch the broker's runtime classpath once into the cache (Maven's own repository cache beside it)."""
        libs = self.libs_dir
        if (libs / ".complete").exists():
            return libs
        if shutil.which(self.settings.mvn) is None:
            raise BrokerError(f"Maven ('{self.settings.mvn}') is needed once to fetch the Kafka jars; install it or set LW_MVN")
        staging = libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            self.settings.mvn, "-q", "-B", "-f", str(POM),
            f"-Dmaven.repo.local={(self.settings.cache_dir / 'm2').resolve()}",
            f"-Dkafka.version={self.settings.kafka_version}",
            "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"fetching the Kafka jars failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        (staging / ".complete").write_text(self.settings.kafka_version)
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        return libs

    def write_config(self) -> None:
        s = self.settings
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            # One node: no reason to wait for more members before the first rebalance.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "message.max.bytes": str(16 << 20),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _java(self, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            self.settings.java, f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.file={self.home / 'server.log'}", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", f"{self.libs_dir}/*", main_class, *args,
        ]

    def format_command(self, cluster_id: str) -> list[str]:
        # `--cluster-id=<id>` in one argument: a separate argument that starts with '-' would be read as an option.
        return self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", f"--config={self.config_file}")

    def format_storage(self) -> bool:
        """Format KRaft storage on first start only; returns whether it formatted."""
        if (self.data_dir / "meta.properties").exists():
            return False
        result = subprocess.run(self.format_command(new_cluster_id()), capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return True

    def ports(self) -> dict[int, str]:
        return {self.settings.kafka_port: "LW_KAFKA_PORT (the Kafka broker)",
                self.settings.kafka_controller_port: "LW_KAFKA_CONTROLLER_PORT (the Kafka controller)"}

    def start(self) -> float:
        """Start (if not running) and wait until it answers; returns the seconds it took."""
        t0 = time.monotonic()
        if not self.process.running():
            # Another broker on our ports would answer wait_ready() for ours, which then dies on a bind error.
            check_ports_free(self.ports(), self.settings.state_dir)
            self.ensure_jars()
            self.write_config()
            self.format_storage()
            self.process.start(self._java(MAIN_CLASS, str(self.config_file), heap=self.settings.kafka_heap))
        asyncio.run(self.wait_ready(self.settings.kafka_start_timeout_s))
        return time.monotonic() - t0

    async def wait_ready(self, timeout_s: float) -> None:
        # aiokafka logs every refused connection at ERROR while the broker boots; that is expected here.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.process.running():
                raise BrokerError(f"the Kafka broker exited during start-up; see {self.home / 'server.log'} and {self.process.log_file}")
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except (KafkaError, OSError) as exc:
                last_error = exc
            finally:
                await admin.close()
            await asyncio.sleep(0.3)
        raise BrokerError(f"the Kafka broker did not answer within {timeout_s:.0f}s: {last_error}")

    def stop(self) -> bool:
        return self.process.stop(timeout_s=60.0)
