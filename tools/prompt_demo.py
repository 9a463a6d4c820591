"""`lightwire demo --optimise prompt`: the demo agent with its bare instructions (no worked examples), improved by
prompt versions the gateway serves, with no change to the agent and no training.

Held-out problems are scored for each prompt version both greedily and at the sampling temperature, paired on the
same problems: the agent's own prompt (version 0), the hand-written worked examples announced as a prompt version
(the reference the last wave measured), and the version demonstration selection chose. The headline compares each
at its better decoding. Writes demo-results/prompt_versions.{csv,png} and prompt_selection.json.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lightwire.tools.demo import (DemoConfig, best_decoding, console, decoding_name, mean_and_se, paired_difference, run_agents,
                                  service_environment, write_csv)
from lightwire.tools.prompts.optimiser import RewriteConfig, SelectionConfig
from lightwire.tools.tasks.demo_tasks import demo_task


@dataclass
class PromptDemoConfig:
    model: str = "smollm2-135m-instruct"
    n_train: int = 400
    n_eval: int = 64
    seed: int = 0
    concurrency: int = 16
    # The sampled evaluation's temperature (the GRPO demo trains and evaluates at it).
    temperature: float = 0.7
    max_tokens: int = 48
    max_turns: int = 2
    # The hand-written worked examples as a prompt version, scored on the same problems: the bar to reach.
    reference: bool = True
    inference_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    selection: SelectionConfig = field(default_factory=lambda: SelectionConfig(task_type="arith"))
    # Critique and rewrite after the selection (rounds 0: off). The critic: any OpenAI-compatible base URL and model;
    # empty: the served model through this gateway.
    critique: RewriteConfig = field(default_factory=lambda: RewriteConfig(task_type="arith", rounds=0))
    critic_base_url: str = ""
    critic_model: str = "default"
    critic_api_key: str = ""
    out_dir: Path = Path("demo-results")


SERVICES = ["inference", "gateway", "collector"]


def run(config: PromptDemoConfig) -> list[dict]:
    import httpx

    from lightwire.examples.arith_agent import EXAMPLE, solve
    from lightwire.runtime.api_keys import bearer_header
    from lightwire.runtime.kafka import EventProducer
    from lightwire.services.collector.settings import CollectorSettings
    from lightwire.services.gateway.settings import GatewaySettings
    from lightwire.tools.prompts.candidates import Demonstration
    from lightwire.tools.prompts.optimiser import PromptVersions, policy_of, prompt_metadata, rewrite_instructions, select_demonstrations
    from lightwire.tools.stack.local_stack import LocalStack
    from lightwire.tools.stack.settings import StackSettings
    from lightwire.tools.tasks.arithmetic import generate
    from lightwire.tools.tasks.driver import TaskDriver, TaskSpec

    os.environ.update(service_environment(DemoConfig(model=config.model)))
    # No trainer runs beside inference here, so it gets every core (the GRPO demo gives each service one thread).
    os.environ.update({"LW_GATEWAY_PROMPT_TASK_TYPES": "arith", "LW_COLLECTOR_TASK_REWARDS": demo_task("arith").reward,
                       "OMP_NUM_THREADS": str(config.inference_threads)})
    started = time.monotonic()
    stack_settings = StackSettings()
    stack = LocalStack(stack_settings)
    with console.status("starting the stack: Kafka, inference, gateway, collector, dashboard"):
        report = stack.up(SERVICES)
    if report.dashboard_url:
        console.print(f"dashboard: [bold]{report.dashboard_url}[/] (every call with the prompt version it was served under)")
    names = stack_settings.topic_names()
    problems = generate(config.n_train, config.n_eval, config.seed)
    train = [p for p in problems if p.split == "train"]
    held_out = [p for p in problems if p.split == "eval"]
    stop = run_agents(functools.partial(solve, max_turns=config.max_turns, max_tokens=config.max_tokens, worked_examples=False),
                      config.concurrency)
    gateway = GatewaySettings()
    collector = CollectorSettings()

    def spec(p, split: str, temperature: float, version: int) -> TaskSpec:
        return TaskSpec(task_id=p.task_id, task_type="arith", input={"question": p.question}, reference={"answer": p.answer},
                        split=split, metadata={"temperature": str(temperature), **prompt_metadata(version)})

    decodings = (0.0, config.temperature)
    scores: dict[str, dict[float, dict[str, float]]] = {}  # label -> temperature -> problem -> reward
    labels: dict[str, int] = {}
    selection_summary: dict = {}

    async def evaluate(driver: TaskDriver, named: dict[str, int]) -> None:
        items = [((label, t, p.task_id), spec(p, "eval", t, version), 1) for label, version in named.items() for t in decodings for p in held_out]
        done = await driver.run_keyed(items, config.concurrency * 2)
        for (label, t, pid), group in done.items():
            scores.setdefault(label, {}).setdefault(t, {})[pid] = group.rewards[0] if group.rewards else 0.0
        labels.update(named)
        for label in named:
            console.print("  " + line(label))

    def line(label: str) -> str:
        parts = []
        for t in decodings:
            mean, se = mean_and_se(list(scores[label][t].values()))
            parts.append(f"{decoding_name(t)} {mean:.3f} ± {se:.3f}")
        return f"{label} (prompt v{labels[label]}): " + ", ".join(parts)

    async def main() -> None:
        async with TaskDriver(stack_settings.bootstrap, names, group_timeout_s=600) as driver, \
                EventProducer(stack_settings.bootstrap, "prompt-demo", dead_letter_topic=names.dead_letter) as producer, \
                httpx.AsyncClient(base_url=collector.read_api_url(), headers=bearer_header(collector.api_keys),
                                  timeout=30) as read_api:
            versions = PromptVersions(producer, names, gateway.health_url())
            named = {"agent's own prompt": 0}
            if config.reference:
                manual = await versions.next_version("arith")
                demos = (Demonstration(tuple(EXAMPLE[:4]), "", 1.0), Demonstration(tuple(EXAMPLE[4:]), "", 1.0))
                await versions.announce(policy_of("arith", manual, demos, serving=False, optimiser="manual"))
                await versions.wait_loaded("arith", [manual])
                named["hand-written examples"] = manual
            console.print(f"held-out: {len(held_out)} problems, each version greedy and at {config.temperature:g}")
            await evaluate(driver, named)
            console.print("demonstration selection:")
            result = await select_demonstrations(config.selection, driver, versions, read_api, train, spec,
                                                 progress=lambda text: console.print("  " + text))
            selection_summary.update(result.summary())
            if result.chosen is not None:
                await evaluate(driver, {"selected demonstrations": result.chosen.version})
            if config.critique.rounds:
                import openai

                console.print("critique and rewrite:")
                validation = train[:config.critique.validation_problems]  # the selection's validation problems
                critic = openai.AsyncOpenAI(base_url=config.critic_base_url or f"{gateway.public_url()}/v1", max_retries=0,
                                            api_key=config.critic_api_key or (gateway.api_keys[0] if gateway.api_keys else "none"))
                rewritten = await rewrite_instructions(config.critique, driver, versions, read_api, critic, config.critic_model,
                                                       validation, spec, start=result.chosen, progress=lambda text: console.print("  " + text))
                selection_summary["critique"] = rewritten.summary()
                if rewritten.chosen is not None:
                    await evaluate(driver, {"critique and rewrite": rewritten.chosen.version})

    t_opt = time.monotonic()
    try:
        asyncio.run(main())
    finally:
        stop.set()
    rows = report_rows(scores, labels, decodings)
    per_problem = {label: {decoding_name(t): by_p for t, by_p in by_t.items()} for label, by_t in scores.items()}
    write_outputs(config, rows, selection_summary, per_problem)
    console.print(f"wall time, stack start included: {time.monotonic() - started:.0f} s "
                  f"(evaluations and selection: {time.monotonic() - t_opt:.0f} s; selection alone "
                  f"{selection_summary.get('seconds', 0):.0f} s, {selection_summary.get('rollouts', 0)} rollouts)")
    return rows


def report_rows(scores: dict, labels: dict[str, int], decodings: tuple[float, ...]) -> list[dict]:
    """One row per prompt version and decoding, each paired against the agent's own prompt at its better decoding."""
    base_label = "agent's own prompt"
    base = scores[base_label][best_decoding(scores[base_label])]
    rows = []
    for label, by_t in scores.items():
        top = best_decoding(by_t)
        for t in decodings:
            mean, se = mean_and_se(list(by_t[t].values()))
            delta, delta_se = paired_difference(base, by_t[t])
            rows.append({"prompt": label, "version": labels[label], "decoding": decoding_name(t), "heldout_reward": mean, "stderr": se,
                         "vs_own_prompt_at_best": delta, "vs_stderr": delta_se, "best_decoding": t == top, "problems": len(by_t[t])})
    return rows


