"""Gateway overhead: added latency (p50, p99) and throughput over calling the upstream directly, against a fast
fake OpenAI HTTP upstream, and the same for the LiteLLM proxy on the same upstream in the same run.

Everything on loopback, bounded request counts. LiteLLM runs from its own virtualenv, built once by
bench_venv (`$LW_CACHE_DIR/venv-litellm-<pinned version>`) or taken from LW_BENCH_LITELLM (a `litellm` executable).
The gateway records every call to Kafka: the broker on LW_KAFKA_BOOTSTRAP when that is set (the bench stops at once,
saying so, when it does not answer), else the test stack's broker (LW_TEST_KAFKA_PORT), started for the run if needed.
Usage: python bench/gateway.py [--latency-requests N] [--throughput-requests N] [--no-litellm]
(a run with fewer requests than the defaults prints its figures but leaves bench/results/gateway.json as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import BenchSetupError, bench_broker, bench_venv, percentile, show, write_results  # noqa: E402
from testing.services_fixtures import free_port  # noqa: E402

LATENCY_REQUESTS = 1000
THROUGHPUT_REQUESTS = 2000
CONCURRENCY = 32
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6}
# Pinned so the baseline is the same program from run to run; its figures name the version.
LITELLM_VERSION = "1.108.7"


def litellm_executable() -> Path:
    if os.environ.get("LW_BENCH_LITELLM"):
        return Path(os.environ["LW_BENCH_LITELLM"])
    return bench_venv(f"litellm-{LITELLM_VERSION}", [f"litellm[proxy]=={LITELLM_VERSION}"]).parent / "litellm"


def start(argv: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 120, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


async def measure(base: str, headers: dict, latency_requests: int = LATENCY_REQUESTS, throughput_requests: int = THROUGHPUT_REQUESTS) -> dict:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        for _ in range(100):  # warm-up: connections, caches, JIT-free but lazy imports
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
        latencies = []
        for _ in range(latency_requests):
            t0 = time.perf_counter()
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        remaining = throughput_requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.post("/chat/completions", json=BODY)).raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "throughput_rps": throughput_requests / elapsed}


def bench_topics(bootstrap: str) -> None:
    from lightwire import topics
    from lightwire.runtime.kafka import ensure_topics

    try:
        asyncio.run(asyncio.wait_for(ensure_topics(bootstrap, topics.topic_specs(1, topics.TopicNames("bench.")), timeout_s=10), 15))
    except Exception as exc:
        raise BenchSetupError(f"the broker on {bootstrap} did not create the bench.* topics: {exc!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-requests", type=int, default=LATENCY_REQUESTS, help="sequential requests timed one by one")
    parser.add_argument("--throughput-requests", type=int, default=THROUGHPUT_REQUESTS, help=f"requests sent {CONCURRENCY} at a time")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM baseline (and building its virtualenv)")
    args = parser.parse_args()
    with bench_broker() as bootstrap:  # first: a missing broker stops the bench in seconds, before any build
        bench_topics(bootstrap)
        run(bootstrap, args)


def run(bootstrap: str, args: argparse.Namespace) -> None:
    counts = (args.latency_requests, args.throughput_requests)
    full_run = counts[0] >= LATENCY_REQUESTS and counts[1] >= THROUGHPUT_REQUESTS and not args.no_litellm
    litellm_bin = None if args.no_litellm else litellm_executable()  # built before anything is timed
    work = Path(tempfile.mkdtemp(prefix="lw-bench-gateway-"))
    recording = "kafka"
    up_port, gw_port, gw_grpc, ll_port = free_port(), free_port(), free_port(), free_port()
    procs = []
    try:
        upstream = start([sys.executable, "-m", "testing.fake_upstream", "--port", str(up_port)])
        procs.append(upstream)
        wait_ready(f"http://127.0.0.1:{up_port}/v1/models", upstream)
        gateway = start([sys.executable, "-m", "lightwire.services.gateway"], env={
            "LW_GATEWAY_UPSTREAM": f"http://127.0.0.1:{up_port}", "LW_GATEWAY_HTTP_PORT": str(gw_port), "LW_GATEWAY_GRPC_PORT": str(gw_grpc),
            "LW_KAFKA_BOOTSTRAP": bootstrap, "LW_TOPIC_PREFIX": "bench.", "LW_STATE_DIR": str(work), "LW_LOG_LEVEL": "WARNING"},
            log=work / "gateway.log")
        procs.append(gateway)
        wait_ready(f"http://127.0.0.1:{gw_port}/healthz", gateway)
        results = {"direct": asyncio.run(measure(f"http://127.0.0.1:{up_port}/v1", {}, *counts))}
        results["gateway"] = asyncio.run(measure(f"http://127.0.0.1:{gw_port}/rollouts/bench-1/v1", {}, *counts))
        if httpx.get(f"http://127.0.0.1:{gw_port}/healthz", timeout=5).json().get("kafka") != "ok":
            recording = "spool (the broker stopped acknowledging during the run)"
        if litellm_bin is not None and litellm_bin.exists():
            master_key = f"sk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
            config = work / "litellm.yaml"
            config.write_text(f"model_list:\n  - model_name: fake-model\n    litellm_params:\n      model: openai/fake-model\n"
                              f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: x\n"
                              "litellm_settings:\n  telemetry: false\n")
            litellm = start([str(litellm_bin), "--config", str(config), "--port", str(ll_port), "--host", "127.0.0.1", "--num_workers", "1"],
                            env={"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": master_key}, log=work / "litellm.log")
            procs.append(litellm)
            wait_ready(f"http://127.0.0.1:{ll_port}/health/liveliness", litellm, timeout_s=180)
            results["litellm"] = asyncio.run(measure(f"http://127.0.0.1:{ll_port}/v1", {"authorization": f"Bearer {master_key}"}, *counts))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    figures = {
        "requests": {"latency": counts[0], "throughput": counts[1], "concurrency": CONCURRENCY},
        "gateway_recording": recording,
        **results,
        "gateway_added_p50_ms": results["gateway"]["p50_ms"] - results["direct"]["p50_ms"],
        "gateway_added_p99_ms": results["gateway"]["p99_ms"] - results["direct"]["p99_ms"],
    }
    rows = [(f"{name} {k}", f"{v:.3f}") for name, r in results.items() for k, v in r.items()]
    rows += [("gateway added p50 ms", f"{figures['gateway_added_p50_ms']:.3f}"), ("gateway added p99 ms", f"{figures['gateway_added_p99_ms']:.3f}")]
    if "litellm" in results:
        figures["litellm_version"] = LITELLM_VERSION if not os.environ.get("LW_BENCH_LITELLM") else "LW_BENCH_LITELLM"
        figures["litellm_added_p50_ms"] = results["litellm"]["p50_ms"] - results["direct"]["p50_ms"]
        figures["gateway_over_litellm_throughput"] = results["gateway"]["throughput_rps"] / results["litellm"]["throughput_rps"]
        rows += [("litellm added p50 ms", f"{figures['litellm_added_p50_ms']:.3f}"),
                 ("gateway / litellm throughput", f"{figures['gateway_over_litellm_throughput']:.2f}x")]
    show(f"gateway overhead (recording to {recording})", rows)
    if full_run:
        print(f"written to {write_results('gateway', figures)}")
    else:
        print("a short run (fewer requests or no LiteLLM): bench/results/gateway.json left as it is")


if __name__ == "__main__":
    main()
