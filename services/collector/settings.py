"""Collector settings (env prefix LW_, e.g. LW_COLLECTOR_PORT)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lightwire.error_classes import CONTEXT_OVERFLOW, INVALID_TOOL_JSON, LOOP, TAXONOMY, TOOL_EXCEPTION
from lightwire.settings import CommaList, ServiceSettings

DEFAULT_BLAMED_CLASSES = (TOOL_EXCEPTION, INVALID_TOOL_JSON, LOOP, CONTEXT_OVERFLOW)


class CollectorSettings(ServiceSettings):
    collector_host: str = Field("127.0.0.1", description="Address of the read API, /healthz and /metrics.")
    collector_port: int = Field(8200, description="Port of the read API, /healthz and /metrics.")
    collector_app_id: str = Field("", description="Faust application id (consumer group, changelog topic names); default <topic_prefix>collector.")
    collector_batch_max: int = Field(
        5000, description="Most events handled per micro-batch (one table write per rollout per batch); a larger fetch "
        "is split, and its rest starts the next micro-batch.")
    collector_batch_within_s: float = Field(0.1, description="Longest wait to fill a micro-batch.")
    collector_session_timeout_s: float = Field(
        10.0, ge=6.0, le=300.0,
        description="How long the consumer group waits for a silent collector (killed, frozen) before its partitions move "
        "to a live one. Faust's default of 60 s stalled trajectories that long after a kill -9; the broker's minimum is 6 s.",
    )
    collector_rollout_timeout_s: float = Field(
        300.0, description="A rollout with no finish event, or missing calls, this long after its last event completes as timed out."
    )
    collector_feedback_grace_s: float = Field(
        0.0, description="How long a complete rollout waits for external feedback before its trajectory is released."
    )
    collector_released_retention_s: float = Field(
        3600.0, description="How long a released rollout's event ids are kept to recognise re-deliveries and late feedback."
    )
    collector_group_timeout_s: float = Field(600.0, description="How long a GRPO group may wait for its missing rollouts.")
    collector_group_timeout_policy: Literal["partial", "drop"] = Field(
        "partial",
        description="When a group times out: 'partial' trains on the members it has (if at least collector_min_group_size), "
        "'drop' discards it. Either way it is counted.",
    )
    collector_min_group_size: int = Field(2, description="Fewest members a partial group needs (GRPO needs a comparison).")
    collector_drop_failed: bool = Field(
        False, description="Leave failed and timed-out rollouts out of their group (by default they count with their reward)."
    )
    collector_uniform_groups: Literal["keep", "drop", "drop_unsolved"] = Field(
        "drop",
        description="A group whose rollouts all scored alike (every advantage zero: no GRPO gradient): 'drop' leaves it out "
        "of batches, which fill with groups that carry signal (dynamic sampling); 'keep' batches it. Either way it is "
        "counted (lw_collector_groups_total, /healthz). With a KL term (LW_TRAINER_KL_COEF) such a group still pulls "
        "towards the reference, which 'drop' gives up. 'drop_unsolved' (for LW_TRAINER_ALGORITHM=rft, which imitates "
        "solved rollouts) drops it unless every rollout reached collector_solved_reward.",
    )
    collector_solved_reward: float = Field(
        1.0, description="collector_uniform_groups=drop_unsolved: the reward at which a rollout counts as solved (rft's "
        "LW_TRAINER_RFT_MIN_REWARD).")
    collector_batch_groups: int = Field(2, description="Whole groups per training batch on lw.batches.")
    collector_merge_turns: bool = Field(True, description="Merge calls whose prompt extends the previous prompt+completion into one sequence.")
    collector_credit: str = Field("identical", description="Credit assignment: identical, discounted, per_step or attributed.")
    collector_gamma: float = Field(1.0, description="Discount for credit assignment 'discounted'.")
    collector_credit_penalty: float = Field(
        -1.0, description="Credit assignment 'attributed': the reward of a failed rollout's step whose call an error "
        "(of collector_credit_error_classes) was attributed to; its other steps get the final reward.")
    collector_credit_error_classes: CommaList = Field(
        DEFAULT_BLAMED_CLASSES,
        description="Credit assignment 'attributed': comma-separated error classes that blame their call (the policy's own "
        "mistakes); upstream errors, timeouts and agent crashes are not the call's doing and blame nothing by default.",
    )
    collector_train_agents: CommaList = Field((), description="Comma-separated agent names whose calls are trained; empty trains all.")
    collector_rewards: str = Field(
        "task_completion", description="Reward pipeline by default: comma-separated name[:weight] of registered reward functions."
    )
    collector_task_rewards: str = Field(
        "", description="Per task type: 'type=name[:w]+name[:w];type2=...' overrides collector_rewards for that task type."
    )
    collector_remote_reward_target: str = Field("", description="host:port of the gRPC Reward service that scores 'remote:<name>' rewards.")
    collector_remote_reward_timeout_s: float = Field(5.0, description="Longest wait for one remote score; past it the component is left out.")
    collector_attributors: str = Field("all", description="Comma-separated error attributors to run, or 'all'.")

    @model_validator(mode="after")
    def _check(self) -> "CollectorSettings":
        if self.collector_batch_groups < 1:
            raise ValueError("LW_COLLECTOR_BATCH_GROUPS must be at least 1")
        if self.collector_min_group_size < 1:
            raise ValueError("LW_COLLECTOR_MIN_GROUP_SIZE must be at least 1")
        unknown = sorted(set(self.collector_credit_error_classes) - set(TAXONOMY))
        if unknown:
            raise ValueError(f"LW_COLLECTOR_CREDIT_ERROR_CLASSES names {', '.join(unknown)}, not error classes; choose among "
                             f"{', '.join(TAXONOMY)}")
        return self

    def app_id(self) -> str:
        return self.collector_app_id or f"{self.topic_prefix}collector"

    def read_api_url(self) -> str:
        """Where this collector's read API and health answer on this machine."""
        return f"http://127.0.0.1:{self.collector_port}"

    def health_url(self) -> str:
        return f"{self.read_api_url()}/healthz"

    def listen_ports(self) -> set[int]:
        return {self.collector_port}


Settings = CollectorSettings