def write_outputs(config: PromptDemoConfig, rows: list[dict], selection: dict, per_problem: dict) -> None:
    from rich.table import Table

    config.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(config.out_dir / "prompt_versions.csv", rows, "prompt")
    (config.out_dir / "prompt_selection.json").write_text(json.dumps(
        {"config": {k: v for k, v in asdict(config).items() if k != "out_dir"}, "rows": rows, "selection": selection,
         "per_problem": per_problem}, indent=2, default=str))
    table = Table("prompt", "version", "decoding", "held-out reward", "± s.e.", "vs own prompt at its best (paired)", "± s.e.",
                  title="held-out reward by prompt version")
    for r in rows:
        table.add_row(r["prompt"], str(r["version"]), r["decoding"] + (" *" if r["best_decoding"] else ""), f"{r['heldout_reward']:.3f}",
                      f"{r['stderr']:.3f}", f"{r['vs_own_prompt_at_best']:+.3f}", f"{r['vs_stderr']:.3f}")
    console.print(table)
    console.print("* the version's better decoding")
    save_plot(config, rows)
    console.print(f"figures: {config.out_dir / 'prompt_versions.png'}, data: {config.out_dir / 'prompt_versions.csv'}, "
                  f"every candidate: {config.out_dir / 'prompt_selection.json'}")


def save_plot(config: PromptDemoConfig, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    decodings = list(dict.fromkeys(r["decoding"] for r in rows))
    width = 0.8 / max(len(decodings), 1)
    plt.figure(figsize=(7, 4))
    for j, d in enumerate(decodings):
        got = {r["prompt"]: r for r in rows if r["decoding"] == d}
        xs = [i + j * width for i in range(len(prompts))]
        plt.bar(xs, [got[p]["heldout_reward"] for p in prompts], width, yerr=[2 * got[p]["stderr"] for p in prompts], capsize=4, label=d)
    plt.xticks([i + width * (len(decodings) - 1) / 2 for i in range(len(prompts))], prompts)
    plt.ylabel("held-out reward (± 2 s.e.)")
    plt.title(f"prompt versions served by the gateway: {config.model}")
    plt.legend()
    plt.tight_layout()
    plt.savefig(config.out_dir / "prompt_versions.png", dpi=120)
    plt.close()
