"""Gateway overhead: added latency (p50, p99) and throughput over calling the upstream directly, against a fast
fake OpenAI HTTP upstream, and the same for the LiteLLM proxy on the same upstream in the same run.

Everything on loopback, bounded request counts. LiteLLM runs from its own virtualenv, built once by
bench_venv (`$LW_CACHE_DIR/venv-litellm-<pinned version>`) or taken from LW_BENCH_LITELLM (a `litellm` executable).
The gateway records every call: to Kafka when a broker answers on LW_KAFKA_BOOTSTRAP, else into its spool.
"""

from __future__ import annotations

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
from bench.common import bench_venv, percentile, show, write_results  # noqa: E402
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


async def measure(base: str, headers: dict) -> dict:
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        for _ in range(100):  # warm-up: connections, caches, JIT-free but lazy imports
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
        latencies = []
        for _ in range(LATENCY_REQUESTS):
            t0 = time.perf_counter()
            (await client.post("/chat/completions", json=BODY)).raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
        remaining = THROUGHPUT_REQUESTS

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.post("/chat/completions", json=BODY)).raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "throughput_rps": THROUGHPUT_REQUESTS / elapsed}


def kafka_answers(bootstrap: str) -> bool:
    from lightwire import topics
    from lightwire.runtime.kafka import ensure_topics

    try:
        asyncio.run(asyncio.wait_for(ensure_topics(bootstrap, topics.topic_specs(1, topics.TopicNames("bench.")), timeout_s=3), 5))
        return True
    except Exception:
        return False


def main() -> None:
    litellm_bin = litellm_executable()  # built before anything is timed
    work = Path(tempfile.mkdtemp(prefix="lw-bench-gateway-"))
    bootstrap = os.environ.get("LW_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    recording = "kafka" if kafka_answers(bootstrap) else "spool (no broker answered)"
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
        results = {"direct": asyncio.run(measure(f"http://127.0.0.1:{up_port}/v1", {}))}
        results["gateway"] = asyncio.run(measure(f"http://127.0.0.1:{gw_port}/rollouts/bench-1/v1", {}))
        if litellm_bin.exists():
            master_key = f"sk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
            config = work / "litellm.yaml"
            config.write_text(f"model_list:\n  - model_name: fake-model\n    litellm_params:\n      model: openai/fake-model\n"
                              f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: x\n"
                              "litellm_settings:\n  telemetry: false\n")
            litellm = start([str(litellm_bin), "--config", str(config), "--port", str(ll_port), "--host", "127.0.0.1", "--num_workers", "1"],
                            env={"LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": master_key}, log=work / "litellm.log")
            procs.append(litellm)
            wait_ready(f"http://127.0.0.1:{ll_port}/health/liveliness", litellm, timeout_s=180)
            results["litellm"] = asyncio.run(measure(f"http://127.0.0.1:{ll_port}/v1", {"authorization": f"Bearer {master_key}"}))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    figures = {
        "requests": {"latency": LATENCY_REQUESTS, "throughput": THROUGHPUT_REQUESTS, "concurrency": CONCURRENCY},
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
    print(f"written to {write_results('gateway', figures)}")


if __name__ == "__main__":
    main()
