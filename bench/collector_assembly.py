"""Collector assembly alone: CPU per rollout and per event of turning decoded events into outputs, no Kafka, no ClickHouse.

The same synthetic rollouts as bench/collector.py (start, N calls with token ids and logprobs, finish, agent reward) go
through RolloutProcessor.handle in micro-batches, with the default reward pipeline and every attributor, and a grace of
0 so each rollout is released (finalized, wrapped, analytics rows) in the batch that completes it. Each repeat starts
from an empty table. Measured alone, with the same rollouts: the release of complete rollouts (finalize, the trajectory
and group-member events, their rows) and finalize within it (view, attribution, rewards, transitions).
Figures (medians over repeats, load average beside them) go to stdout and bench/results/collector_assembly.json.
Usage: python bench/collector_assembly.py [--rollouts N] [--repeats R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.collector import rollout_events  # noqa: E402
from bench.common import median, show, write_results  # noqa: E402
from lightwire.topics import TopicNames  # noqa: E402
from services.collector import rollout_state  # noqa: E402
from services.collector.finalize import TrajectoryFinalizer  # noqa: E402
from services.collector.outputs import Outputs, apply_state_writes  # noqa: E402
from services.collector.rollout_processor import RolloutProcessor, Timing  # noqa: E402
from services.collector.settings import CollectorSettings  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000, help="events per micro-batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the cProfile of one assembly run instead")
    args = parser.parse_args()

    finalize = TrajectoryFinalizer.from_settings(CollectorSettings(collector_attributors="all"))
    events = make_events(args.rollouts, args.calls, args.tokens)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        assemble(finalize, events, args.batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return

    assemble(finalize, events[: len(events) // 10], args.batch)  # warm-up
    load_before = os.getloadavg()[0]
    whole, final, release = [], [], []
    for _ in range(args.repeats):
        spent, released = assemble(finalize, events, args.batch)
        assert released == args.rollouts, f"{released} of {args.rollouts} rollouts released"
        whole.append(spent)
        final.append(finalize_only(finalize, events))
        release.append(release_only(finalize, events))
    load_after = os.getloadavg()[0]
    n_events, n_calls = len(events), args.rollouts * args.calls
    figures = {
        "rollouts": args.rollouts, "calls_per_rollout": args.calls, "tokens": args.tokens, "events": n_events, "batch": args.batch,
        "repeats": args.repeats, "load_1m": [round(load_before, 2), round(load_after, 2)],
        "assembly_us_per_rollout": round(median(whole) / args.rollouts * 1e6, 1),
        "assembly_us_per_event": round(median(whole) / n_events * 1e6, 2),
        "assembly_us_per_call_event": round(median(whole) / n_calls * 1e6, 2),
        "release_us_per_rollout": round(median(release) / args.rollouts * 1e6, 1),
        "finalize_us_per_rollout": round(median(final) / args.rollouts * 1e6, 1),
        "assembly_s_all": [round(s, 3) for s in whole],
    }
    show("collector assembly (CPU, no Kafka, no ClickHouse)", [(k, str(v)) for k, v in figures.items()])
    print(f"written to {write_results('collector_assembly', figures)}")


if __name__ == "__main__":
    main()
