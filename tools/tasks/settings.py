"""Settings of the task driver (env prefix LW_, e.g. LW_TASK_CURRICULUM): how it chooses the problems it publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lightwire.settings import CommonSettings


class TaskSettings(CommonSettings):
    task_curriculum: Literal["off", "on"] = Field(
        "off",
        description="'on' draws training problems by their observed success rate (tools/tasks/curriculum.py): weight "
        "max(floor, p(1 - p)), most often those solved about half the time, whose groups carry GRPO signal; 'off' "
        "takes them in turn.",
    )
    task_curriculum_floor: float = Field(
        0.1, ge=0.0, le=0.25,
        description="Least weight of a problem under the curriculum (p(1 - p) is at most 0.25), so problems that look "
        "always or never solved are still drawn now and then.",
    )
    task_curriculum_success: float = Field(
        0.5, description="Under the curriculum, a rollout whose reward is at least this counts as a success of its problem.")
