"""Gateway settings and API keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lightwire.runtime.api_keys import ApiKeys
from lightwire.services.gateway.settings import GatewaySettings


def test_defaults_and_derived_values(tmp_path):
    s = GatewaySettings(state_dir=tmp_path)
    assert (s.gateway_http_port, s.gateway_grpc_port, s.gateway_upstream) == (8000, 50052, "grpc://127.0.0.1:50051")
    assert s.public_url() == "http://127.0.0.1:8000" and s.spool_dir() == tmp_path / "gateway-spool"
    assert s.model_aliases() == {"default"}


@pytest.mark.parametrize("bad", [{"gateway_max_attempts": 0}, {"gateway_heartbeat_timeout_s": 1, "gateway_heartbeat_interval_ms": 2000},
                                 {"gateway_task_prefetch": 0}, {"gateway_upstream": " "}])
def test_contradictions_are_refused(bad):
    with pytest.raises(ValidationError):
        GatewaySettings(**bad)


def test_api_keys():
    assert GatewaySettings(api_keys=" a, b ,").api_keys == ("a", "b")
    keys = ApiKeys(GatewaySettings(api_keys=" a, b ,").api_keys)
    assert keys.allows("Bearer a") and keys.allows("bearer b") and not keys.allows("Bearer c") and not keys.allows(None)
    assert keys.allows_grpc((("authorization", "Bearer b"),)) and not keys.allows_grpc(())
    assert ApiKeys(()).allows(None) and ApiKeys(()).open
