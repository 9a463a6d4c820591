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


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


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
