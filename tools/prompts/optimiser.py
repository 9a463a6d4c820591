"""Demonstration selection through the real stack: explore, read back what worked, try candidate prompt versions on a
validation minibatch, serve the best.

1. Explore: train problems run with the agent's own prompt (version 0) at a sampling temperature, several rollouts
   each; the rollouts that cleared the reward threshold are read back from the collector's read API.
2. Candidates: seeded sets of their exchanges, each announced on lw.prompts as a version not yet serving.
3. Validation: every candidate, and the agent's own prompt, on the same train problems (none of them explored),
   greedily, each rollout asking for its version by task metadata.
4. The best (if it beats the agent's own prompt) is announced again, serving, with its score.
Every candidate is announced with its score, so lw.prompts is the record of what was tried; the result is also
returned for the caller to write down. The rollouts it spends are counted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.topics import TopicNames
from lightwire.v1 import events_pb2
from lightwire.services.gateway.prompt_policies import VERSION_KEY
from lightwire.tools.prompts.candidates import Candidate, Demonstration, best, candidate_sets, demonstration_from_calls
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec


@dataclass(frozen=True)
class SelectionConfig:
    task_type: str
    # 12 problems x 4 rollouts at 1.0: the bare demo agent clears the threshold on about one rollout in ten.
    explore_problems: int = 12
    explore_group: int = 4
    explore_temperature: float = 1.0
    min_reward: float = 1.0
    demonstrations: int = 2
    candidates: int = 5
    validation_problems: int = 16
    in_flight: int = 32
    seed: int = 0


@dataclass
class SelectionResult:
    candidates: list[Candidate]
    baseline: dict[str, float]
    chosen: Candidate | None
    pool: list[Demonstration]
    rollouts: int
    seconds: float
    log: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "rollouts": self.rollouts, "seconds": round(self.seconds, 1), "pool": len(self.pool),
            "baseline_score": sum(self.baseline.values()) / len(self.baseline) if self.baseline else None,
            "chosen_version": self.chosen.version if self.chosen else 0,
            "candidates": [{"version": c.version, "score": c.score, "validation_problems": len(c.rewards), "system": c.system,
                            "demonstrations": [{"rollout_id": d.rollout_id, "reward": d.reward, "tool_calls": d.tool_calls,
                                                "messages": list(d.messages)} for d in c.demonstrations]}
                           for c in self.candidates],
        }


class PromptVersions:
    """Announces prompt versions on lw.prompts and waits until the gateway serves them."""

    def __init__(self, producer: EventProducer, names: TopicNames, gateway_health_url: str, source: str = "prompt-optimiser"):
        self.producer = producer
        self.names = names
        self.health_url = gateway_health_url
        self.source = source

    async def announce(self, policy: events_pb2.PromptPolicy) -> None:
        policy.created_unix_ms = policy.created_unix_ms or int(time.time() * 1000)
        # A fresh event id per announcement: a candidate announced again as serving is a new record of its key.
        event = codec.make_event(self.source, prompt_policy=policy)
        await self.producer.send(self.names.prompts, f"{policy.task_type}/{policy.version}", event)

    async def loaded(self, task_type: str) -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(self.health_url)).json().get("prompt_versions", {}).get(task_type, [])

    async def wait_loaded(self, task_type: str, versions: list[int], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not set(versions) <= set(await self.loaded(task_type)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not load prompt versions {versions} of {task_type!r} within {timeout_s:g}s "
                                   "(is LW_GATEWAY_PROMPT_TASK_TYPES set? see lw.dead-letter)")
            await asyncio.sleep(0.3)

    async def next_version(self, task_type: str) -> int:
        return max(await self.loaded(task_type), default=0) + 1


def policy_of(task_type: str, version: int, demos: tuple[Demonstration, ...], *, serving: bool, optimiser: str,
              score: float = 0.0, scored: int = 0, system: str = "", parent: int = 0) -> events_pb2.PromptPolicy:
    return events_pb2.PromptPolicy(
        task_type=task_type, version=version, system_mode="replace" if system else "keep", system=system, serving=serving,
        optimiser=optimiser, score=score, scored_rollouts=scored, parent_version=parent,
        demonstrations=[events_pb2.Demonstration(messages_json=d.messages_json(), source_rollout_id=d.rollout_id,
                                                 source_reward=d.reward) for d in demos],
    )


async def read_calls(client: httpx.AsyncClient, rollout_id: str, num_calls: int, timeout_s: float = 60) -> list[dict]:
    """A rollout's calls from the collector's read API, once the analytics hold all of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(f"/api/rollouts/{rollout_id}")
        if response.status_code == 200:
            found = response.json()
            expected = max(num_calls, (found.get("rollout") or [{}])[0].get("num_calls", 0) if found.get("rollout") else 0)
            if found["calls"] and len(found["calls"]) >= expected:
                return found["calls"]
        if time.monotonic() > deadline:
            return []
        await asyncio.sleep(0.5)


