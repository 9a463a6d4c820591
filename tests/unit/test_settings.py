import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from lightwire.settings import CommonSettings
from lightwire.tools.stack.settings import StackSettings


def test_settings_read_the_lw_prefix(monkeypatch):
    monkeypatch.setenv("LW_KAFKA_BOOTSTRAP", "127.0.0.1:1234")
    monkeypatch.setenv("LW_STATE_DIR", "/tmp/x")
    monkeypatch.setenv("LW_KAFKA_PORT", "19999")
    s = StackSettings()
    assert s.kafka_bootstrap == "127.0.0.1:1234"
    assert s.state_dir == Path("/tmp/x")
    assert s.bootstrap == "127.0.0.1:19999"


def test_embedded_analytics_dsn_lies_under_the_state_dir():
    s = CommonSettings(state_dir=Path("/tmp/lw-state"))
    assert s.resolved_analytics_dsn() == "chdb:///tmp/lw-state/analytics"
    assert CommonSettings(analytics_dsn="http://ch:8123").resolved_analytics_dsn() == "http://ch:8123"


def test_bad_values_are_rejected(monkeypatch):
    monkeypatch.setenv("LW_KAFKA_PORT", "not-a-port")
    with pytest.raises(ValidationError):
        StackSettings()


def all_settings() -> list[type]:
    from lightwire.services.collector.settings import CollectorSettings
    from lightwire.services.dashboard.settings import DashboardSettings
    from lightwire.services.gateway.settings import GatewaySettings
    from lightwire.services.inference.settings import InferenceSettings
    from lightwire.services.reward.settings import RewardSettings
    from lightwire.services.trainer.settings import TrainerSettings
    from lightwire.tools.tasks.settings import TaskSettings

    return [CommonSettings, StackSettings, TaskSettings, CollectorSettings, DashboardSettings, GatewaySettings, InferenceSettings,
            RewardSettings, TrainerSettings]


def test_every_field_is_documented():
    for cls in all_settings():
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def readme_settings() -> set[str]:
    """The variables the README's configuration table names (a row may name several)."""
    table = (Path(__file__).parents[2] / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {v for line in table.splitlines() if line.startswith("| `LW_") for v in re.findall(r"`(LW_[A-Z0-9_]+)`", line.split(" | ")[0])}


def test_the_readme_table_names_real_settings_and_the_learning_policies():
    fields = {f"LW_{name.upper()}" for cls in all_settings() for name in cls.model_fields}
    documented = readme_settings()
    assert documented - fields == set(), "README rows without a setting"
    # The policies of what is learnt from (issue 17): each changes training, so each has its row.
    assert {"LW_COLLECTOR_UNIFORM_GROUPS", "LW_COLLECTOR_CREDIT", "LW_COLLECTOR_CREDIT_PENALTY", "LW_COLLECTOR_CREDIT_ERROR_CLASSES",
            "LW_TASK_CURRICULUM", "LW_TASK_CURRICULUM_FLOOR", "LW_TASK_CURRICULUM_SUCCESS"} <= documented


def test_comma_lists_are_read_once_the_same_way_everywhere(monkeypatch):
    from lightwire.services.reward.settings import RewardSettings

    monkeypatch.setenv("LW_REWARD_FUNCTIONS", " exact_match, brevity,,")
    assert RewardSettings().reward_functions == ("exact_match", "brevity")
    assert RewardSettings(reward_functions="").reward_functions == ()


def test_log_level_is_one_of_the_logging_levels(monkeypatch):
    monkeypatch.setenv("LW_LOG_LEVEL", "warning")
    assert CommonSettings().log_level == "WARNING"
    monkeypatch.setenv("LW_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="DEBUG"):
        CommonSettings()
