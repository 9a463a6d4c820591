"""The Apache Kafka cluster of the local stack: official jars from Maven Central, KRaft, `LW_STACK_BROKERS` combined
broker and controller nodes (one by default) sharing one cluster id, each with its own ports and log directory."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from lightwire.tools.stack.ports import check_ports_free
from lightwire.tools.stack.processes import ManagedProcess
from lightwire.tools.stack.settings import PORT_STEP, StackSettings

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


class KafkaNode:
    """One combined broker and controller: its ports, its directory under the state directory, its process."""

    def __init__(self, node_id: int, home: Path, port: int, controller_port: int):
        self.node_id = node_id
        self.home = home
        self.port = port
        self.controller_port = controller_port
        self.data_dir = home / "data"
        self.config_file = home / "server.properties"
        self.process = ManagedProcess(self.name, home, marker=str(self.config_file))

    @property
    def name(self) -> str:
        return "kafka" if self.node_id == 1 else f"kafka-{self.node_id}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cluster_id(self) -> str | None:
        """The cluster id its storage was formatted with; None while it is not formatted."""
        try:
            lines = (self.data_dir / "meta.properties").read_text().splitlines()
        except FileNotFoundError:
            return None
        return next((line.split("=", 1)[1].strip() for line in lines if line.startswith("cluster.id=")), None)

    def ports(self) -> dict[int, str]:
        if self.node_id == 1:
            return {self.port: "LW_KAFKA_PORT (the Kafka broker)", self.controller_port: "LW_KAFKA_CONTROLLER_PORT (the Kafka controller)"}
        offset = PORT_STEP * (self.node_id - 1)
        return {self.port: f"LW_KAFKA_PORT+{offset} (Kafka broker {self.node_id})",
                self.controller_port: f"LW_KAFKA_CONTROLLER_PORT+{offset} (Kafka controller {self.node_id})"}


class KafkaCluster:
    """The stack's Kafka: node 1 in <state>/kafka, node n in <state>/kafka-n, every node a voter of the controller
    quorum (static `controller.quorum.voters`), all formatted with one cluster id on their first start."""

    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.nodes = [self.node(n) for n in range(1, settings.stack_brokers + 1)]

    def node(self, node_id: int) -> KafkaNode:
        home = self.state_dir / ("kafka" if node_id == 1 else f"kafka-{node_id}")
        return KafkaNode(node_id, home, *self.settings.node_ports(node_id))

    def nodes_on_disk(self) -> list[KafkaNode]:
        """The configured nodes and any other this state directory holds (a cluster `up` ran with more brokers):
        what `down` stops and `status` shows, whatever LW_STACK_BROKERS says now."""
        found = {int(p.name.removeprefix("kafka-")) for p in self.state_dir.glob("kafka-*") if p.name.removeprefix("kafka-").isdigit()}
        extra = sorted(found - {n.node_id for n in self.nodes})
        return self.nodes + [self.node(n) for n in extra]

    def running(self) -> bool:
        """Every configured node runs."""
        return all(node.process.running() for node in self.nodes)

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

    def node_config(self, node: KafkaNode) -> dict[str, str]:
        replication = self.settings.replication()
        factor, min_isr = str(replication.factor), str(replication.min_insync)
        return {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes),
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": "1",
            # Kafka's own topics and any topic made without a replication factor get Lightwire's (LW_TOPIC_REPLICATION).
            "default.replication.factor": factor,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": factor,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": factor,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": factor,
            "share.coordinator.state.topic.min.isr": min_isr,
            # A local stack: no reason to wait for more members before a group's first rebalance.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "message.max.bytes": str(16 << 20),
        }

    def write_config(self) -> None:
        for node in self.nodes:
            node.home.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text("".join(f"{k}={v}\n" for k, v in self.node_config(node).items()))

    def _java(self, node: KafkaNode, main_class: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            self.settings.java, f"-Xmx{heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.file={node.home / 'server.log'}", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", f"{self.libs_dir}/*", main_class, *args,
        ]

    def format_command(self, node: KafkaNode, cluster_id: str) -> list[str]:
        # `--cluster-id=<id>` in one argument: a separate argument that starts with '-' would be read as an option.
        return self._java(node, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", f"--config={node.config_file}")

    def formatted_cluster_id(self) -> str | None:
        """The one cluster id every configured node was formatted with; None when none is formatted. Refuses a state
        directory whose formatted nodes are not exactly the configured ones: a node that joined another quorum, or a
        quorum missing a voter, would never form the cluster asked for."""
        ids = {node.node_id: cid for node in self.nodes_on_disk() if (cid := node.cluster_id()) is not None}
        if not ids:
            return None
        wanted = [node.node_id for node in self.nodes]
        if sorted(ids) == wanted and len(set(ids.values())) == 1:
            return next(iter(ids.values()))
        dirs = ", ".join(str(n.home) for n in self.nodes_on_disk())
        raise BrokerError(
            f"{self.state_dir} holds a Kafka cluster of {len(ids)} formatted node(s) (ids {sorted(ids)}), not the "
            f"{len(wanted)} LW_STACK_BROKERS asks for. Start it as it was made (`lightwire stack up --brokers {len(ids)}` or "
            f"LW_STACK_BROKERS={len(ids)}), use another LW_STATE_DIR, or `lightwire stack down` and remove {dirs} for a fresh "
            "cluster (its topics and records go with it).")

    def format_storage(self) -> bool:
        """Format every node's KRaft storage with one new cluster id, on the cluster's first start only; returns
        whether it formatted. A failure leaves no node formatted, so the next start formats them all again."""
        if self.formatted_cluster_id() is not None:
            return False
        cluster_id = new_cluster_id()
        run = lambda node: subprocess.run(self.format_command(node, cluster_id), capture_output=True, text=True)  # noqa: E731
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            results = list(pool.map(run, self.nodes))
        failed = [(node, r) for node, r in zip(self.nodes, results) if r.returncode != 0]
        if failed:
            for node in self.nodes:
                shutil.rmtree(node.data_dir, ignore_errors=True)
            node, r = failed[0]
            raise BrokerError(f"formatting Kafka storage of node {node.node_id} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return True

    def ports(self) -> dict[int, str]:
        """Port -> what needs it, for every node that is not running."""
        return {port: what for node in self.nodes if not node.process.running() for port, what in node.ports().items()}

    def start(self) -> float:
        """Start the nodes that are not running and wait until every one is a live broker; returns the seconds it took."""
        t0 = time.monotonic()
        replication = self.settings.replication()
        if replication.factor > len(self.nodes):
            raise BrokerError(f"LW_TOPIC_REPLICATION={replication.factor} needs at least that many brokers; the stack runs "
                              f"{len(self.nodes)} (LW_STACK_BROKERS, `stack up --brokers N`)")
        stopped = [node for node in self.nodes if not node.process.running()]
        self.formatted_cluster_id()  # refuses a state directory made for another number of nodes, running or not
        if stopped:
            # Another broker on our ports would answer wait_ready() for ours, which then dies on a bind error.
            check_ports_free(self.ports(), self.settings.state_dir)
            self.ensure_jars()
            self.write_config()
            self.format_storage()
            for node in stopped:
                node.process.start(self._java(node, MAIN_CLASS, str(node.config_file), heap=self.settings.kafka_heap))
        asyncio.run(self.wait_ready(self.settings.kafka_start_timeout_s))
        return time.monotonic() - t0

    async def wait_ready(self, timeout_s: float) -> None:
        """Until the cluster's metadata names every node as a live broker: a topic of 3 replicas cannot be made before."""
        # aiokafka logs every refused connection at ERROR while the brokers boot; that is expected here.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        deadline = time.monotonic() + timeout_s
        last_error: str = "no answer yet"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if not node.process.running():
                    raise BrokerError(f"Kafka node {node.node_id} exited during start-up; see {node.home / 'server.log'} "
                                      f"and {node.process.log_file}")
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                live = {broker["node_id"] for broker in (await admin.describe_cluster())["brokers"]}
                if live >= {node.node_id for node in self.nodes}:
                    return
                last_error = f"live brokers {sorted(live)}"
            except (KafkaError, OSError) as exc:
                last_error = repr(exc)
            finally:
                await admin.close()
            await asyncio.sleep(0.3)
        raise BrokerError(f"the Kafka cluster was not up within {timeout_s:.0f}s: {last_error}")

    def stop(self) -> list[str]:
        """SIGTERM to every node at once (one after another, the last ones would wait on a quorum already gone);
        returns the names of the nodes that were running."""
        nodes = self.nodes_on_disk()
        with ThreadPoolExecutor(len(nodes)) as pool:
            stopped = list(pool.map(lambda node: node.process.stop(timeout_s=60.0), nodes))
        return [node.name for node, was_running in zip(nodes, stopped) if was_running]
