"""Finding reward functions and attributors by name, in the entry point groups `lightwire.rewards` and
`lightwire.attributors`: the built-ins are registered there exactly as a third-party package registers its own.

Pipelines are configured as text: rewards "name[:weight],..." for the default and, per task type,
"type=name[:weight]+name[:weight];type2=..."; attributors "all" or "name,..." and, per task type, "type=name+name;...".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from lightwire.plugins.interface import Attributor, RewardFn

REWARD_GROUP = "lightwire.rewards"
ATTRIBUTOR_GROUP = "lightwire.attributors"
REMOTE_PREFIX = "remote:"
ALL = "all"


class UnknownPlugin(LookupError):
    pass


def _available(group: str) -> list[str]:
    return sorted({ep.name for ep in entry_points(group=group)})


def _load(name: str, group: str, kind: str):
    for ep in entry_points(group=group):
        if ep.name == name:
            try:
                fn = ep.load()
            except Exception as exc:  # an installed but broken plug-in: say which, and why
                raise UnknownPlugin(f"{kind} {name!r} is registered as {ep.value!r} but does not load: {exc!r}") from exc
            if not callable(fn):
                raise UnknownPlugin(f"{kind} {name!r} ({ep.value}) is not callable")
            return fn
    raise UnknownPlugin(f"no {kind} named {name!r}; available: {', '.join(_available(group)) or 'none (is lightwire installed?)'}")


def available_rewards() -> list[str]:
    return _available(REWARD_GROUP)


def available_attributors() -> list[str]:
    return _available(ATTRIBUTOR_GROUP)


def load_reward(name: str) -> RewardFn:
    return _load(name, REWARD_GROUP, "reward function")


def load_attributor(name: str) -> Attributor:
    return _load(name, ATTRIBUTOR_GROUP, "attributor")


@dataclass(frozen=True)
class RewardSpec:
    name: str
    weight: float = 1.0


def parse_specs(text: str, separator: str = ",") -> tuple[RewardSpec, ...]:
    specs = []
    for part in (p.strip() for p in text.split(separator)):
        if not part:
            continue
        # "name", "name:w", "remote:name" or "remote:name:w": a weight is the last part, if numeric.
        name, sep, weight = part.rpartition(":")
        if not sep or (name == "remote" and not _is_number(weight)):
            specs.append(RewardSpec(part))
            continue
        if not _is_number(weight):
            raise ValueError(f"reward weight of {name!r} must be a number, got {weight!r}")
        specs.append(RewardSpec(name.strip(), float(weight)))
    return tuple(specs)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _per_task(text: str, what: str) -> dict[str, str]:
    """ "type=a+b;type2=c" -> {"type": "a+b", "type2": "c"} """
    out = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        task_type, sep, value = entry.partition("=")
        if not sep or not task_type.strip():
            raise ValueError(f"per-task {what} must look like 'type=name+name', got {entry!r}")
        out[task_type.strip()] = value
    return out


def _attributor_names(text: str, separator: str) -> tuple[str, ...]:
    if text.strip() == ALL:
        return (ALL,)
    return tuple(n.strip() for n in text.split(separator) if n.strip())


@dataclass(frozen=True)
class RewardPipeline:
    """Which rewards (with weights) and which attributors apply, by default and per task type."""

    default: tuple[RewardSpec, ...]
    per_task: dict[str, tuple[RewardSpec, ...]] = field(default_factory=dict)
    attributors: tuple[str, ...] = (ALL,)
    task_attributors: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, default: str, per_task: str = "", attributors: str = ALL, task_attributors: str = "") -> "RewardPipeline":
        pipeline = cls(
            default=parse_specs(default),
            per_task={t: parse_specs(s, "+") for t, s in _per_task(per_task, "rewards").items()},
            attributors=_attributor_names(attributors, ","),
            task_attributors={t: _attributor_names(s, "+") for t, s in _per_task(task_attributors, "attributors").items()},
        )
        pipeline.validate()
        return pipeline

    def validate(self) -> None:
        """Every name resolves: fail at start-up, not on the first rollout. Remote rewards are checked by their service."""
        for specs in (self.default, *self.per_task.values()):
            for spec in specs:
                if not spec.name.startswith(REMOTE_PREFIX):
                    load_reward(spec.name)
        for names in (self.attributors, *self.task_attributors.values()):
            for name in names:
                if name != ALL:
                    load_attributor(name)

    def for_task(self, task_type: str) -> tuple[RewardSpec, ...]:
        return self.per_task.get(task_type, self.default)

    def attributors_for(self, task_type: str) -> tuple[str, ...]:
        names = self.task_attributors.get(task_type, self.attributors)
        return tuple(available_attributors()) if names == (ALL,) else names

    def names(self) -> set[str]:
        return {s.name for specs in (self.default, *self.per_task.values()) for s in specs}


def combine(components: dict[str, float], specs: tuple[RewardSpec, ...]) -> float:
    """The scalar reward: the weighted sum of the components that applied (a missing one counts 0)."""
    return sum(components[s.name] * s.weight for s in specs if s.name in components)


def resolve_rewards(pipeline: RewardPipeline, remote_target: str = "", remote_timeout_s: float = 5.0) -> dict[str, RewardFn]:
    """Every function a pipeline names; "remote:<name>" is scored by the Reward service at `remote_target`."""
    from lightwire.plugins.remote_reward import RemoteReward  # grpc only when a pipeline asks for it

    functions: dict[str, RewardFn] = {}
    for name in sorted(pipeline.names()):
        if name.startswith(REMOTE_PREFIX):
            if not remote_target:
                raise ValueError(f"{name} needs the Reward service's address: set LW_COLLECTOR_REMOTE_REWARD_TARGET")
            functions[name] = RemoteReward(name.removeprefix(REMOTE_PREFIX), remote_target, remote_timeout_s)
        else:
            functions[name] = load_reward(name)
    return functions


def resolve_attributors(pipeline: RewardPipeline) -> dict[str, Attributor]:
    """Every attributor any task type of the pipeline uses, by name."""
    names = {n for t in (None, *pipeline.task_attributors) for n in pipeline.attributors_for(t or "")}
    return {n: load_attributor(n) for n in sorted(names)}
