"""InferenceSettings: documented fields, defaults the brief fixes, rules checked at construction."""

import pytest
from pydantic import ValidationError

from lightwire.services.inference.settings import InferenceSettings


def test_every_field_is_documented():
    for name, field in InferenceSettings.model_fields.items():
        assert field.description, f"InferenceSettings.{name} has no description"


def test_defaults():
    s = InferenceSettings()
    assert (s.inference_engine, s.grpc_target(), s.inference_ops_port, s.inference_max_batch) == ("hf", "127.0.0.1:50051", 8101, 16)
    assert s.served_name() == s.inference_model
    assert s.listen_ports() == {50051, 8101}
    assert s.health_url().endswith(":8101/healthz")


def test_env_and_validation(monkeypatch):
    monkeypatch.setenv("LW_INFERENCE_MAX_BATCH", "4")
    assert InferenceSettings().inference_max_batch == 4
    monkeypatch.setenv("LW_INFERENCE_MAX_BATCH", "0")
    with pytest.raises(ValidationError, match="LW_INFERENCE_MAX_BATCH"):
        InferenceSettings()
    with pytest.raises(ValidationError):
        InferenceSettings(inference_engine="tgi")
