"""Dashboard settings (env prefix LW_, e.g. LW_DASHBOARD_PORT). API keys: LW_API_KEYS, the gateway's."""

from __future__ import annotations

from pydantic import Field, model_validator

from lightwire.settings import CommaList, ServiceSettings


class DashboardSettings(ServiceSettings):
    dashboard_host: str = Field("127.0.0.1", description="Address the dashboard (pages, its JSON API, /healthz, /metrics) binds to.")
    dashboard_port: int = Field(8300, description="Port of the dashboard.")
    dashboard_public_url: str = Field("", description="URL people open the dashboard at; default http://127.0.0.1:<port>.")
    dashboard_collector_url: str = Field(
        "http://127.0.0.1:8200", description="The collector's read API: every figure the dashboard shows comes from there "
        "(in embedded mode the collector is the one process that may open chDB).")
    dashboard_inference_urls: CommaList = Field(
        ("http://127.0.0.1:8101",), description="Comma-separated ops URLs of the inference replicas, asked for the version "
        "each serves now; empty leaves it to the calls in the analytics.")
    dashboard_trainer_url: str = Field(
        "http://127.0.0.1:8104", description="The trainer's ops URL, asked for its step and version; empty leaves it to the "
        "analytics.")
    dashboard_refresh_s: float = Field(2.0, description="How often an open page asks for fresh figures (live updates).")
    dashboard_upstream_timeout_s: float = Field(10.0, description="Longest wait for one answer of the collector's read API.")
    dashboard_probe_timeout_s: float = Field(0.5, description="Longest wait for an inference or trainer health answer.")

    @model_validator(mode="after")
    def _check(self) -> "DashboardSettings":
        if self.dashboard_refresh_s <= 0:
            raise ValueError("LW_DASHBOARD_REFRESH_S must be above 0")
        if not self.dashboard_collector_url.startswith(("http://", "https://")):
            raise ValueError(f"LW_DASHBOARD_COLLECTOR_URL must be an http(s) URL, got {self.dashboard_collector_url!r}")
        return self

    def public_url(self) -> str:
        return (self.dashboard_public_url or f"http://127.0.0.1:{self.dashboard_port}").rstrip("/")

    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.dashboard_port}


Settings = DashboardSettings