Spec = Callable[[object, str, float, int], TaskSpec]  # (problem, split, temperature, prompt version) -> task


async def select_demonstrations(config: SelectionConfig, driver: TaskDriver, versions: PromptVersions, read_api: httpx.AsyncClient,
                                train: list, spec: Spec, progress: Callable[[str], None] = lambda line: None) -> SelectionResult:
    """Run the whole selection; `train` holds problems with a `task_id`, `spec` makes each one a task."""
    t0 = time.monotonic()
    spent = 0
    explore, validation = train[:config.explore_problems], train[config.explore_problems:config.explore_problems + config.validation_problems]
    if len(validation) < config.validation_problems:
        raise ValueError(f"{len(train)} train problems are too few for {config.explore_problems} explored and "
                         f"{config.validation_problems} for validation")

    explored = await driver.run_keyed(((p.task_id, spec(p, "train", config.explore_temperature, 0), config.explore_group) for p in explore),
                                      config.in_flight)
    spent += sum(len(g.by_rollout) for g in explored.values())
    winners = [(rid, r) for g in explored.values() for rid, r in g.by_rollout.items() if r >= config.min_reward]
    progress(f"explored {len(explore)} problems x {config.explore_group}: {len(winners)} rollouts reached reward {config.min_reward:g}")
    pool = []
    for rollout_id, reward in winners:
        demo = demonstration_from_calls(await read_calls(read_api, rollout_id, 1), rollout_id, reward)
        if demo is not None:
            pool.append(demo)
    sets = candidate_sets(pool, config.demonstrations, config.candidates, config.seed)
    first = await versions.next_version(config.task_type)
    candidates = [Candidate(first + i, demos) for i, demos in enumerate(sets)]
    for c in candidates:
        await versions.announce(policy_of(config.task_type, c.version, c.demonstrations, serving=False, optimiser="demonstrations"))
    await versions.wait_loaded(config.task_type, [c.version for c in candidates])
    progress(f"{len(candidates)} candidate prompt versions from {len(pool)} demonstrations: "
             f"{', '.join(str(c.version) for c in candidates) or 'none'}")

    own = Candidate(0, ())
    spent += await score(driver, [own, *candidates], validation, spec, config.in_flight)
    baseline = own.rewards
    for c in candidates:
        await versions.announce(policy_of(config.task_type, c.version, c.demonstrations, serving=False, optimiser="demonstrations",
                                          score=c.score, scored=len(c.rewards)))
    chosen = best(candidates, baseline)
    if chosen is not None:
        await versions.announce(policy_of(config.task_type, chosen.version, chosen.demonstrations, serving=True, optimiser="demonstrations",
                                          score=chosen.score, scored=len(chosen.rewards)))
    base_score = sum(baseline.values()) / len(baseline) if baseline else float("nan")
    progress(f"validation ({len(validation)} problems, greedy): own prompt {base_score:.3f}; "
             + ", ".join(f"v{c.version} {c.score:.3f}" for c in candidates)
             + (f"; serving v{chosen.version}" if chosen else "; none beat the agent's own prompt"))
    return SelectionResult(candidates, baseline, chosen, pool, spent, time.monotonic() - t0)


async def score(driver: TaskDriver, candidates: list[Candidate], problems: list, spec: Spec, in_flight: int) -> int:
    """Every candidate on every problem, greedily, each rollout asking for its candidate's version (0: the agent's own
    prompt); fills each candidate's rewards and rollouts, returns the rollouts spent."""
    items = [((c.version, p.task_id), spec(p, "train", 0.0, c.version), 1) for c in candidates for p in problems]
    done = await driver.run_keyed(items, in_flight)
    by_version = {c.version: c for c in candidates}
    for (version, pid), group in done.items():
        by_version[version].rewards[pid] = group.rewards[0] if group.rewards else 0.0
        by_version[version].rollouts.update(group.by_rollout)
    return len(done)


