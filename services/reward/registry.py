"""Finding reward functions and attributors by name: built-ins first, then the entry point groups
`lightwire.rewards` and `lightwire.attributors`, so a package adds its own without touching Lightwire.

Pipelines are configured as text: "name[:weight],..." for the default, and per task type
"type=name[:weight]+name[:weight];type2=...".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from services.reward.attribution import BUILTIN_ATTRIBUTORS, Attributor
from services.reward.rewards import BUILTIN_REWARDS, RewardFn

REWARD_GROUP = "lightwire.rewards"
REMOTE_PREFIX = "remote:"
ATTRIBUTOR_GROUP = "lightwire.attributors"


class UnknownPlugin(LookupError):
    pass


def _load(name: str, builtins: dict, group: str, kind: str):
    if name in builtins:
        return builtins[name]
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    available = sorted(set(builtins) | {ep.name for ep in entry_points(group=group)})
    raise UnknownPlugin(f"no {kind} named {name!r}; available: {', '.join(available)}")


def load_reward(name: str) -> RewardFn:
    return _load(name, BUILTIN_REWARDS, REWARD_GROUP, "reward function")


def load_attributor(name: str) -> Attributor:
    return _load(name, BUILTIN_ATTRIBUTORS, ATTRIBUTOR_GROUP, "attributor")


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


@dataclass(frozen=True)
class RewardPipeline:
    default: tuple[RewardSpec, ...]
    per_task: dict[str, tuple[RewardSpec, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, default: str, per_task: str = "") -> "RewardPipeline":
        tasks = {}
        for entry in (e.strip() for e in per_task.split(";")):
            if not entry:
                continue
            task_type, sep, specs = entry.partition("=")
            if not sep:
                raise ValueError(f"per-task rewards must look like 'type=name[:w]+name[:w]', got {entry!r}")
            tasks[task_type.strip()] = parse_specs(specs, "+")
        pipeline = cls(parse_specs(default), tasks)
        for specs in (pipeline.default, *tasks.values()):
            for spec in specs:
                if not spec.name.startswith(REMOTE_PREFIX):
                    load_reward(spec.name)  # fail at start-up, not on the first rollout
        return pipeline

    def for_task(self, task_type: str) -> tuple[RewardSpec, ...]:
        return self.per_task.get(task_type, self.default)

    def names(self) -> set[str]:
        return {s.name for specs in (self.default, *self.per_task.values()) for s in specs}


def resolve_rewards(pipeline: RewardPipeline, remote_target: str = "", remote_timeout_s: float = 5.0) -> dict[str, RewardFn]:
    """Every function a pipeline names; "remote:<name>" is scored by the Reward service at `remote_target`."""
    from services.reward.remote import RemoteReward

    functions: dict[str, RewardFn] = {}
    for name in sorted(pipeline.names()):
        if name.startswith(REMOTE_PREFIX):
            if not remote_target:
                raise ValueError(f"{name} needs the Reward service's address: set LW_COLLECTOR_REMOTE_REWARD_TARGET")
            functions[name] = RemoteReward(name.removeprefix(REMOTE_PREFIX), remote_target, remote_timeout_s)
        else:
            functions[name] = load_reward(name)
    return functions


def load_attributors(text: str) -> list[Attributor]:
    names = list(BUILTIN_ATTRIBUTORS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    return [load_attributor(n) for n in names]
