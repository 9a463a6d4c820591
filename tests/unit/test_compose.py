"""What can be checked of deploy/compose without a Docker engine: structure, commands, settings, ports, order."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import typer.main
import yaml

from lightwire.tools.cli import SERVICES, app
from lightwire.tools.stack.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
THREE_BROKERS = ROOT / "deploy" / "compose" / "brokers-3.yml"


def merged(base: dict, override: dict) -> dict:
    """`docker compose -f base -f override` as far as these files use it: mappings merge key by key, the rest is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="module", params=["one broker", "three brokers"])
def compose(request) -> dict:
    """Every check below holds for docker-compose.yml alone and with brokers-3.yml over it."""
    base = yaml.safe_load(COMPOSE.read_text())
    return base if request.param == "one broker" else merged(base, yaml.safe_load(THREE_BROKERS.read_text()))


@pytest.fixture(scope="module")
def three_brokers() -> dict:
    return merged(yaml.safe_load(COMPOSE.read_text()), yaml.safe_load(THREE_BROKERS.read_text()))


def lightwire_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == "lightwire:local"}


def settings_class(command: list[str]):
    if command[:1] == ["serve"]:
        return importlib.import_module(f"lightwire.services.{command[1]}.settings").Settings
    return StackSettings


def test_every_lightwire_service_of_the_cli_runs_in_compose(compose):
    served = {svc["command"][1] for svc in lightwire_services(compose).values() if svc["command"][0] == "serve"}
    assert served == set(SERVICES)


def test_every_command_is_a_real_cli_entry_point(compose):
    cli = typer.main.get_command(app)
    for name, svc in lightwire_services(compose).items():
        command = svc["command"]
        ctx = cli.make_context("lightwire", list(command), resilient_parsing=False)
        sub = cli.get_command(ctx, command[0])
        assert sub is not None, f"{name}: `lightwire {command[0]}` does not exist"
        if command[0] == "serve":
            assert command[1] in SERVICES
            importlib.import_module(f"lightwire.services.{command[1]}.main").main  # noqa: B018 - the entry point exists


def test_every_env_var_is_a_real_setting(compose):
    for name, svc in lightwire_services(compose).items():
        fields = set(settings_class(svc["command"]).model_fields)
        for var in svc["environment"]:
            assert var.startswith("LW_"), f"{name}: {var} is not a Lightwire setting"
            assert var.removeprefix("LW_").lower() in fields, f"{name}: {var} is not a field of its settings"


def test_ports_and_health_checks_match_the_settings(compose):
    for name, svc in lightwire_services(compose).items():
        if svc["command"][0] != "serve":
            continue
        settings = settings_class(svc["command"])(**{
            k.removeprefix("LW_").lower(): v for k, v in svc["environment"].items() if not str(v).startswith("${")
        })
        health_port = int(re.search(r"localhost:(\d+)/healthz", " ".join(svc["healthcheck"]["test"])).group(1))
        assert f":{health_port}/" in settings.health_url(), f"{name}: health check port differs from its settings"
        for mapping in svc.get("ports", []):
            container_port = int(str(mapping).split(":")[-1])
            assert container_port in settings.listen_ports(), f"{name}: publishes {container_port}, which it does not listen on"


def test_dependencies_exist_and_wait_for_health(compose):
    services = compose["services"]
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but it has no health check"
            if cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot step and must not restart"


def test_published_host_ports_are_unique(compose):
    host_ports = [str(p).split(":")[0] for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))


def test_clickhouse_dsn_names_the_compose_database(compose):
    ch = compose["services"]["clickhouse"]["environment"]
    dsn = compose["services"]["collector"]["environment"]["LW_ANALYTICS_DSN"]
    assert dsn.startswith("http://") and dsn.endswith(f"@clickhouse:8123/{ch['CLICKHOUSE_DB']}")


def test_the_three_broker_file_runs_three_voters_of_one_cluster(three_brokers):
    kafka = {name: svc["environment"] for name, svc in three_brokers["services"].items() if svc.get("image", "").startswith("apache/kafka")}
    assert sorted(kafka) == ["kafka", "kafka-2", "kafka-3"]
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in kafka.items()}
    assert len(voters) == 3
    for name, env in kafka.items():
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
    cluster_ids = {env["CLUSTER_ID"] for env in kafka.values()}
    assert len(cluster_ids) == 1 and len(cluster_ids.pop()) == 22
    assert {"kafka-2-data", "kafka-3-data"} <= set(three_brokers["volumes"])


def test_with_three_brokers_every_service_knows_them_all_and_replicates_three_times(three_brokers):
    for name, svc in lightwire_services(three_brokers).items():
        env = svc["environment"]
        assert set(env["LW_KAFKA_BOOTSTRAP"].split(",")) == {"kafka:9092", "kafka-2:9092", "kafka-3:9092"}, name
        settings = settings_class(svc["command"])(topic_replication=env["LW_TOPIC_REPLICATION"],
                                                  topic_min_insync_replicas=env["LW_TOPIC_MIN_INSYNC_REPLICAS"])
        assert (settings.replication().factor, settings.replication().min_insync) == (3, 2), name
    assert set(three_brokers["services"]["topic-init"]["depends_on"]) >= {"kafka", "kafka-2", "kafka-3"}
