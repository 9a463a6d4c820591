"""Turns a complete (or timed-out) rollout's state into its Trajectory: attribution, rewards, credit, transitions."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from lightwire.plugins.interface import Attributor, attribute_all, reward_context
from lightwire.plugins.registry import RewardPipeline, combine, resolve_attributors, resolve_rewards
from lightwire.plugins.rollout_view import rollout_view
from lightwire.services.collector import credit, rollout_state, trajectory_builder
from lightwire.services.collector.grouping import FAILED
from lightwire.services.collector.settings import DEFAULT_BLAMED_CLASSES, CollectorSettings
from lightwire.v1 import collector_pb2, events_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrajectoryFinalizer:
    pipeline: RewardPipeline
    attributors: dict[str, Attributor]
    functions: dict
    credit: str = "identical"
    gamma: float = 1.0
    merge_turns: bool = True
    train_agents: frozenset[str] = frozenset()
    credit_penalty: float = -1.0
    credit_error_classes: frozenset[str] = frozenset(DEFAULT_BLAMED_CLASSES)

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> "TrajectoryFinalizer":
        credit.assign(settings.collector_credit, 0.0, 0)  # an unknown strategy fails at start-up
        pipeline = RewardPipeline.parse(settings.collector_rewards, settings.collector_task_rewards, settings.collector_attributors)
        return cls(
            pipeline=pipeline,
            functions=resolve_rewards(pipeline, settings.collector_remote_reward_target, settings.collector_remote_reward_timeout_s),
            attributors=resolve_attributors(pipeline),
            credit=settings.collector_credit,
            gamma=settings.collector_gamma,
            merge_turns=settings.collector_merge_turns,
            train_agents=frozenset(settings.collector_train_agents),
            credit_penalty=settings.collector_credit_penalty,
            credit_error_classes=frozenset(settings.collector_credit_error_classes),
        )

    def __post_init__(self) -> None:
        # Per task type: the attributor callables, resolved once (the pipeline is fixed for the finalizer's life).
        object.__setattr__(self, "_attributors_by_task", {})

    def _attributors_for(self, task_type: str) -> list[Attributor]:
        found = self._attributors_by_task.get(task_type)
        if found is None:
            found = self._attributors_by_task[task_type] = [self.attributors[n] for n in self.pipeline.attributors_for(task_type)]
        return found

    def __call__(self, state: collector_pb2.RolloutState, timed_out: bool) -> tuple[events_pb2.Trajectory, dict[str, float]]:
        trajectory = events_pb2.Trajectory()
        return trajectory, self.fill(trajectory, state, timed_out)

    def fill(self, trajectory: events_pb2.Trajectory, state: collector_pb2.RolloutState, timed_out: bool) -> dict[str, float]:
        """Write the rollout's trajectory into `trajectory` (empty; e.g. an event's payload, so nothing is copied after)
        and return the function reward components."""
        c = rollout_state.contents(state)
        task = c.started.task if c.started else events_pb2.Task()
        view = rollout_view(state.rollout_id, task, c.calls, c.spans, c.rewards, c.feedback, c.finished, timed_out)
        attributions = attribute_all(view, self._attributors_for(task.task_type))
        components = self._rewards(view, attributions)
        reward = combine(components, self.pipeline.for_task(task.task_type))

        versions = [call.model_version for call in c.calls if call.model_version]
        trajectory.rollout_id = state.rollout_id
        trajectory.task_id = task.task_id
        trajectory.group_id = task.group_id
        trajectory.task_type = task.task_type
        trajectory.split = task.split
        trajectory.status = view.status
        trajectory.reward = reward
        trajectory.reward_components.update(components)
        trajectory.attributions.extend(attributions)
        trajectory.min_model_version = min(versions, default=0)
        trajectory.max_model_version = max(versions, default=0)
        trajectory.num_calls = len(c.calls)
        trajectory.group_size = task.group_size
        # Built in place in the trajectory: no copy of the token arrays afterwards.
        built = trajectory_builder.build(c.calls, merge=self.merge_turns, train_agents=self.train_agents, into=trajectory.transitions)
        trajectory.merge_mismatches = built.mismatches
        step_rewards = credit.step_rewards_by_call(built.call_ids, view.step_rewards)
        # Credit over the steps; the further completions of an n > 1 call share their step's (trajectory_builder.py).
        failed = view.status in FAILED  # failed, timed out or cancelled: 'attributed' blames a step of these only
        per_step = credit.assign(self.credit, reward, built.steps, gamma=self.gamma, step_rewards=step_rewards, failed=failed,
                                 blamed_steps=self._blamed_steps(c.calls, attributions, built.call_ids) if failed else (),
                                 penalty=self.credit_penalty)
        for transition, value in zip(built.transitions, built.per_transition(per_step)):
            transition.reward = value
        return components

    def _blamed_steps(self, calls, attributions: list[events_pb2.Attribution], call_ids_per_step: list[list[str]]) -> list[int]:
        """The steps holding a call an error of the blaming classes was attributed to (an attribution names its call by
        seq; step 0, before every call, blames none)."""
        seqs = {a.step for a in attributions if a.error_class in self.credit_error_classes}
        if not seqs:
            return []
        return credit.blamed_steps(call_ids_per_step, {call.call_id for call in calls if call.seq in seqs})

    def _rewards(self, view, attributions: list[events_pb2.Attribution]) -> dict[str, float]:
        context = reward_context(view, [a.error_class for a in attributions])
        components: dict[str, float] = {}
        for spec in self.pipeline.for_task(view.task_type):
            try:
                [value] = self.functions[spec.name]([view.final_prompt], [view.final_completion], **context)
            except Exception:  # a broken plug-in must not stop the stream: the component is left out, loudly
                log.exception("reward function failed", extra={"reward": spec.name, "rollout_id": view.rollout_id})
                continue
            if value is not None and math.isfinite(value):
                components[spec.name] = float(value)
        return components
