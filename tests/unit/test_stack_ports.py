"""`stack up` checks the ports it is about to listen on and names whoever holds one."""

from __future__ import annotations

import os
import socket

import pytest

from testing.services_fixtures import free_port

from lightwire.tools.stack.local_stack import LocalStack
from lightwire.tools.stack.ports import PortsInUse, check_ports_free, port_free, port_use
from lightwire.tools.stack.settings import StackSettings


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_a_port_someone_listens_on_is_not_free_and_its_holder_is_named(listener):
    assert not port_free(listener)
    use = port_use(listener, "LW_KAFKA_PORT (the Kafka broker)")
    assert use is not None and use.pid == os.getpid()
    assert f"port {listener}, LW_KAFKA_PORT (the Kafka broker), is in use by pid {os.getpid()}" in use.describe()


def test_a_closed_port_is_free_even_right_after_a_connection(listener):
    port = free_port()
    assert port_free(port) and port_use(port, "x") is None


def test_the_error_names_every_held_port_and_what_to_do(listener, tmp_path):
    other = free_port()
    with pytest.raises(PortsInUse) as caught:
        check_ports_free({listener: "LW_GATEWAY_HTTP_PORT (service gateway)", other: "LW_COLLECTOR_PORT (service collector)"}, tmp_path)
    message = str(caught.value)
    assert f"port {listener}, LW_GATEWAY_HTTP_PORT (service gateway)" in message
    assert str(other) not in message
    assert str(tmp_path.resolve()) in message and "Nothing was started" in message and "LW_GATEWAY_HTTP_PORT" in message


def test_another_stacks_broker_is_named_by_its_state_directory(tmp_path):
    from lightwire.tools.stack.ports import _lightwire_state_dir

    assert _lightwire_state_dir(1, f"java -Xmx768m -cp x/* kafka.Kafka {tmp_path}/other/kafka/server.properties") == f"{tmp_path}/other"
    assert _lightwire_state_dir(1, "python -m http.server") == ""


def test_up_claims_the_broker_and_service_ports_it_would_start(tmp_path, monkeypatch):
    monkeypatch.setenv("LW_GATEWAY_HTTP_PORT", "18001")
    monkeypatch.setenv("LW_GATEWAY_GRPC_PORT", "18002")
    stack = LocalStack(StackSettings(state_dir=tmp_path, kafka_port=18092, kafka_controller_port=18093))
    assert stack.ports_to_claim(["gateway"]) == {
        18092: "LW_KAFKA_PORT (the Kafka broker)", 18093: "LW_KAFKA_CONTROLLER_PORT (the Kafka controller)",
        18001: "LW_GATEWAY_HTTP_PORT (service gateway)", 18002: "LW_GATEWAY_GRPC_PORT (service gateway)",
    }


def test_up_refuses_before_starting_anything_when_a_port_is_held(listener, tmp_path):
    stack = LocalStack(StackSettings(state_dir=tmp_path, kafka_port=listener, kafka_controller_port=free_port()))
    with pytest.raises(PortsInUse, match=f"port {listener}, LW_KAFKA_PORT"):
        stack.up(services=[])
    assert not (tmp_path / "kafka").exists() and not stack.kafka.running()
