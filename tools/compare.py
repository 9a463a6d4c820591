"""`lightwire compare`: each trainer algorithm from the same base model on the demo task, for the same budget of
rollouts, evaluated on the same held-out problems greedily and at the sampling temperature at the same steps.

Every algorithm gets a stack of its own (a fresh state directory: broker, checkpoints, analytics), so none starts
from another's weights; the base model is evaluated once and every later evaluation is paired with it problem by
problem. Writes compare-results/compare.{csv,png} and, per algorithm, the demo's own curve and CSV.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.table import Table

from lightwire.tools.demo import DemoConfig, best_decoding, console, write_csv

ALGORITHMS = ("grpo", "rft", "dpo", "kto")
# What each algorithm needs beyond the trainer's defaults on a 0/1 reward: none today (rft keeps the rollouts that
# reached 1, dpo pairs a right against a wrong answer, kto calls a right answer desirable).
ALGORITHM_ENV: dict[str, dict[str, str]] = {}


@dataclass
class CompareConfig:
    algorithms: tuple[str, ...] = ALGORITHMS
    # The same rollouts for every algorithm (no batch filling) on the 64 problems its figures were measured on.
    demo: DemoConfig = field(default_factory=lambda: DemoConfig(eval_temperatures=(0.0, 0.7), fill_batches=False, n_eval=64))
    out_dir: Path = Path("compare-results")
    # Each algorithm's stack lives under <state_root>/<algorithm> and is removed before it starts.
    state_root: Path = Path(".lightwire/compare")

    @property
    def rollouts(self) -> int:
        """Training rollouts each algorithm gets: the same budget for all."""
        return self.demo.steps * self.demo.groups_per_step * self.demo.group_size

    def __post_init__(self) -> None:
        unknown = set(self.algorithms) - set(ALGORITHMS)
        if unknown or not self.algorithms:
            raise ValueError(f"algorithms are some of {', '.join(ALGORITHMS)}, not {', '.join(sorted(unknown)) or 'none'}")


@dataclass
class AlgorithmRun:
    algorithm: str
    rows: list[dict]
    wall_s: float
    cpu_s: float  # user + system seconds of the stack's service processes over the run
    trained_tokens: int = 0  # model tokens the trainer's losses were taken over, from its /healthz


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary_rows(runs: list[AlgorithmRun], base: dict[float, dict[str, float]], rollouts: int) -> list[dict]:
    """One row per algorithm: its last evaluation at its better decoding against the base model at its better one,
    paired on the same problems, with what it cost."""
    base_best_t = best_decoding(base)
    out = []
    for run in runs:
        last_step = max(r["step"] for r in run.rows)
        last = {r["decoding"]: r for r in run.rows if r["step"] == last_step}
        best = next(r for r in last.values() if r["best_decoding"])
        gain, gain_se = best["vs_base_at_best"], best["vs_base_at_best_stderr"]
        out.append({
            "algorithm": run.algorithm, "step": last_step, "decoding": best["decoding"], "heldout_reward": best["heldout_reward"],
            "base_decoding": "greedy" if base_best_t == 0 else f"t={base_best_t:g}",
            "gain_vs_base_at_best": gain, "gain_stderr": gain_se,
            "gain_in_stderrs": gain / gain_se if gain_se and not math.isnan(gain_se) else float("nan"),
            "rollouts": rollouts, "trained_tokens": run.trained_tokens, "cpu_s": round(run.cpu_s, 1), "wall_s": round(run.wall_s, 1),
            "reward_points_per_cpu_hour": gain / (run.cpu_s / 3600) if run.cpu_s else float("nan"),
            **{f"{d}_reward": r["heldout_reward"] for d, r in last.items()},
        })
    return out


def run(config: CompareConfig) -> list[dict]:
    import httpx

    from lightwire.services.trainer.settings import TrainerSettings
    from lightwire.tools import demo
    from lightwire.tools.stack.local_stack import LocalStack
    from lightwire.tools.stack.settings import StackSettings

    config.out_dir.mkdir(parents=True, exist_ok=True)
    base: dict[float, dict[str, float]] | None = None
    runs: list[AlgorithmRun] = []
    for algorithm in config.algorithms:
        state = (config.state_root / algorithm).resolve()
        shutil.rmtree(state, ignore_errors=True)
        os.environ["LW_STATE_DIR"] = str(state)
        console.rule(f"{algorithm}: {config.demo.steps} steps of {config.demo.groups_per_step} x {config.demo.group_size} rollouts")
        cfg = replace(config.demo, algorithm=algorithm, extra_env=ALGORITHM_ENV.get(algorithm, {}), base_scores=base, rows=[],
                      out_dir=config.out_dir / algorithm)
        t0 = time.monotonic()
        stack = None
        try:
            rows = demo.run(cfg)
            stack = LocalStack(StackSettings())
            cpu = sum(process_cpu_seconds(pid) for name in demo.SERVICES if (pid := stack.service(name).pid()))
            tokens = httpx.get(TrainerSettings().health_url(), timeout=10).json().get("trained_tokens", 0)
        finally:
            (stack or LocalStack(StackSettings())).down()
        base = cfg.base_scores
        runs.append(AlgorithmRun(algorithm, rows, time.monotonic() - t0, cpu, tokens))
        write(config, runs, base)
    return summary_rows(runs, base, config.rollouts)


def write(config: CompareConfig, runs: list[AlgorithmRun], base: dict[float, dict[str, float]]) -> None:
    """The table and the plot so far: written after every algorithm, so an interrupted comparison keeps what ran."""
    rows = summary_rows(runs, base, config.rollouts)
    write_csv(config.out_dir / "compare.csv", rows, "algorithm")
    table = Table("algorithm", "held-out (its best decoding)", "vs base at its best (paired)", "s.e.", "rollouts", "trained tokens", "CPU s",
                  "reward points / CPU-hour", title=f"after {config.demo.steps} steps, {len(next(iter(base.values())))} held-out problems")
    for r in rows:
        table.add_row(r["algorithm"], f"{r['heldout_reward']:.3f} ({r['decoding']})", f"{r['gain_vs_base_at_best']:+.3f}",
                      f"{r['gain_stderr']:.3f} ({r['gain_in_stderrs']:+.1f})", str(r["rollouts"]), str(r["trained_tokens"]), f"{r['cpu_s']:.0f}",
                      f"{r['reward_points_per_cpu_hour']:+.3f}")
    console.print(table)
    plot(config.out_dir / "compare.png", runs, config.demo.model)


def plot(path: Path, runs: list[AlgorithmRun], model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    decodings = list(dict.fromkeys(r["decoding"] for run in runs for r in run.rows))
    for ax, decoding in zip(axes, decodings[:2], strict=False):
        for run in runs:
            rows = [r for r in run.rows if r["decoding"] == decoding]
            ax.errorbar([r["step"] for r in rows], [r["heldout_reward"] for r in rows],
                        yerr=[0 if math.isnan(r["stderr"]) else 2 * r["stderr"] for r in rows], marker="o", capsize=3, label=run.algorithm)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"held-out reward, {decoding}")
        ax.set_xlabel("training step")
        ax.legend()
    axes[0].set_ylabel("held-out reward (± 2 s.e.)")
    fig.suptitle(f"Lightwire compare: {model}, the same base, rollouts and problems")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

