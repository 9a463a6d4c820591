"""Demonstration selection through the real stack: explore, read back what worked, try candidate prompt versions on a
validation minibatch, serve the best.

1. Explore: train problems run with the agent's own prompt (version 0); the rollouts that cleared the reward
   threshold are read back from the collector's read API.
2. Candidates: seeded sets of their exchanges, each announced on lw.prompts as a version not yet serving.
3. Validation: every candidate, and the agent's own prompt, on the same train problems (none of them explored),
   greedily, each rollout asking for its version by task metadata.
4. Again from 1 for each further round, exploring under the best version so far (bootstrapping: it succeeds more
   often, so it finds more exchanges worth showing).
5. The best (if it beats the agent's own prompt) is announced again, serving, with its score.
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
    # Greedy, one rollout per problem: the bare demo agent is right on about one problem in ten greedily and one in
    # twenty at 0.7 (0 of 48 rollouts at 1.0 in a run), so its best decoding finds the most to learn from.
    explore_problems: int = 32
    explore_group: int = 1
    explore_temperature: float = 0.0
    rounds: int = 2
    min_reward: float = 1.0
    demonstrations: int = 2
    candidates: int = 4
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
    """Run the whole selection; `train` holds problems with a `task_id`, `spec` makes each one a task.

    Validation problems come first in `train` (every round scores on the same ones), then each round's explored ones:
    round 1 explores with the agent's own prompt, every later round with the best version so far, whose rollouts
    succeed more often (its demonstrations are not part of what the agent sent, so the exchanges read back are the
    agent's own).
    """
    t0 = time.monotonic()
    spent = 0
    needed = config.validation_problems + config.rounds * config.explore_problems
    if len(train) < needed:
        raise ValueError(f"{len(train)} train problems are too few for {config.validation_problems} for validation and "
                         f"{config.rounds} rounds of {config.explore_problems} explored")
    validation = train[:config.validation_problems]
    own = Candidate(0, ())
    spent += await score(driver, [own], validation, spec, config.in_flight)
    pool: list[Demonstration] = []
    candidates: list[Candidate] = []
    leader = own
    for round_no in range(config.rounds):
        start = config.validation_problems + round_no * config.explore_problems
        explore = train[start:start + config.explore_problems]
        explored = await driver.run_keyed(((p.task_id, spec(p, "train", config.explore_temperature, leader.version), config.explore_group)
                                           for p in explore), config.in_flight)
        spent += sum(len(g.by_rollout) for g in explored.values())
        winners = [(rid, r) for g in explored.values() for rid, r in g.by_rollout.items() if r >= config.min_reward]
        for rollout_id, reward in winners:
            demo = demonstration_from_calls(await read_calls(read_api, rollout_id, 1), rollout_id, reward)
            if demo is not None:
                pool.append(demo)
        tried = {tuple(d.rollout_id for d in c.demonstrations) for c in candidates}
        sets = [s for s in candidate_sets(pool, config.demonstrations, config.candidates + len(tried), config.seed + round_no)
                if tuple(d.rollout_id for d in s) not in tried][:config.candidates]
        first = await versions.next_version(config.task_type)
        fresh = [Candidate(first + i, demos) for i, demos in enumerate(sets)]
        for c in fresh:
            await versions.announce(policy_of(config.task_type, c.version, c.demonstrations, serving=False, optimiser="demonstrations",
                                              parent=leader.version))
        await versions.wait_loaded(config.task_type, [c.version for c in fresh])
        progress(f"round {round_no + 1}: explored {len(explore)} problems x {config.explore_group} under prompt v{leader.version}: "
                 f"{len(winners)} rollouts reached reward {config.min_reward:g}; pool {len(pool)}; "
                 f"{len(fresh)} candidates ({', '.join(f'v{c.version}' for c in fresh) or 'none'})")
        spent += await score(driver, fresh, validation, spec, config.in_flight)
        for c in fresh:
            await versions.announce(policy_of(config.task_type, c.version, c.demonstrations, serving=False, optimiser="demonstrations",
                                              score=c.score, scored=len(c.rewards), parent=leader.version))
        candidates += fresh
        leader = best(candidates, own.rewards) or own
        progress(f"  validation ({len(validation)} problems, greedy): own prompt {own.score:.3f}; "
                 + ", ".join(f"v{c.version} {c.score:.3f}" for c in fresh) + f"; best so far v{leader.version}")
    chosen = leader if leader is not own else None
    if chosen is not None:
        await versions.announce(policy_of(config.task_type, chosen.version, chosen.demonstrations, serving=True, optimiser="demonstrations",
                                          score=chosen.score, scored=len(chosen.rewards)))
    return SelectionResult(candidates, own.rewards, chosen, pool, spent, time.monotonic() - t0)


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
