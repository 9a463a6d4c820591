"""Reward service settings (env prefix LW_, e.g. LW_REWARD_PORT)."""

from __future__ import annotations

from pydantic import Field

from lightwire.settings import CommaList, ServiceSettings


class RewardSettings(ServiceSettings):
    reward_host: str = Field("127.0.0.1", description="Address the gRPC Reward service and its ops endpoints bind to.")
    reward_port: int = Field(50053, description="gRPC port of the Reward service.")
    reward_ops_port: int = Field(8103, description="Port of /healthz and /metrics.")
    reward_functions: CommaList = Field((), description="Comma-separated reward names this service scores; empty serves every registered one.")

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.reward_ops_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.reward_port, self.reward_ops_port}


Settings = RewardSettings
