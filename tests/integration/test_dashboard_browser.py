"""The dashboard in a real browser over the real system: inference on the tiny model, the gateway, the collector, the
trainer and the dashboard as processes (API keys on), an agent through the gateway, headless Chromium from Debian's
package driven by Playwright. What is checked is what a person sees: the rollouts in the table, a rollout's calls in
order with one shaded token per completion token, the error at its step, a curve point per weight version, the late
feedback listed, a table that grows by itself when a rollout arrives, a not-found page and a filter message.

The expected figures come from Kafka (the calls the gateway recorded, the trajectories the collector released), never
from the dashboard itself. Screenshots of each view go to $LW_DASHBOARD_SCREENSHOTS (docs/ for the README) or tmp.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from lightwire import topics
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer, ensure_topics
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from lightwire_client import Worker, WorkerConfig
from testing.browser import launch_chromium
from testing.kafka_reading import read_until_end
from testing.services_fixtures import ServiceProcess, free_port, service_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
KEY = "dash-key"


def agent(rollout) -> None:
    """Two turns with a calculator span between them; "crash" raises after its first call; the reward is the
    rollout's place in its group, so every group has spread and the trainer updates."""
    client = rollout.openai_client()
    messages = [{"role": "user", "content": rollout.input["q"]}]
    first = client.chat.completions.create(model="default", messages=messages, max_tokens=6, seed=rollout.task.index_in_group)
    if rollout.input.get("crash") == rollout.task.index_in_group:
        raise RuntimeError("the agent fell over")
    rollout.emit_span("calculator", kind="tool", attributes={"expression": "2 + 3", "result": "5"})
    messages += [{"role": "assistant", "content": first.choices[0].message.content or ""}, {"role": "tool", "content": "5", "tool_call_id": "c1"}]
    client.chat.completions.create(model="default", messages=messages, max_tokens=5, seed=10 + rollout.task.index_in_group)
    rollout.emit_reward(rollout.task.index_in_group / max(1, rollout.task.group_size - 1))


