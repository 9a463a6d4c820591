"""`lightwire demo`: the whole loop on the local stack. An agent solves a task's problems through the gateway (by
default the OpenAI-SDK agent on arithmetic word problems; `--task sql`, a LangGraph agent over SQLite); the collector
scores its trajectories; the trainer runs GRPO; inference reloads every new version; held-out reward is measured
for the base model and after evaluated versions. Writes a CSV and a PNG curve."""

from __future__ import annotations

import asyncio
import csv
import functools
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lightwire.tools.tasks.demo_tasks import DemoTask, demo_task

console = Console()
SERVICES = ["inference", "gateway", "collector", "trainer"]


@dataclass
class DemoConfig:
    model: str = "smollm2-135m-instruct"
    # Which task (tools/tasks/demo_tasks.py): its problems, reward and agent.
    task: str = "arith"
    # On the 2-core dev machine, with the stack's start: a step takes 40-80 s, an evaluation of 128 problems at two
    # decodings 6.5-7.5 minutes (runs F and H in the README: 28-30 minutes in all; the default now evaluates 96).
    steps: int = 8
    # 4 problems of 4 rollouts per step rather than 2 of 8: a problem's difficulty decides most of its group's rewards
    # (2 groups of 8 left 3 of 8 steps of a run with every reward 0), and an update from two problems leaned on them.
    group_size: int = 4
    groups_per_step: int = 4
    # Held-out evaluation: every `eval_every` steps on `n_eval` problems; 0: the task's own schedule (DemoTask), the
    # one that fits the 30 minutes on the dev machine.
    eval_every: int = 0
    n_train: int = 400
    n_eval: int = 0
    # A training step's 16 rollouts in one wave; inference decodes up to 16 sequences per batch.
    concurrency: int = 16
    seed: int = 0
    # Full fine-tuning of a 135M model: 1e-5-ish barely moves it in a handful of steps, and 1e-4 pushed it into a
    # degenerate reply within 4 steps in two runs of three.
    lr: float = 3e-5
    # 0.7: the base policy then calls its calculator on 84% of problems and is right on 28% (at 1.0: 46%, 8%), so
    # most groups hold both right and wrong answers, and GRPO has a gradient.
    temperature: float = 0.7
    # The held-out reward of the policy as it samples (the training temperature): the quantity GRPO maximises; 0 is
    # greedy. Several: every evaluated version is scored at each, on the same problems, and the headline compares
    # each version at its better decoding with the base model at its better one (`lightwire compare` does).
    eval_temperatures: tuple[float, ...] = (0.7,)
    # Per call and per rollout; None: the task's own (short replies keep a step fast on the CPU: a calculator call
    # is about 30 tokens, a SQL query 30-60).
    max_tokens: int | None = None
    max_turns: int | None = None
    # Torch threads per service. On a small shared CPU, OpenMP threads of the inference and trainer processes spin
    # against each other and everyone else's: one thread each decoded 4.5x faster than two on the 2-core dev machine.
    threads_per_service: int = 1
    # ...except the trainer, whose update runs while inference waits for the next batch: it gets every core.
    trainer_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    out_dir: Path = Path("demo-results")
    # What the trainer runs (LW_TRAINER_ALGORITHM) and any other trainer or collector setting, e.g. for rft.
    # rft: every run of it beat the base model at its best by more than grpo did in the same steps (README, runs A-F).
    algorithm: str = "rft"
    extra_env: dict[str, str] = field(default_factory=dict)
    # The base model's held-out scores (temperature -> problem -> reward) when already measured on these problems:
    # `lightwire compare` evaluates the base once for every algorithm.
    base_scores: dict[float, dict[str, float]] | None = None
    rows: list[dict] = field(default_factory=list)
    # Dynamic sampling with every step training: the collector drops groups whose rollouts all scored alike and the
    # driver replaces each, up to `max_groups_per_step` groups for a step's batch (tools/tasks/batch_fill.py). Off:
    # every group is batched and the trainer skips a batch without signal (runs 7-10 and A-D in the README).
    fill_batches: bool = True
    max_groups_per_step: int = 12
    # What each evaluated version did on the held-out problems, from the analytics (policy_behaviour).
    behaviour: list[dict] = field(default_factory=list)


