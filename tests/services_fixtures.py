"""Running Lightwire services as real subprocesses in tests, each with its own topic prefix and state directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lightwire.stack.health import wait_healthy


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

    def start(self, timeout_s: float = 120.0) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lightwire.cli", "serve", self.name], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
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