@dataclass(frozen=True)
class RewriteConfig:
    task_type: str
    rounds: int = 1
    # Proposals the critic writes per beam member and round, and how many candidates the beam keeps.
    proposals: int = 3
    beam: int = 2
    failures_shown: int = 4
    validation_problems: int = 16
    critic_temperature: float = 0.9
    critic_max_tokens: int = 256
    in_flight: int = 32


async def rewrite_instructions(config: RewriteConfig, driver: TaskDriver, versions: PromptVersions, read_api: httpx.AsyncClient,
                               critic, critic_model: str, validation: list, spec: Spec, start: Candidate | None = None,
                               progress: Callable[[str], None] = lambda line: None) -> SelectionResult:
    """Critique and rewrite in a small beam: the critic (an openai.AsyncOpenAI client) reads each beam member's failed
    validation rollouts with their attributed errors and proposes instructions; each proposal, with the member's
    demonstrations, is announced as a candidate and scored on the same validation problems; the beam keeps the best.
    `start`: the version to improve (default the agent's own prompt), scored here if it has no rewards yet."""
    from lightwire.tools.prompts.critique import critique_messages, failure_from_rollout, keep_beam, parse_instructions, system_of

    t0 = time.monotonic()
    start = start or Candidate(0, ())
    spent = 0
    if not start.rewards:
        start.rewards, start.rollouts = {}, {}
        spent += await score(driver, [start], validation, spec, config.in_flight)
    beam, tried = [start], [start]
    next_version = await versions.next_version(config.task_type)
    for round_no in range(1, config.rounds + 1):
        proposed: list[Candidate] = []
        for member in beam:
            failed = [(rid, r) for rid, r in member.rollouts.items() if r < 1.0][:config.failures_shown]
            details = [(await read_api.get(f"/api/rollouts/{rid}"), r) for rid, r in failed]
            found = [(d.json(), r) for d, r in details if d.status_code == 200]
            failures = [f for f in (failure_from_rollout(d, r) for d, r in found) if f is not None]
            current = member.system or next((system_of(d) for d, _ in found), "")
            if not failures:
                continue
            reply = await critic.chat.completions.create(model=critic_model, messages=critique_messages(current, failures),
                                                         n=config.proposals, temperature=config.critic_temperature,
                                                         max_tokens=config.critic_max_tokens)
            for choice in reply.choices:
                text = parse_instructions(choice.message.content or "", current)
                if text is None or any(c.system == text for c in tried + proposed):
                    continue
                candidate = Candidate(next_version, member.demonstrations, system=text)
                next_version += 1
                proposed.append(candidate)
                await versions.announce(policy_of(config.task_type, candidate.version, candidate.demonstrations, serving=False,
                                                  optimiser="critique", system=text, parent=member.version))
        if not proposed:
            progress(f"critique round {round_no}: the critic proposed nothing usable")
            continue
        await versions.wait_loaded(config.task_type, [c.version for c in proposed])
        spent += await score(driver, proposed, validation, spec, config.in_flight)
        for c in proposed:
            await versions.announce(policy_of(config.task_type, c.version, c.demonstrations, serving=False, optimiser="critique",
                                              score=c.score, scored=len(c.rewards), system=c.system))
        tried += proposed
        beam = keep_beam(beam + proposed, config.beam)
        progress(f"critique round {round_no}: " + ", ".join(f"v{c.version} {c.score:.3f}" for c in proposed)
                 + f"; beam {', '.join(f'v{c.version}' for c in beam)}")
    top = keep_beam(tried, 1)[0]
    chosen = top if top is not start and top.score > start.score else None
    if chosen is not None:
        await versions.announce(policy_of(config.task_type, chosen.version, chosen.demonstrations, serving=True, optimiser="critique",
                                          score=chosen.score, scored=len(chosen.rewards), system=chosen.system))
    return SelectionResult([c for c in tried if c is not start], start.rewards, chosen, [], spent, time.monotonic() - t0)


def prompt_metadata(version: int) -> dict[str, str]:
    """Task metadata asking the gateway for one prompt version (0: the agent's own messages)."""
    return {VERSION_KEY: str(version)}
