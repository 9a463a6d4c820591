"""Turns a complete (or timed-out) rollout's state into its Trajectory: attribution, rewards, credit, transitions."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from lightwire.v1 import collector_pb2, events_pb2
from services.collector import rollout_state
from services.collector.settings import CollectorSettings
from services.reward import credit, trajectory_builder
from services.reward.attribution import Attributor, attribute_all
from services.reward.registry import RewardPipeline, load_attributors, resolve_rewards
from services.reward.rollout_view import rollout_view

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrajectoryFinalizer:
    pipeline: RewardPipeline
    attributors: tuple[Attributor, ...]
    functions: dict
    credit: str = "identical"
    gamma: float = 1.0
    merge_turns: bool = True
    train_agents: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: CollectorSettings) -> "TrajectoryFinalizer":
        credit.assign(settings.collector_credit, 0.0, 0)  # an unknown strategy fails at start-up
        pipeline = RewardPipeline.parse(settings.collector_rewards, settings.collector_task_rewards)
        return cls(
            pipeline=pipeline,
            functions=resolve_rewards(pipeline, settings.collector_remote_reward_target, settings.collector_remote_reward_timeout_s),
            attributors=tuple(load_attributors(settings.collector_attributors)),
            credit=settings.collector_credit,
            gamma=settings.collector_gamma,
            merge_turns=settings.collector_merge_turns,
            train_agents=frozenset(a.strip() for a in settings.collector_train_agents.split(",") if a.strip()),
        )

    def __call__(self, state: collector_pb2.RolloutState, timed_out: bool) -> tuple[events_pb2.Trajectory, dict[str, float]]:
        c = rollout_state.contents(state)
        task = c.started.task if c.started else events_pb2.Task()
        view = rollout_view(state.rollout_id, task, c.calls, c.spans, c.rewards, c.feedback, c.finished, timed_out)
        attributions = attribute_all(view, self.attributors)
        components = self._rewards(view, attributions)
        reward = sum(components[s.name] * s.weight for s in self.pipeline.for_task(task.task_type) if s.name in components)

        trained_calls = [call for call in c.calls if credit.selected(call.agent_name, self.train_agents)]
        built = trajectory_builder.build(trained_calls, merge=self.merge_turns)
        step_rewards = self._step_rewards(trained_calls, built.transitions, view.step_rewards)
        per_transition = credit.assign(self.credit, reward, len(built.transitions), gamma=self.gamma, step_rewards=step_rewards)
        for transition, value in zip(built.transitions, per_transition):
            transition.reward = value
        versions = [call.model_version for call in c.calls if call.model_version]
        trajectory = events_pb2.Trajectory(
            rollout_id=state.rollout_id, task_id=task.task_id, group_id=task.group_id, task_type=task.task_type, split=task.split,
            status=view.status, transitions=built.transitions, reward=reward, reward_components=components,
            attributions=attributions, min_model_version=min(versions, default=0), max_model_version=max(versions, default=0),
            num_calls=len(c.calls), merge_mismatches=built.mismatches, group_size=task.group_size,
        )
        return trajectory, components

    def _rewards(self, view, attributions: list[events_pb2.Attribution]) -> dict[str, float]:
        context = {
            "reference": [view.reference], "agent_rewards": [list(view.agent_rewards)], "feedback": [list(view.feedback)],
            "calls": [list(view.calls)], "spans": [list(view.spans)], "attributions": [[a.error_class for a in attributions]],
            "task_type": view.task_type, "rollout_id": view.rollout_id,
        }
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

    @staticmethod
    def _step_rewards(calls, transitions, by_call: dict[str, float]) -> list[float]:
        """Per-step rewards reported for calls, summed per transition (merged calls share one)."""
        ordered = [by_call.get(call.call_id, 0.0) for call in calls if call.completions and call.completions[0].token_ids]
        out, i = [], 0
        for t in transitions:
            out.append(sum(ordered[i:i + t.merged_calls]))
            i += t.merged_calls
        return out
