"""The dashboard at scale: time to first render of each view in a real browser, and the read API's p50/p99 per query.

The analytics are filled first (100,000 calls in 10,000 rollouts by default, as the collector would have written
them: rows built by services/collector/analytics_rows.py from synthetic events over 20 weight versions, with
tokens and logprobs, spans, errors, rewards, late feedback, train steps and batches), in a process of their own
(chDB holds its path for a process's life). Then the broker (the test stack's, started if needed;
LW_TEST_KAFKA_PORT picks it), a collector on that analytics and the dashboard start as real processes; the read
API's routes are asked in turn, and headless Chromium (Debian's package, driven by Playwright) opens each view and
reads the time from navigation to the first drawn view. Target: every view under 1 s. Figures go to stdout and
bench/results/dashboard.json.
Usage: python bench/dashboard.py [--rollouts N] [--calls-per-rollout N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_broker, percentile, show, write_results  # noqa: E402

VERSIONS = 20
TOKENS = 48
SYSTEM = "You solve arithmetic word problems. Call the calculator, then answer with `Answer: <number>`."


def at(event, unix_ms: int):
    event.time_unix_ms = unix_ms
    return event


def synthetic_events(rollouts: int, calls: int, seed: int = 0):
    """Events of `rollouts` finished rollouts of `calls` calls each, the trainer's steps and the batches: as in a demo run."""
    from lightwire.runtime import codec
    from lightwire.v1 import events_pb2 as pb

    rng = random.Random(seed)
    now = int(time.time() * 1000)
    span_ms = 20 * 60 * 1000  # over the last 20 minutes: the rate charts (last 10) have data
    for i in range(rollouts):
        rid, version = f"bench-r{i:06d}", 1 + i * VERSIONS // rollouts
        split = "eval" if i % 8 == 7 else "train"
        t0 = now - span_ms + i * span_ms // rollouts
        task = pb.Task(task_id=f"arith-{i // 4:05d}", group_id=f"g{i // 4:05d}", task_type="arith", split=split, group_size=4,
                       input_json=json.dumps({"question": f"What is {i} + {i % 7}?"}))
        yield "event", at(codec.make_event("bench", event_id=f"{rid}-s", rollout_started=pb.RolloutStarted(rollout_id=rid, task=task, worker_id=f"worker-{i % 4}")), t0)
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"What is {i} + {i % 7}?"}]
        for seq in range(1, calls + 1):
            ids = [rng.randrange(49000) for _ in range(TOKENS)]
            lps = [-rng.expovariate(1.5) for _ in range(TOKENS)]
            reply = f'calculator("{i} + {i % 7}")' if seq % 2 else f"Answer: {i + i % 7}"
            call = pb.LlmCall(
                rollout_id=rid, call_id=f"{rid}/{seq}@bench", seq=seq, model="smollm2-135m-instruct", model_version=version,
                endpoint="chat.completions", prompt_tokens=120 + 60 * seq, completion_tokens=TOKENS, latency_ms=rng.uniform(200, 900),
                http_status=200, started_unix_ms=t0 + seq * 50, gateway_id="gateway-1", request_json=json.dumps({"model": "default", "messages": messages}),
                response_json=json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}]}),
                completions=[pb.Completion(token_ids=ids, logprobs=lps, text=reply, finish_reason="stop")])
            yield "event", codec.make_event("bench", event_id=f"{rid}-c{seq}", llm_call=call)
            messages = messages + [{"role": "assistant", "content": reply}, {"role": "tool", "content": str(i + i % 7)}]
        yield "event", codec.make_event("bench", event_id=f"{rid}-t", span=pb.AgentSpan(
            rollout_id=rid, span_id="tool-1", name="calculator", kind="tool", after_seq=1, start_unix_ms=t0 + 60, end_unix_ms=t0 + 61))
        failed = i % 25 == 3
        reward = 0.0 if failed else float(rng.random() < 0.2 + 0.6 * version / VERSIONS)
        trajectory = pb.Trajectory(rollout_id=rid, task_id=task.task_id, group_id=task.group_id, task_type="arith", split=split,
                                   status=pb.ROLLOUT_STATUS_FAILED if failed else pb.ROLLOUT_STATUS_SUCCEEDED, reward=reward,
                                   min_model_version=version, max_model_version=version, num_calls=calls, group_size=4)
        trajectory.transitions.add(call_id=f"{rid}/1@bench", seq=1, prompt_token_ids=list(range(180)), response_token_ids=[0] * (calls * TOKENS + 40),
                                   response_mask=([1] * TOKENS + [0] * 4) * calls, merged_calls=calls, reward=reward, model_version=version)
        if failed:
            trajectory.attributions.add(error_class="agent_crash", step=1 + i % calls, message="RuntimeError: the agent fell over", attributor="agent_crash")
        yield "trajectory", at(codec.make_event("bench", event_id=f"traj-{rid}", trajectory=trajectory), t0 + calls * 50 + 900)
        if i % 20 == 0:
            feedback = pb.Feedback(feedback_id=f"fb-{rid}", rollout_id=rid, name="thumbs", value=rng.choice([-1.0, 1.0]))
            yield "late", at(codec.make_event("bench", event_id=f"fb-{rid}", feedback=feedback), t0 + 5000)
    groups_per_batch = 4
    for b in range(rollouts // (4 * groups_per_batch)):
        batch = pb.TrainingBatch(batch_id=f"batch-{b:05d}", min_model_version=1 + b * 4 * groups_per_batch * VERSIONS // rollouts)
        for g in range(groups_per_batch):
            batch.groups.add(group_id=f"g{b * groups_per_batch + g:05d}", task_id=f"arith-{b * groups_per_batch + g:05d}")
        t = now - span_ms + (b + 1) * 16 * span_ms // rollouts
        yield "batch", at(codec.make_event("bench", event_id=batch.batch_id, batch=batch), t)
        version = 1 + b * 4 * groups_per_batch * VERSIONS // rollouts
        yield "event", at(codec.make_event("bench", event_id=f"step-{b}", train_step=pb.TrainStep(
            model="smollm2-135m-instruct", step=b + 1, version=version + 1, loss=rng.uniform(-0.1, 0.1), kl=rng.uniform(0, 0.01),
            reward_mean=rng.random(), reward_std=rng.random() / 2, clip_fraction=rng.uniform(0, 0.2), tokens_per_s=rng.uniform(400, 600),
            num_trajectories=16, num_groups=4, batch_id=batch.batch_id)), t + 2000)


def populate(dsn: str, rollouts: int, calls: int) -> None:
    """Fill the analytics as the collector would (run in a process of its own: chDB holds its path)."""
    from lightwire.analytics.store import AnalyticsStore
    from lightwire.services.collector.analytics_rows import TABLE_COLUMNS, RowBuffer, add_batch_rows, add_event_rows, add_trajectory_rows

    store = AnalyticsStore(dsn)
    store.migrate()
    buffer = RowBuffer()
    for kind, event in synthetic_events(rollouts, calls):
        if kind == "trajectory":
            add_trajectory_rows(buffer, event, {"numeric_match": event.trajectory.reward})
        elif kind == "batch":
            add_batch_rows(buffer, event)
        else:
            add_event_rows(buffer, event, late=kind == "late")
        if len(buffer) >= 5000:
            for table, rows in buffer.drain().items():
                store.insert(table, TABLE_COLUMNS[table], rows)
    for table, rows in buffer.drain().items():
        store.insert(table, TABLE_COLUMNS[table], rows)
    store.close()


ROUTES = {
    "overview": "/api/overview", "training": "/api/training", "rollouts": "/api/rollouts",
    "rollouts_filtered": "/api/rollouts?status=failed&split=train&sort=reward&order=asc&min_reward=0",
    "rollout": "/api/rollouts/bench-r005003", "errors": "/api/errors", "feedback": "/api/feedback",
}
VIEWS = {"overview": "/", "training": "/training", "rollouts": "/rollouts", "rollout": "/rollouts/bench-r005003",
         "errors": "/errors", "feedback": "/feedback"}


def check_filled(base: str, rollouts: int, calls: int) -> dict:
    """The figures are about full tables or about nothing: the collector must see every row that was written."""
    import httpx

    counts = httpx.get(base + "/api/counts", timeout=60).raise_for_status().json()
    held = {"rollouts": counts["rollouts"]["n"], "llm_calls": counts["llm_calls"]["n"]}
    if held != {"rollouts": rollouts, "llm_calls": calls}:
        raise SystemExit(f"bench: the analytics hold {held}, not the {rollouts} rollouts and {calls} calls written")
    return held


def read_api_latency(base: str, repeat: int) -> dict:
    import httpx

    out = {}
    with httpx.Client(base_url=base, timeout=60) as http:
        for name, path in ROUTES.items():
            http.get(path).raise_for_status()  # warm: the first read loads the parts from disk
            took = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                http.get(path).raise_for_status()
                took.append((time.perf_counter() - t0) * 1000)
            out[name] = {"p50_ms": round(percentile(took, 50), 1), "p99_ms": round(percentile(took, 99), 1), "n": repeat}
    return out


def first_render(base: str, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    from testing.browser import launch_chromium

    out = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for name, path in VIEWS.items():
                took = []
                for _ in range(repeat + 1):
                    page = browser.new_page()
                    page.goto(base + path)
                    page.wait_for_function("window.lwFirstRenderMs !== undefined", timeout=30000)
                    took.append(page.evaluate("window.lwFirstRenderMs"))
                    page.close()
                took = took[1:]  # the first load fills the browser's cache of the script and style sheet
                out[name] = {"median_ms": round(percentile(took, 50), 1), "max_ms": round(max(took), 1), "n": repeat,
                             "under_1s": max(took) < 1000}
        finally:
            browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10_000)
    parser.add_argument("--calls-per-rollout", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--populate", help=argparse.SUPPRESS)  # the child process: fill this DSN and exit
    args = parser.parse_args()
    if args.populate:
        populate(args.populate, args.rollouts, args.calls_per_rollout)
        return

    from lightwire import topics
    from lightwire.runtime.kafka import ensure_topics
    from testing.services_fixtures import ServiceProcess, free_port, service_env

    work = Path(tempfile.mkdtemp(prefix="lw-bench-dashboard-"))
    try:
        t0 = time.monotonic()
        dsn = f"chdb://{work / 'analytics'}"
        subprocess.run([sys.executable, __file__, "--populate", dsn, "--rollouts", str(args.rollouts),
                        "--calls-per-rollout", str(args.calls_per_rollout)], check=True)
        populate_s = time.monotonic() - t0
        with bench_broker() as bootstrap:
            names = topics.TopicNames(f"benchdash{uuid.uuid4().hex[:6]}.")
            asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
            collector_port, dashboard_port = free_port(), free_port()
            quiet = dict(log_level="WARNING")
            collector = ServiceProcess("collector", service_env(bootstrap, names.prefix, work, analytics_dsn=dsn, collector_port=collector_port, **quiet),
                                       f"http://127.0.0.1:{collector_port}/healthz", work / "collector.log").start()
            dashboard = ServiceProcess("dashboard", service_env(
                bootstrap, names.prefix, work, dashboard_port=dashboard_port, dashboard_collector_url=f"http://127.0.0.1:{collector_port}",
                dashboard_inference_urls="", dashboard_trainer_url="", **quiet), f"http://127.0.0.1:{dashboard_port}/healthz",
                work / "dashboard.log").start()
            try:
                held = check_filled(f"http://127.0.0.1:{collector_port}", args.rollouts, args.rollouts * args.calls_per_rollout)
                load_before = os.getloadavg()[0]
                api = read_api_latency(f"http://127.0.0.1:{collector_port}", args.repeat)
                views = first_render(f"http://127.0.0.1:{dashboard_port}", max(3, args.repeat // 4))
                load_after = os.getloadavg()[0]
            finally:
                dashboard.stop()
                collector.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"rollouts": args.rollouts, "calls": args.rollouts * args.calls_per_rollout, "analytics_held": held, "completion_tokens_per_call": TOKENS,
               "weight_versions": VERSIONS, "populate_s": round(populate_s, 1), "read_api": api, "first_render": views,
               "every_view_under_1s": all(v["under_1s"] for v in views.values()),
               "load_average_1m": [round(load_before, 2), round(load_after, 2)]}
    path = write_results("dashboard", figures)
    show("read API (collector), ms", [(k, f"p50 {v['p50_ms']}  p99 {v['p99_ms']}") for k, v in api.items()])
    show("first render in Chromium, ms", [(k, f"median {v['median_ms']}  max {v['max_ms']}") for k, v in views.items()])
    print(f"figures in {path}")


if __name__ == "__main__":
    main()