def service_environment(config: DemoConfig) -> dict[str, str]:
    """What the demo's services are told (through the environment `stack up` passes on)."""
    return {
        "LW_INFERENCE_MODEL": config.model, "LW_TRAINER_MODEL": config.model, "LW_TRAINER_LR": str(config.lr),
        "LW_COLLECTOR_BATCH_GROUPS": str(config.groups_per_step), "LW_COLLECTOR_GROUP_TIMEOUT_S": "300",
        # The demo paces itself by one batch per step (it waits for the trainer's): a dropped uniform group would leave
        # the step's batch unfilled unless the driver replaces it (fill_batches); else they are kept, and the trainer
        # skips a batch without signal.
        # rft imitates every solved rollout, so a group solved by all its rollouts is kept for it (drop_unsolved): with
        # such groups dropped (run J) steps trained on half-solved problems only, and once subtraction was learnt the
        # policy subtracted in additions it had solved (0.67 -> 0.11 greedy), with nothing to hold it.
        "LW_COLLECTOR_UNIFORM_GROUPS": ("drop_unsolved" if config.algorithm == "rft" else "drop") if config.fill_batches else "keep",
        "LW_COLLECTOR_TASK_REWARDS": demo_task(config.task).reward,
        "LW_COLLECTOR_REWARDS": "task_completion", "LW_TRAINER_TEMPERATURE": str(config.temperature),
        "OMP_NUM_THREADS": str(config.threads_per_service), "LW_TRAINER_THREADS": str(config.trainer_threads),
        # Rows of about 600 tokens (prompt with the worked examples): a pass of 4 peaks at 7-8 GB of trainer memory.
        "LW_TRAINER_MICRO_BATCH": "4", "LW_TRAINER_ALGORITHM": config.algorithm, **config.extra_env,
    }


def mean_and_se(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return statistics.fmean(values), se


def paired_difference(base: dict[str, float], now: dict[str, float]) -> tuple[float, float]:
    """Mean and standard error of (now - base) over the problems both evaluations scored.

    Paired, because both evaluations see the same held-out problems: the per-problem difficulty cancels, so the
    standard error is that of the change, not of two independent means.
    """
    return mean_and_se([now[k] - base[k] for k in base.keys() & now.keys()])


def policy_behaviour(split: str = "eval") -> list[dict]:
    """What the policy did under each weight version and decoding on one split, as the collector's analytics have it
    (/api/behaviour, the dashboard's Training page): how often it called the calculator, ended on an 'Answer: <n>'
    line, ran out of tokens, its calls and tokens, its error rate."""
    import httpx

    from lightwire.runtime.api_keys import bearer_header
    from lightwire.services.collector.settings import CollectorSettings

    settings = CollectorSettings()
    found = httpx.get(f"{settings.read_api_url()}/api/behaviour", headers=bearer_header(settings.api_keys),
                      timeout=60).json()
    return [r for r in found["by_version"] if r["split"] == split]


def decoding_name(temperature: float) -> str:
    return "greedy" if temperature == 0 else f"t={temperature:g}"


def best_decoding(by_t: dict[float, dict[str, float]]) -> float:
    """The temperature whose mean is highest (the lower one on a tie)."""
    return max(by_t, key=lambda t: (sum(by_t[t].values()) / max(len(by_t[t]), 1), -t))


def run_agents(agent, concurrency: int, task_types: tuple[str, ...] = ("arith",)) -> threading.Event:
    """The agent as a lightwire-client Worker on its own thread and event loop; set the returned event to stop it."""
    from lightwire_client import Worker, WorkerConfig
    from lightwire.services.gateway.settings import GatewaySettings

    stop = threading.Event()
    worker = Worker(agent, WorkerConfig(target=f"127.0.0.1:{GatewaySettings().gateway_grpc_port}", concurrency=concurrency,
                                        task_types=task_types))

    def work() -> None:
        async def main() -> None:
            done = asyncio.Event()
            task = asyncio.create_task(worker.run(done))
            while not stop.is_set():
                await asyncio.sleep(0.2)
            done.set()
            await task

        asyncio.run(main())

    threading.Thread(target=work, daemon=True, name="demo-agents").start()
    return stop


def run_framework_agent(task: DemoTask, concurrency: int, max_turns: int, max_tokens: int, log_path: Path) -> Callable[[], None]:
    """The task's framework example, unchanged, in the frameworks virtualenv (built once, then reused), taking the
    task's type from the gateway's AgentHub; returns what stops it (SIGTERM: the worker finishes its rollouts)."""
    from lightwire.services.gateway.settings import GatewaySettings
    from lightwire.tools.stack.framework_venv import QUIET_ENV, ensure_venv

    with console.status("the frameworks virtualenv (built once, then reused)"):
        python = ensure_venv("frameworks")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    proc = subprocess.Popen(_with_parent(python, [str(task.agent_script), "--target", f"127.0.0.1:{GatewaySettings().gateway_grpc_port}",
                                          "--task-type", task.task_type, "--concurrency", str(concurrency),
                                          "--max-turns", str(max_turns), "--max-tokens", str(max_tokens)]),
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV}, cwd=task.agent_script.parent)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    return stop


