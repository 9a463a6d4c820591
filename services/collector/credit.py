"""Credit assignment: how a rollout's reward is spread over its steps (one value per transition), chosen by name;
and, for multi-agent rollouts, which agents' calls are trained at all."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import TypeVar

CreditFn = Callable[..., list[float]]


def identical(final: float, steps: int, **_) -> list[float]:
    """Every step gets the final reward (GRPO's usual choice: the group advantage does the rest)."""
    return [float(final)] * steps


def discounted(final: float, steps: int, gamma: float = 1.0, **_) -> list[float]:
    """The last step gets the final reward, each earlier one gamma times the next: step i gets gamma^(steps-1-i) * final."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    return [final * gamma ** (steps - 1 - i) for i in range(steps)]


def per_step(final: float, steps: int, step_rewards: Sequence[float | None] = (), include_final: bool = True, **_) -> list[float]:
    """Each step's own reward where one was reported (None or missing counts 0), plus, unless turned off, the final
    reward on the last step."""
    if len(step_rewards) > steps:
        raise ValueError(f"{len(step_rewards)} step rewards for {steps} steps")
    rewards = [float(r or 0.0) for r in step_rewards] + [0.0] * (steps - len(step_rewards))
    if steps and include_final:
        rewards[-1] += final
    return rewards


def attributed(final: float, steps: int, blamed_steps: Collection[int] = (), failed: bool = False, penalty: float = -1.0,
               **_) -> list[float]:
    """A failed rollout's blamed steps (those holding a call an error was attributed to: a tool exception, a tool call
    that did not parse, a loop, an overflowing context) get `penalty`, every other step the final reward.

    The final reward of a failed rollout says only that it failed; the attribution says where. GRPO then pushes the
    blamed call down on its own rather than every call of the rollout alike. A rollout that did not fail, or has no
    blamed step, is credited as `identical`: an error it recovered from was part of a path that worked.
    """
    rewards = identical(final, steps)
    if failed:
        for step in blamed_steps:
            if not 0 <= step < steps:
                raise ValueError(f"blamed step {step} of {steps} steps")
            rewards[step] = float(penalty)
    return rewards


STRATEGIES: dict[str, CreditFn] = {"identical": identical, "discounted": discounted, "per_step": per_step, "attributed": attributed}


def assign(strategy: str, final: float, steps: int, **kwargs) -> list[float]:
    """One reward per step by the named strategy; kwargs reach the strategy (gamma, step_rewards, include_final,
    blamed_steps, failed, penalty)."""
    try:
        fn = STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown credit assignment {strategy!r}; choose one of {', '.join(STRATEGIES)}") from None
    return fn(final, steps, **kwargs)


def step_rewards_by_call(call_ids_per_step: Sequence[Sequence[str]], by_call: Mapping[str, float]) -> list[float]:
    """Per-step rewards reported per call_id, summed per step (a merged transition holds several calls)."""
    return [sum(by_call.get(call_id, 0.0) for call_id in call_ids) for call_ids in call_ids_per_step]


def blamed_steps(call_ids_per_step: Sequence[Sequence[str]], blamed_calls: Collection[str]) -> list[int]:
    """The steps holding a blamed call (a merged transition holds several calls: one blamed call blames it), in order."""
    return [step for step, call_ids in enumerate(call_ids_per_step) if any(call_id in blamed_calls for call_id in call_ids)]


def selected(agent_name: str, train_agents: Iterable[str]) -> bool:
    """Multi-agent rollouts: train only the chosen agents' calls (all when none are chosen).

    Choices are names or shell patterns over them, so a tag written into the name selects a family ("solver*",
    "*:planner").
    """
    chosen = tuple(train_agents)
    return not chosen or any(fnmatchcase(agent_name, pattern) for pattern in chosen)


T = TypeVar("T")


def select_agents(items: Iterable[T], train_agents: Iterable[str], agent_of: Callable[[T], str] = lambda x: x.agent_name) -> list[T]:
    """The items (calls, transitions) made by a chosen agent, in their order."""
    chosen = tuple(train_agents)
    return [item for item in items if selected(agent_of(item), chosen)]