class Loop:
    """An event loop on a thread of its own: the agent and Kafka run there while Playwright's sync API owns this one."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout_s: float = 600):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def system(bootstrap, tmp_path_factory):
    work = tmp_path_factory.mktemp("dash")
    names = topics.TopicNames(f"dash{int(time.time() * 1000) % 10**8}.")
    asyncio.run(ensure_topics(bootstrap, topics.topic_specs(2, names)))
    ports = {k: free_port() for k in ("inf_grpc", "inf_ops", "http", "hub", "collector", "trainer", "dashboard")}
    started: list[ServiceProcess] = []

    def start(name: str, port: str, **settings) -> None:
        env = service_env(bootstrap, names.prefix, work, log_level="WARNING", api_keys=KEY, **settings)
        env["OMP_NUM_THREADS"] = "1"
        started.append(ServiceProcess(name, env, f"http://127.0.0.1:{ports[port]}/healthz", work / f"{name}.log").start(timeout_s=180))

    try:
        start("inference", "inf_ops", inference_model="tiny-llama", inference_device="cpu", inference_grpc_port=ports["inf_grpc"],
              inference_ops_port=ports["inf_ops"])
        start("gateway", "http", gateway_http_port=ports["http"], gateway_grpc_port=ports["hub"],
              gateway_upstream=f"127.0.0.1:{ports['inf_grpc']}", gateway_acquire_wait_ms=500)
        start("collector", "collector", collector_port=ports["collector"], collector_batch_groups=1, collector_group_timeout_s=120)
        start("trainer", "trainer", trainer_model="tiny-llama", trainer_device="cpu", trainer_ops_port=ports["trainer"], trainer_lr=1e-3,
              trainer_checkpoint_dir=work / "checkpoints")
        start("dashboard", "dashboard", dashboard_port=ports["dashboard"], dashboard_collector_url=f"http://127.0.0.1:{ports['collector']}",
              dashboard_inference_urls=f"http://127.0.0.1:{ports['inf_ops']}", dashboard_trainer_url=f"http://127.0.0.1:{ports['trainer']}",
              dashboard_refresh_s=1)
        loop = Loop()
        stop = asyncio.Event()
        worker = asyncio.run_coroutine_threadsafe(
            Worker(agent, WorkerConfig(target=f"127.0.0.1:{ports['hub']}", api_key=KEY, concurrency=4, poll_wait_ms=200)).run(stop), loop.loop)
        yield names, ports, loop, started
        loop.loop.call_soon_threadsafe(stop.set)
        worker.result(60)
        loop.close()
    finally:
        for process in reversed(started):
            process.stop()


async def run_groups(bootstrap: str, names, groups: list[tuple[TaskSpec, int]], version: int) -> None:
    async with TaskDriver(bootstrap, names, group_timeout_s=120) as driver:
        await driver.run(groups, max_groups_in_flight=len(groups), model_version=version)


def wait_for(url: str, key: str, above: int, timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = httpx.get(url, timeout=10).json().get(key, 0)
        if value > above:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"{url}: {key} stayed at {above}")


def released(loop: Loop, bootstrap: str, names) -> dict:
    records = loop.call(read_until_end(bootstrap, names.trajectories))
    events = [codec.decode(r.value).event for r in records]
    return {e.trajectory.rollout_id: e.trajectory for e in events if e.WhichOneof("payload") == "trajectory"}


def recorded_calls(loop: Loop, bootstrap: str, names) -> dict[str, list]:
    events = [codec.decode(r.value).event for r in loop.call(read_until_end(bootstrap, names.rollout_events))]
    calls: dict[str, list] = {}
    for e in events:
        if e.WhichOneof("payload") == "llm_call":
            calls.setdefault(e.llm_call.rollout_id, []).append(e.llm_call)
    return {rid: sorted(cs, key=lambda c: (c.started_unix_ms, c.seq)) for rid, cs in calls.items()}


def test_a_person_sees_rollouts_tokens_errors_versions_feedback_and_live_updates(system, bootstrap, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    names, ports, loop, processes = system
    base = f"http://127.0.0.1:{ports['dashboard']}"
    shots = Path(os.environ.get("LW_DASHBOARD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    trainer = f"http://127.0.0.1:{ports['trainer']}/healthz"

    # Version 1: a train group of four (the last crashes after its first call) and a held-out rollout. The trainer
    # trains the group and publishes version 2, which inference loads; then a train group and a held-out rollout on it.
    # Each group is a batch (LW_COLLECTOR_BATCH_GROUPS=1) with rewards that differ, so each trains.
    loop.call(run_groups(bootstrap, names, [(TaskSpec("t-a", "echo", {"q": "Add 2 and 3.", "crash": 3}, {}), 4),
                                            (TaskSpec("t-eval1", "echo", {"q": "Add 4 and 5."}, {}, split="eval"), 1)], 1))
    wait_for(trainer, "version", 1)
    wait_for(f"http://127.0.0.1:{ports['inf_ops']}/healthz", "model_version", 1)
    loop.call(run_groups(bootstrap, names, [(TaskSpec("t-b", "echo", {"q": "Add 6 and 7."}, {}), 2),
                                            (TaskSpec("t-eval2", "echo", {"q": "Add 8 and 9."}, {}, split="eval"), 1)], 2))
    # Its group trains too: version 3, served from then on (nothing of this test runs on it but the live rollout).
    wait_for(trainer, "version", 2)
    wait_for(f"http://127.0.0.1:{ports['inf_ops']}/healthz", "model_version", 2)
    trajectories = released(loop, bootstrap, names)
    calls = recorded_calls(loop, bootstrap, names)
    by_task = {}
    for t in trajectories.values():
        by_task.setdefault(t.task_id, []).append(t)
    crashed = next(t for t in by_task["t-a"] if t.attributions)
    two_turns = next(t for t in by_task["t-b"] if t.num_calls == 2)
    noted = next(t for t in by_task["t-a"] if not t.attributions)
    assert [(a.error_class, a.step) for a in crashed.attributions] == [("agent_crash", 1)]
    assert {c.model_version for c in calls[two_turns.rollout_id]} == {2}

    # Late feedback on a rollout already released: recorded as a correction.
    async def feedback() -> None:
        async with EventProducer(bootstrap, "tests") as producer:
            await producer.send_raw(names.feedback, b"x", orjson.dumps({"rollout_id": noted.rollout_id, "name": "thumbs", "value": 1}))

    loop.call(feedback())

    # The read API behind the dashboard takes the gateway's keys.
    api = f"http://127.0.0.1:{ports['collector']}/api/rollouts"
    assert httpx.get(api, timeout=30).status_code == 401
    assert httpx.get(api, headers={"Authorization": f"Bearer {KEY}"}, timeout=30).status_code == 200

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        failures: list[str] = []
        page.on("pageerror", lambda exc: failures.append(str(exc)))

        # A key is asked for first, then every view opens.
        assert page.goto(base + "/").status == 401
        page.fill("input[name=key]", KEY)
        page.click("button[type=submit]")
        expect(page.locator("#title")).to_have_text("Overview")

        # Overview: one point per weight version on each split's curve, as the trajectories say.
        want = {"train": set(), "held-out": set()}
        for t in trajectories.values():
            want["held-out" if t.split == "eval" else "train"].add(t.max_model_version)
        assert want == {"train": {1, 2}, "held-out": {1, 2}}
        for split, versions in want.items():
            points = page.locator(f'svg.curve g.series[data-series="{split}"] circle.point')
            expect(points).to_have_count(len(versions), timeout=30000)
            assert {int(v) for v in points.evaluate_all("ps => ps.map(p => p.dataset.version)")} == versions
        expect(page.locator("#served")).to_contain_text("v3")  # what inference serves now, asked by the dashboard
        page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

        # Rollouts: every released rollout is in the table.
        page.goto(base + "/rollouts")
        for rollout_id in trajectories:
            expect(page.locator(f'#rollouts tr[data-rollout="{rollout_id}"]')).to_have_count(1, timeout=30000)
        page.screenshot(path=str(shots / "dashboard-rollouts.png"), full_page=True)

        # One rollout: its calls in order, each with one shaded token per completion token, and their versions.
        page.goto(base + f"/rollouts/{two_turns.rollout_id}")
        steps = page.locator("#timeline li.kind-call")
        expect(steps).to_have_count(2)
        assert steps.evaluate_all("ls => ls.map(l => l.dataset.step)") == ["1", "2"]
        for step, call in enumerate(calls[two_turns.rollout_id], 1):
            tokens = page.locator(f'#timeline li.kind-call[data-step="{step}"] .tok')
            expect(tokens).to_have_count(sum(len(c.token_ids) for c in call.completions))
            expect(page.locator(f'#timeline .call[data-step="{step}"]')).to_have_attribute("data-version", str(call.model_version))
        first = calls[two_turns.rollout_id][0].completions[0]
        page.locator("#timeline .tok").first.hover()
        expect(page.locator("#tip")).to_contain_text(str(first.token_ids[0]))
        expect(page.locator("#timeline li.kind-span")).to_contain_text("calculator")
        expect(page.locator("#transitions tbody tr")).to_have_count(len(two_turns.transitions))
        page.screenshot(path=str(shots / "dashboard-rollout.png"), full_page=True)

        # The crashed rollout: the error sits at step 1, after its first call, with the agent's own error span.
        page.goto(base + f"/rollouts/{crashed.rollout_id}")
        kinds = page.locator("#timeline li").evaluate_all("ls => ls.map(l => `${l.dataset.kind}:${l.dataset.step}`)")
        call, error = kinds.index("call:1"), kinds.index("error:1")
        assert call < error and all(k.endswith(":1") for k in kinds[call:error + 1]), kinds
        expect(page.locator("#timeline li.kind-error")).to_contain_text("the agent fell over")

        # Errors: the class at its step.
        page.goto(base + "/errors")
        expect(page.locator('#error-matrix td[data-class="agent_crash"][data-step="1"]')).to_have_text("1")
        page.screenshot(path=str(shots / "dashboard-errors.png"), full_page=True)

        # Training: the step the trainer took.
        page.goto(base + "/training")
        expect(page.locator("#steps tbody tr").first).to_be_visible(timeout=30000)
        # What the policy does by version: a row per version and split, its rollouts and calls as Kafka has them.
        groups: dict[tuple[int, str], list] = {}
        for t in trajectories.values():
            groups.setdefault((t.max_model_version, t.split), []).append(t)
        for (version, split), members in groups.items():
            row = page.locator(f'#behaviour tr[data-version="{version}"][data-split="{split}"]')
            expect(row).to_have_count(1, timeout=30000)
            mean_calls = sum(len(calls.get(t.rollout_id, [])) for t in members) / len(members)
            cells = row.locator("td")
            expect(cells.nth(3)).to_have_text(str(len(members)), timeout=30000)
            expect(cells.nth(5)).to_have_text("0.0%")  # this agent never calls a tool
            expect(cells.nth(8)).to_have_text(str(int(mean_calls)) if mean_calls.is_integer() else f"{mean_calls:.2f}", timeout=30000)
        expect(page.locator("#behaviour tbody tr")).to_have_count(len(groups))
        page.screenshot(path=str(shots / "dashboard-training.png"), full_page=True)

        # Feedback: the late thumbs, next to the rollout it names.
        page.goto(base + "/feedback")
        row = page.locator("#feedback tbody tr", has_text=noted.rollout_id)
        expect(row).to_contain_text("thumbs", timeout=30000)
        page.screenshot(path=str(shots / "dashboard-feedback.png"), full_page=True)

        # Live: the open table shows a new rollout without a reload.
        page.goto(base + "/rollouts")
        page.evaluate("window.notReloaded = true")
        loop.call(run_groups(bootstrap, names, [(TaskSpec("t-live", "echo", {"q": "Add 1 and 1."}, {}, split="eval"), 1)], 2))
        expect(page.locator("#rollouts tbody tr", has_text="t-live")).to_have_count(1, timeout=30000)
        assert page.evaluate("window.notReloaded") is True

        # Bad input: a not-found page and a clear message for a malformed filter, never a 5xx.
        response = page.goto(base + "/rollouts/no-such-rollout")
        assert response.status == 404
        expect(page.locator("main")).to_contain_text("no rollout 'no-such-rollout'")
        response = page.goto(base + "/rollouts?min_reward=lots")
        assert response.status == 400
        expect(page.locator("#banner")).to_have_text("min_reward must be a number, got 'lots'")
        assert page.goto(base + "/rollouts?sort=nope").status == 400
        assert failures == [], failures
        browser.close()
