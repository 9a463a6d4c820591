"""Credit assignment: how a rollout's reward is spread over its steps (one value per transition), chosen by name."""

from __future__ import annotations

from collections.abc import Sequence


def identical(final: float, steps: int, **_) -> list[float]:
    """Every step gets the final reward."""
    return [final] * steps


def discounted(final: float, steps: int, gamma: float = 1.0, **_) -> list[float]:
    """The last step gets the final reward, each earlier one gamma times the next."""
    return [final * gamma ** (steps - 1 - i) for i in range(steps)]


def per_step(final: float, steps: int, step_rewards: Sequence[float | None] = (), **_) -> list[float]:
    """Each step's own reward where one was reported, plus the final reward on the last step."""
    rewards = [float(r or 0.0) for r in step_rewards] + [0.0] * (steps - len(step_rewards))
    if steps:
        rewards[-1] += final
    return rewards[:steps]


STRATEGIES = {"identical": identical, "discounted": discounted, "per_step": per_step}


def assign(strategy: str, final: float, steps: int, **kwargs) -> list[float]:
    try:
        fn = STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown credit assignment {strategy!r}; choose one of {', '.join(STRATEGIES)}") from None
    return fn(final, steps, **kwargs)


def selected(agent_name: str, train_agents: frozenset[str]) -> bool:
    """Multi-agent rollouts: train only the chosen agents' calls (all when none are chosen)."""
    return not train_agents or agent_name in train_agents
