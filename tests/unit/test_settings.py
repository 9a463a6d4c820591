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


def test_every_field_is_documented():
    for cls in (CommonSettings, StackSettings):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


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
