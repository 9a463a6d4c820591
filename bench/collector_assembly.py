"""Collector assembly alone: CPU per rollout and per event of turning decoded events into outputs, no Kafka, no ClickHouse.

The same synthetic rollouts as bench/collector.py (start, N calls with token ids and logprobs, finish, agent reward) go
through RolloutProcessor.handle in micro-batches, with the default reward pipeline and every attributor, and a grace of
0 so each rollout is released (finalized, wrapped, analytics rows) in the batch that completes it. Each repeat starts
from an empty table. Measured alone, with the same rollouts: the release of complete rollouts (finalize, the trajectory
and group-member events, their rows) and finalize within it (view, attribution, rewards, transitions).
Figures (medians over repeats, load average beside them) go to stdout and bench/results/collector_assembly.json.
With --baseline DIR (another checkout, e.g. `git worktree add /tmp/base <commit>`), each repeat also runs there, in turn,
and the ratios are printed. Usage: python bench/collector_assembly.py [--rollouts N] [--repeats R] [--baseline DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

# A baseline run (--baseline) imports the other checkout's code: its root comes first on the path.
ROOT = Path(os.environ.get("LW_ASSEMBLY_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

from bench.collector import rollout_events  # noqa: E402
from bench.common import median, show, write_results  # noqa: E402
from lightwire.topics import TopicNames  # noqa: E402
from lightwire.services.collector import rollout_state  # noqa: E402
from lightwire.services.collector.finalize import TrajectoryFinalizer  # noqa: E402
from lightwire.services.collector.outputs import Outputs, apply_state_writes  # noqa: E402
from lightwire.services.collector.rollout_processor import RolloutProcessor, Timing  # noqa: E402
from lightwire.services.collector.settings import CollectorSettings  # noqa: E402


def make_events(rollouts: int, calls: int, tokens: int) -> list:
    events = []
    for i in range(rollouts):
        events.extend(rollout_events(f"r{i:06d}", calls, tokens))
    return events


def assemble(finalize, events: list, batch: int) -> tuple[float, int]:
    """Seconds of CPU to assemble every event in micro-batches of `batch` against a fresh table, and rollouts released."""
    table: dict[bytes, bytes] = {}
    processor = RolloutProcessor(table, finalize, TopicNames(), "groups", Timing(grace_ms=0, timeout_ms=600_000, retention_ms=600_000), "bench")
    t0 = time.process_time()
    for start in range(0, len(events), batch):
        out = Outputs()
        processor.handle(events[start:start + batch], 1_000, out)
        apply_state_writes(table, out)
    spent = time.process_time() - t0
    return spent, processor.released


def complete_states(events: list) -> list:
    """One complete, unreleased rollout state per rollout in `events`."""
    states: dict[str, object] = {}
    for event in events:
        rid = rollout_state.rollout_key(event)
        state = states.get(rid) or states.setdefault(rid, rollout_state.new_state(rid, 0))
        rollout_state.apply(state, event, 0, check_complete=False)
    return list(states.values())


def finalize_only(finalize, events: list) -> float:
    """Seconds of CPU in finalize alone (view, attribution, rewards, transitions)."""
    states = complete_states(events)
    t0 = time.process_time()
    for state in states:
        finalize(state, False)
    return time.process_time() - t0


def release_only(finalize, events: list) -> float:
    """Seconds of CPU releasing complete rollouts: finalize, the trajectory and group-member events, their rows."""
    states = complete_states(events)
    processor = RolloutProcessor({}, finalize, TopicNames(), "groups", Timing(grace_ms=0, timeout_ms=600_000, retention_ms=600_000), "bench")
    out = Outputs()
    t0 = time.process_time()
    for state in states:
        processor._release(state, False, 1_000, out)
    return time.process_time() - t0


def measure(args) -> dict[str, float]:
    """One repeat: seconds of CPU for the whole assembly, the release path and finalize, over the same rollouts."""
    finalize = TrajectoryFinalizer.from_settings(CollectorSettings(collector_attributors="all"))
    events = make_events(args.rollouts, args.calls, args.tokens)
    assemble(finalize, events[: len(events) // 10], args.batch)  # warm-up
    spent, released = assemble(finalize, events, args.batch)
    assert released == args.rollouts, f"{released} of {args.rollouts} rollouts released"
    return {"assembly": spent, "release": release_only(finalize, events), "finalize": finalize_only(finalize, events)}


def baseline_repeat(baseline: Path, args) -> dict[str, float]:
    """One repeat of this file's measurement run against another checkout (its own code, this harness)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", "--rollouts", str(args.rollouts), "--calls", str(args.calls),
               "--tokens", str(args.tokens), "--batch", str(args.batch)]
    env = {**os.environ, "PYTHONPATH": str(baseline), "LW_ASSEMBLY_ROOT": str(baseline)}
    return json.loads(subprocess.run(command, env=env, cwd=baseline, check=True, capture_output=True, text=True).stdout)


def per_unit(runs: list[dict[str, float]], args, n_events: int) -> dict[str, float]:
    def med(key: str) -> float:
        return median([r[key] for r in runs])
    return {
        "assembly_us_per_rollout": round(med("assembly") / args.rollouts * 1e6, 1),
        "assembly_us_per_event": round(med("assembly") / n_events * 1e6, 2),
        "assembly_us_per_call_event": round(med("assembly") / (args.rollouts * args.calls) * 1e6, 2),
        "release_us_per_rollout": round(med("release") / args.rollouts * 1e6, 1),
        "finalize_us_per_rollout": round(med("finalize") / args.rollouts * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000, help="events per micro-batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout (git worktree add DIR COMMIT), measured in turn with this one")
    parser.add_argument("--profile", action="store_true", help="print the cProfile of one assembly run instead")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # one repeat as JSON (baseline runs)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args)))
        return
    if args.profile:
        finalize = TrajectoryFinalizer.from_settings(CollectorSettings(collector_attributors="all"))
        events = make_events(args.rollouts, args.calls, args.tokens)
        profiler = cProfile.Profile()
        profiler.enable()
        assemble(finalize, events, args.batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return

    n_events = len(make_events(1, args.calls, args.tokens)) * args.rollouts
    load_before = os.getloadavg()[0]
    runs, base_runs = [], []
    for _ in range(args.repeats):  # alternating, so that both see the same load
        if args.baseline:
            base_runs.append(baseline_repeat(args.baseline, args))
        runs.append(measure(args))
    load_after = os.getloadavg()[0]
    figures = {
        "rollouts": args.rollouts, "calls_per_rollout": args.calls, "tokens": args.tokens, "events": n_events, "batch": args.batch,
        "repeats": args.repeats, "load_1m": [round(load_before, 2), round(load_after, 2)], **per_unit(runs, args, n_events),
    }
    rows = [(k, str(v)) for k, v in figures.items()]
    if base_runs:
        base = per_unit(base_runs, args, n_events)
        figures["baseline"] = {"checkout": str(args.baseline), "commit": _commit(args.baseline), **base}
        figures["speedup"] = {k.removesuffix("_us_per_rollout"): round(base[k] / figures[k], 2) for k in base if k.endswith("_per_rollout")}
        rows += [(f"baseline {k}", str(v)) for k, v in base.items()] + [(f"speedup {k}", f"{v}x") for k, v in figures["speedup"].items()]
    show("collector assembly (CPU, no Kafka, no ClickHouse)", rows)
    print(f"written to {write_results('collector_assembly', figures)}")


def _commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