# Run before the agent's script in its own (single-threaded) interpreter, then exec'd over: on Linux the kernel
# sends the agent SIGTERM when the demo dies, even by SIGKILL, which no handler of ours sees. A preexec_fn would do
# the same from a forked copy of this multi-threaded process, where a lock another thread held can deadlock it.
_DIE_WITH_PARENT = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM\n"
                    "sys.exit(1) if os.getppid() != int(sys.argv[1]) else os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")


def _with_parent(python: Path, argv: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return [str(python), *argv]
    return [str(python), "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def _exit_on_signal(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def start_agents(config: DemoConfig, task: DemoTask) -> Callable[[], None]:
    """The task's agent, serving its task type until the returned function is called."""
    max_turns, max_tokens = config.max_turns or task.max_turns, config.max_tokens or task.max_tokens
    if task.agent_script is not None:
        return run_framework_agent(task, config.concurrency, max_turns, max_tokens, config.out_dir / f"{task.name}-agent.log")
    from lightwire.examples.arith_agent import solve

    return run_agents(functools.partial(solve, max_turns=max_turns, max_tokens=max_tokens), config.concurrency, (task.task_type,)).set


def run(config: DemoConfig) -> list[dict]:
    # Heavy imports here: the CLI imports this module for DemoConfig's defaults on every command.
    import httpx
    from rich.progress import Progress

    from lightwire.tools.stack.local_stack import LocalStack
    from lightwire.tools.stack.settings import StackSettings
    from lightwire.services.collector.settings import CollectorSettings
    from lightwire.services.inference.settings import InferenceSettings
    from lightwire.services.trainer.settings import TrainerSettings
    from lightwire.tools.tasks.batch_fill import FillPolicy
    from lightwire.tools.tasks.curriculum import Curriculum
    from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
    from lightwire.tools.tasks.settings import TaskSettings

    os.environ.update(service_environment(config))
    collector_settings = CollectorSettings()
    # The driver judges a finished group as the collector will (extra_env may have set the collector's rule).
    fill_policy = FillPolicy(config.groups_per_step, config.max_groups_per_step,
                             solved_reward=collector_settings.collector_solved_reward
                             if collector_settings.collector_uniform_groups == "drop_unsolved" else None)
    started = time.monotonic()
    stack_settings = StackSettings()
    stack = LocalStack(stack_settings)
    with console.status("starting the stack: Kafka, inference, gateway, collector, dashboard, trainer"):
        report = stack.up(SERVICES)
    if report.dashboard_url:
        console.print(f"dashboard: [bold]{report.dashboard_url}[/] (the learning curve, every rollout's calls and tokens, live)")
    names = stack_settings.topic_names()
    task = demo_task(config.task)
    n_eval, eval_every = config.n_eval or task.n_eval, config.eval_every or task.eval_every
    problems = task.generate(config.n_train, n_eval, config.seed)
    train = [p for p in problems if p.split == "train"]
    held_out = [p for p in problems if p.split == "eval"]

    stop_agents = start_agents(config, task)
    # SIGTERM (`timeout`, `kill`, a supervisor) unwinds like Ctrl-C, so the `finally` below stops the agent
    # subprocess; Python's default would end this process and leave the agent serving.
    previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_signal) if threading.current_thread() is threading.main_thread() else None
    trainer_health, inference_health = TrainerSettings().health_url(), InferenceSettings().health_url()
    collector_health = collector_settings.health_url()

    def health(url: str, service: str) -> dict:
        try:
            return httpx.get(url, timeout=10).json()
        except httpx.HTTPError as exc:
            raise RuntimeError(f"the {service} stopped answering ({exc!r}); its log: {stack.service(service).log_file}") from None

    def trainer_state() -> tuple[int, int]:
        """(batches done, weight version): a batch whose groups all scored alike is done without a new version."""
        state = health(trainer_health, "trainer")
        return state["batches_done"], state["version"]

    async def wait_for_trainer(batches: Callable[[], int], timeout_s: float) -> None:
        """Until the trainer has done `batches()` batches, or the timeout passes (0: look once)."""
        deadline = time.monotonic() + timeout_s
        while trainer_state()[0] < batches() and time.monotonic() < deadline:
            await asyncio.sleep(1)

    async def settled() -> None:
        """Before an evaluation: wait until the trainer has trained every batch the collector released and inference
        serves the version that came of it. A step that reached its group cap does not wait for a batch, yet the
        groups it carried over can complete one, and its update then published the next version halfway through the
        evaluation (run H after step 4: 15 of 128 greedy rollouts by version 3, the rest by 4). Past the timeouts the
        evaluation goes on and is labelled by the versions that served it."""
        await wait_for_trainer(lambda: health(collector_health, "collector")["batches"], 600)
        version, deadline = trainer_state()[1], time.monotonic() + 120
        while health(inference_health, "inference")["model_version"] < version and time.monotonic() < deadline:
            await asyncio.sleep(0.5)

    def spec(p, split: str, temperature: float) -> TaskSpec:
        return TaskSpec(task_id=p.task_id, task_type=task.task_type, input=task.task_input(p), reference={"answer": p.answer},
                        split=split, metadata={"temperature": str(temperature)})

    async def evaluate(driver: TaskDriver, version: int) -> tuple[dict[float, dict[str, float]], set[int]]:
        """Each held-out problem's reward (one rollout each) from this version on, at each evaluation temperature, and
        the versions that served them: a batch the trainer was still on when the evaluation began can publish the
        next version halfway through it."""
        out: dict[float, dict[str, float]] = {}
        served: set[int] = set()
        for t in config.eval_temperatures:
            before = dict(driver.finished)
            await driver.run([(spec(p, "eval", t), 1) for p in held_out], max_groups_in_flight=config.concurrency * 2,
                             model_version=version)
            fresh = {gid: g for gid, g in driver.finished.items() if gid not in before and g.rewards}
            # Group ids are "<task id>.<digest>".
            out[t] = {gid.rsplit(".", 1)[0]: g.rewards[0] for gid, g in fresh.items()}
            served.update(v for g in fresh.values() for v in g.versions)
        return out, served

    def record(step: int, version: int, scores: dict[float, dict[str, float]], base: dict[float, dict[str, float]],
               elapsed: float) -> str:
        base_best = base[best_decoding(base)]
        top = best_decoding(scores)
        parts = []
        for t, by_problem in scores.items():
            mean, se = mean_and_se(list(by_problem.values()))
            delta, delta_se = paired_difference(base[t], by_problem)
            best_delta, best_se = paired_difference(base_best, by_problem)
            config.rows.append({"version": version, "step": step, "decoding": decoding_name(t), "best_decoding": t == top,
                                "heldout_reward": mean, "stderr": se, "vs_base": delta, "vs_base_stderr": delta_se,
                                "vs_base_at_best": best_delta, "vs_base_at_best_stderr": best_se, "problems": len(by_problem),
                                "time_s": round(elapsed, 1)})
            part = f"{decoding_name(t)} {mean:.3f} ± {se:.3f}"
            if step:
                part += f" (vs base at its best {best_delta:+.3f} ± {best_se:.3f}, {best_delta / best_se if best_se else float('nan'):+.1f} s.e.)"
            parts.append(part)
        save_curve(config)
        return f"held-out reward over {len(held_out)} problems: " + "; ".join(parts)

    async def loop() -> None:
        task_settings = TaskSettings()
        curriculum = (Curriculum(floor=task_settings.task_curriculum_floor, seed=config.seed,
                                 success_at=task_settings.task_curriculum_success)
                      if task_settings.task_curriculum == "on" else None)
        async with TaskDriver(stack_settings.bootstrap, names, group_timeout_s=600, curriculum=curriculum) as driver:
            done, version = trainer_state()
            t0 = time.monotonic()
            if config.base_scores is None or set(config.base_scores) != set(config.eval_temperatures):
                config.base_scores, _ = await evaluate(driver, version)
            base = config.base_scores
            console.print(f"base model (version {version}): {record(0, version, base, base, time.monotonic() - t0)}")
            with Progress(console=console) as progress:
                bar = progress.add_task(f"{config.algorithm} steps", total=config.steps)
                for step in range(1, config.steps + 1):
                    filled = True
                    if config.fill_batches:
                        fill = await driver.fill(lambda n: [spec(p, "train", config.temperature) for p in driver.draw(train, n)],
                                                 config.group_size, fill_policy,
                                                 model_version=version)
                        progress.console.print(f"step {step}: {fill.published} groups published, {fill.uniform} all alike "
                                               f"(replaced){'' if fill.full else ', the cap reached before the batch filled'}")
                        # Not full: the collector holds the partial batch, the next step's groups complete it.
                        filled = fill.full
                    else:
                        batch = [(spec(p, "train", config.temperature), config.group_size)
                                 for p in driver.choose(train, config.groups_per_step, step)]
                        await driver.run(batch, max_groups_in_flight=config.groups_per_step, model_version=version)
                    await wait_for_trainer(lambda: done + 1, 600 if filled else 0)
                    done, version = trainer_state()
                    progress.advance(bar)
                    if step % eval_every == 0 or step == config.steps:
                        await settled()
                        done, version = trainer_state()
                        scores, served = await evaluate(driver, version)
                        version = max(served, default=version)
                        mixed = f", served by versions {', '.join(map(str, sorted(served)))}" if len(served) > 1 else ""
                        progress.console.print(f"after step {step} (version {version}{mixed}): "
                                               f"{record(step, version, scores, base, time.monotonic() - t0)}")

    try:
        asyncio.run(loop())
    finally:
        stop_agents()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    try:
        config.behaviour = policy_behaviour()
    except Exception as exc:  # the curve stands without it
        console.print(f"[yellow]the analytics did not answer for the policy's behaviour ({exc!r})[/]")
    write_outputs(config)
    console.print(f"wall time, stack start included: {time.monotonic() - started:.0f} s")
    return config.rows


def write_outputs(config: DemoConfig) -> None:
    save_curve(config)
    table = Table("step", "version", "decoding", "held-out reward", "± s.e.", "vs base, same decoding (paired)", "± s.e.",
                  "vs base at its best", "± s.e.", "seconds", title="held-out reward by weight version (* its better decoding)")
    for r in config.rows:
        table.add_row(str(r["step"]), str(r["version"]), r["decoding"] + (" *" if r["best_decoding"] else ""), f"{r['heldout_reward']:.3f}",
                      f"{r['stderr']:.3f}", f"{r['vs_base']:+.3f}", f"{r['vs_base_stderr']:.3f}", f"{r['vs_base_at_best']:+.3f}",
                      f"{r['vs_base_at_best_stderr']:.3f}", str(r["time_s"]))
    console.print(table)
    if config.behaviour:
        write_behaviour(config)
    console.print(f"curve: {config.out_dir / 'heldout_reward.png'}, data: {config.out_dir / 'heldout_reward.csv'}; "
                  f"analytics: `lightwire status` or the dashboard while the stack runs")


def write_behaviour(config: DemoConfig) -> None:
    """What the policy learned, per version and decoding, on the held-out problems: a table and behaviour.csv."""
    write_csv(config.out_dir / "behaviour.csv", config.behaviour, "model_version")
    table = Table("version", "decoding", "rollouts", "right", "calls its tool", "ends on 'Answer: <n>'", "out of tokens",
                  "calls", "tokens / call", "with an error", title="what the policy does on the held-out problems, by version")
    pct = lambda x: "–" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    for r in config.behaviour:
        t = r["temperature"]
        table.add_row(str(r["model_version"]), "agent's default" if t is None else decoding_name(t), str(r["rollouts"]),
                      pct(r["reward_mean"]), pct(r["tool_call_rate"]), pct(r["answer_line_rate"]), pct(r["truncated_rate"]),
                      f"{r['calls_per_rollout']:.2f}", "–" if r["tokens_per_call"] is None else f"{r['tokens_per_call']:.1f}",
                      pct(r["error_rate"]))
    console.print(table)


def write_csv(path: Path, rows: list[dict], empty_header: str) -> None:
    """Rows as CSV, every key any row has as a column (`empty_header` alone when there is no row)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)) or [empty_header])
        writer.writeheader()
        writer.writerows(rows)


def save_curve(config: DemoConfig) -> None:
    """The CSV and PNG so far: written after every evaluation, so an interrupted run keeps its curve."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(config.out_dir / "heldout_reward.csv", config.rows, "version")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(6, 4))
    for decoding in dict.fromkeys(r["decoding"] for r in config.rows):
        rows = [r for r in config.rows if r["decoding"] == decoding]
        plt.errorbar([r["step"] for r in rows], [r["heldout_reward"] for r in rows],
                     yerr=[0 if math.isnan(r["stderr"]) else 2 * r["stderr"] for r in rows], marker="o", capsize=4, label=decoding)
    plt.legend()
    plt.xlabel(f"{config.algorithm} step")
    plt.ylabel("held-out reward (± 2 s.e.)")
    plt.title(f"Lightwire demo: {config.task} task, {config.model}")
    plt.tight_layout()
    plt.savefig(config.out_dir / "heldout_reward.png", dpi=120)
    plt.close()
