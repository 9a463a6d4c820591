"""`lightwire stack up | down | status`: the broker, its topics, the analytics schema and the services, by pid."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
from dataclasses import dataclass, field


from lightwire import topics
from lightwire.analytics.store import AnalyticsStore
from lightwire.runtime.kafka import describe_topics, ensure_topics
from lightwire.tools.stack.health import wait_healthy
from lightwire.tools.stack.kafka_broker import KafkaCluster
from lightwire.tools.stack.ports import check_ports_free
from lightwire.tools.stack.processes import ManagedProcess
from lightwire.tools.stack.settings import StackSettings

SERVICE_START_TIMEOUT_S = 180.0


@dataclass
class ComponentStatus:
    name: str
    running: bool
    pid: int | None = None
    detail: str = ""


@dataclass
class StackReport:
    components: list[ComponentStatus] = field(default_factory=list)
    topics: dict[str, int] = field(default_factory=dict)
    created_topics: list[str] = field(default_factory=list)
    migrations_applied: list[int] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    dashboard_url: str = ""
    # Every Kafka node of the stack runs (`stack status` exits 3 otherwise).
    kafka_up: bool = False


class LocalStack:
    def __init__(self, settings: StackSettings):
        self.settings = settings
        self.kafka = KafkaCluster(settings)
        self.run_dir = (settings.state_dir / "run").resolve()

    def service(self, name: str) -> ManagedProcess:
        return ManagedProcess(name, self.run_dir, marker=f"lightwire.tools.cli serve {name}")

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LW_KAFKA_BOOTSTRAP", self.settings.bootstrap)
        # The collector makes its changelog topics as the stack makes the lw.* topics.
        replication = self.settings.replication()
        env["LW_TOPIC_REPLICATION"] = str(replication.factor)
        env["LW_TOPIC_MIN_INSYNC_REPLICAS"] = str(replication.min_insync)
        env["LW_STATE_DIR"] = str(self.settings.state_dir.resolve())
        env["LW_CACHE_DIR"] = str(self.settings.cache_dir.resolve())
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The dashboard reads the collector and asks inference and the trainer: on the ports this stack gives them.
        services = {name: _service_settings(name) for name in ("collector", "inference", "trainer")}
        env.setdefault("LW_DASHBOARD_COLLECTOR_URL", services["collector"].read_api_url())
        env.setdefault("LW_DASHBOARD_INFERENCE_URLS", services["inference"].health_url().removesuffix("/healthz"))
        env.setdefault("LW_DASHBOARD_TRAINER_URL", services["trainer"].health_url().removesuffix("/healthz"))
        return env

    def up(self, services: list[str] | None = None) -> StackReport:
        report = StackReport()
        names = with_dashboard(self.settings.service_names() if services is None else services, self.settings.stack_dashboard)
        # Before anything starts: a port held by a process this stack did not start would answer our health checks
        # for it, and our own process would die on "address already in use" a moment later.
        check_ports_free(self.ports_to_claim(names), self.settings.state_dir)
        report.timings_s["kafka"] = self.kafka.start()
        t0 = time.monotonic()
        specs = topics.topic_specs(self.settings.topic_partitions, self.settings.topic_names(), self.settings.replication())
        report.created_topics = asyncio.run(ensure_topics(self.settings.bootstrap, specs))
        report.timings_s["topics"] = time.monotonic() - t0
        if "collector" not in names and not self.service("collector").running():
            # In embedded mode the collector owns chDB; with no collector running the stack applies the schema.
            t0 = time.monotonic()
            store = AnalyticsStore(self.settings.resolved_analytics_dsn())
            try:
                report.migrations_applied = store.migrate()
            finally:
                store.close()
            report.timings_s["analytics"] = time.monotonic() - t0
        for name in names:
            t0 = time.monotonic()
            self.start_service(name)
            report.timings_s[name] = time.monotonic() - t0
        report.components = self.components()
        report.kafka_up = True
        report.topics = asyncio.run(describe_topics(self.settings.bootstrap))
        if "dashboard" in names:
            report.dashboard_url = _service_settings("dashboard").public_url()
        return report

    def ports_to_claim(self, names: list[str]) -> dict[int, str]:
        """Port -> what needs it, for what `up` would start now: each Kafka node's unless ours runs, each service's
        unless ours (by pid file in this state directory) runs."""
        wanted = self.kafka.ports()
        for name in names:
            if not self.service(name).running():
                wanted |= _service_ports(name)
        return wanted

    def start_service(self, name: str) -> None:
        service_settings = _service_settings(name)
        proc = self.service(name)
        proc.start([sys.executable, "-m", "lightwire.tools.cli", "serve", name], env=self.service_env())
        url = service_settings.health_url()
        try:
            wait_healthy(url, lambda: None if proc.running() else f"service {name} exited during start-up; see {proc.log_file}",
                         SERVICE_START_TIMEOUT_S, interval_s=0.5)
        except TimeoutError as exc:
            raise RuntimeError(f"service {name}: {exc}; see {proc.log_file}") from None
        if not proc.running():
            raise RuntimeError(f"service {name} exited right after answering its health check; see {proc.log_file}")

    def down(self) -> list[str]:
        """Stop services (newest first) and then every Kafka node; data stays in the state directory."""
        stopped = []
        for proc in sorted(self._service_processes(), key=lambda p: p.pid_file.stat().st_mtime, reverse=True):
            if proc.stop():
                stopped.append(proc.name)
        return stopped + self.kafka.stop()

    def _service_processes(self) -> list[ManagedProcess]:
        if not self.run_dir.exists():
            return []
        return [self.service(p.stem) for p in self.run_dir.glob("*.pid")]

    def components(self) -> list[ComponentStatus]:
        out = []
        for node in self.kafka.nodes_on_disk():
            pid = node.process.pid()
            out.append(ComponentStatus(node.name, pid is not None, pid, node.address))
        out.append(ComponentStatus("analytics", True, None, self.settings.resolved_analytics_dsn()))
        for proc in self._service_processes():
            pid = proc.pid()
            out.append(ComponentStatus(proc.name, pid is not None, pid, str(proc.log_file)))
        return out

    def status(self) -> StackReport:
        nodes = self.kafka.nodes_on_disk()
        report = StackReport(components=self.components(), kafka_up=all(node.process.running() for node in nodes))
        if live := [node.address for node in nodes if node.process.running()]:
            try:
                report.topics = asyncio.run(describe_topics(",".join(live)))
            except Exception as exc:  # status must report, not crash, on a half-started broker
                report.components[0].detail += f" (not answering: {exc})"
        return report


def with_dashboard(names: list[str], enabled: bool) -> list[str]:
    """The services to start, with the dashboard right after the collector (it reads the collector's read API)."""
    if not enabled or "collector" not in names or "dashboard" in names:
        return list(names)
    at = names.index("collector") + 1
    return [*names[:at], "dashboard", *names[at:]]


def _service_settings(name: str):
    return importlib.import_module(f"lightwire.services.{name}.settings").Settings()


def _service_ports(name: str) -> dict[int, str]:
    """Port -> "LW_<SETTING> (service <name>)" for each port the service listens on."""
    settings = _service_settings(name)
    fields = {getattr(settings, f): f for f in type(settings).model_fields if f.endswith("_port")}
    return {port: f"LW_{fields[port].upper()} (service {name})" if port in fields else f"a port of service {name}"
            for port in settings.listen_ports()}
