"""`lightwire stack up` on ports something else already holds: a clear refusal, nothing started, nothing "running".

Before, the health checks were answered by whoever held the port (another stack with another state directory), `up`
exited 0 and listed its services as running, and its own processes died on "address already in use" seconds later.
"""

from __future__ import annotations

import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testing.cli_run import lightwire
from testing.services_fixtures import free_port

pytestmark = pytest.mark.integration


def stack_env(state_dir: Path, kafka_port: int, controller_port: int, services: str = "", **extra: str) -> dict[str, str]:
    return {**os.environ, "LW_STATE_DIR": str(state_dir), "LW_KAFKA_PORT": str(kafka_port), "LW_KAFKA_CONTROLLER_PORT": str(controller_port),
            "LW_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}", "LW_STACK_SERVICES": services, "COLUMNS": "250", **extra}


def processes_naming(state_dir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if str(state_dir) in cmdline or f"LW_STATE_DIR={state_dir}".encode() in environ:
                found.append(cmdline)
    return found


class Healthy(BaseHTTPRequestHandler):
    """Answers 200 to everything, /healthz included: what another stack's service looks like to a health check."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def healthy_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def assert_refused(result: subprocess.CompletedProcess, state_dir: Path, port: int, setting: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "stack up failed" in out and f"port {port}, {setting}" in out and "Nothing was started" in out, out
    assert "yes" not in out, f"nothing may be listed as running:\n{out}"
    assert processes_naming(state_dir) == []
    return out


def test_up_refuses_a_broker_port_held_by_another_process(tmp_path, healthy_server):
    state_dir = tmp_path / "state"
    result = lightwire("stack", "up", env=stack_env(state_dir, healthy_server, free_port()))
    out = assert_refused(result, state_dir, healthy_server, "LW_KAFKA_PORT (the Kafka broker)")
    assert f"pid {os.getpid()}" in out  # the holder, named
    assert not (state_dir / "kafka").exists()


def test_up_refuses_a_service_port_whose_holder_answers_health_checks(tmp_path, healthy_server):
    state_dir = tmp_path / "state"
    env = stack_env(state_dir, free_port(), free_port(), services="gateway",
                    LW_GATEWAY_HTTP_PORT=str(healthy_server), LW_GATEWAY_GRPC_PORT=str(free_port()),
                    LW_GATEWAY_UPSTREAM="http://127.0.0.1:9")
    result = lightwire("stack", "up", env=env)
    assert_refused(result, state_dir, healthy_server, "LW_GATEWAY_HTTP_PORT (service gateway)")
    assert not (state_dir / "kafka").exists(), "the check comes before the broker starts"


def test_a_second_stack_on_the_same_ports_is_refused_and_told_which_stack_holds_them(tmp_path, local_stack, stack_settings):
    """The session's broker is one stack; a second with another state directory and the same ports must not start."""
    state_dir = tmp_path / "second"
    env = stack_env(state_dir, stack_settings.kafka_port, stack_settings.kafka_controller_port)
    result = lightwire("stack", "up", env=env)
    out = assert_refused(result, state_dir, stack_settings.kafka_port, "LW_KAFKA_PORT (the Kafka broker)")
    first = str(stack_settings.state_dir.resolve())
    assert f"state directory {first}" in out and f"LW_STATE_DIR={first} lightwire stack down" in out, out
    assert local_stack.kafka.running(), "the first stack is left alone"
    # `status` of the second stack says nothing runs; the first is still up.
    assert lightwire("stack", "status", env=env).returncode == 3
