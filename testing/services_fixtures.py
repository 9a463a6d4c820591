"""Running Lightwire services as real subprocesses in tests, each with its own topic prefix and state directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lightwire.tools.stack.health import wait_healthy

if TYPE_CHECKING:
    from lightwire.topics import TopicNames


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    health_url: str
    log_path: Path
    proc: subprocess.Popen | None = None
    restarts: int = field(default=0)
    # Another installation's interpreter and CLI module (bench/revision_env.py): a benchmark's baseline revision.
    python: str = sys.executable
    cli_module: str = "lightwire.tools.cli"
    cwd: str | None = None  # for another installation, its own tree: `python -m` puts the working directory first

    def start(self, timeout_s: float = 120.0) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", self.cli_module, "serve", self.name], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.cwd,
        )
        try:
            wait_healthy(self.health_url, self._exited, timeout_s)
        except TimeoutError:
            raise TimeoutError(f"{self.name} not healthy within {timeout_s}s:\n{self.log_tail()}") from None
        return self

    def _exited(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
        return None

    def kill(self) -> None:
        """SIGKILL: the crash the at-least-once design must survive."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""


def service_env(bootstrap: str, prefix: str, state_dir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LW_") or k == "LW_CACHE_DIR"}
    env.update({"LW_KAFKA_BOOTSTRAP": bootstrap, "LW_TOPIC_PREFIX": prefix, "LW_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"})
    env.update({f"LW_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass(frozen=True)
class AgentStack:
    """What an agent talks to: inference on the tiny model, the gateway in front of it, the collector behind it."""

    bootstrap: str
    names: "TopicNames"
    ports: dict[str, int]

    @property
    def hub(self) -> str:
        return f"127.0.0.1:{self.ports['hub']}"

    def base_url(self, rollout_id: str = "") -> str:
        return f"http://127.0.0.1:{self.ports['http']}" + (f"/rollouts/{rollout_id}" if rollout_id else "") + "/v1"


@contextlib.contextmanager
def agent_stack(bootstrap: str, work: Path, stem: str, *, api_key: str, collector_rewards: str = "task_completion",
                partitions: int = 2, gateway: dict[str, object] | None = None) -> Iterator[AgentStack]:
    """inference + gateway (API key on) + collector as subprocesses on a topic prefix of their own; `gateway`: more
    gateway settings (names as in GatewaySettings)."""
    from lightwire import topics
    from lightwire.runtime.kafka import ensure_topics

    names = topics.TopicNames(f"{stem}{int(time.time() * 1000) % 10**8}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(partitions, names)))
    ports = {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector")}
    quiet = dict(log_level="WARNING")
    started: list[ServiceProcess] = []
    try:
        started.append(ServiceProcess("inference", service_env(
            bootstrap, names.prefix, work, inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=ports["inf_grpc"],
            inference_ops_port=ports["inf_ops"], **quiet), f"http://127.0.0.1:{ports['inf_ops']}/healthz", work / "inference.log"
        ).start(timeout_s=180))
        started.append(ServiceProcess("gateway", service_env(
            bootstrap, names.prefix, work, gateway_http_port=ports["http"], gateway_grpc_port=ports["hub"],
            gateway_upstream=f"127.0.0.1:{ports['inf_grpc']}", api_keys=api_key, gateway_acquire_wait_ms=500, **quiet, **(gateway or {})),
            f"http://127.0.0.1:{ports['http']}/healthz", work / "gateway.log").start())
        started.append(ServiceProcess("collector", service_env(
            bootstrap, names.prefix, work, collector_port=ports["collector"], collector_rewards=collector_rewards, **quiet),
            f"http://127.0.0.1:{ports['collector']}/healthz", work / "collector.log").start())
        yield AgentStack(bootstrap, names, ports)
    finally:
        for p in reversed(started):
            p.stop()
