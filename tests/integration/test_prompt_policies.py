"""Prompt policies through the real stack: a version announced on lw.prompts changes what the next calls of its task
type send to the model (the recorded prompt token ids hold its demonstrations), leaves other task types alone, is
stamped on every call (event and analytics), stays pinned for a rollout's later calls; bad policies are dead-lettered
and serving goes on."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from transformers import AutoTokenizer

from lightwire.model_cache import ensure_model
from lightwire.runtime import codec
from lightwire.runtime.kafka import EventProducer
from lightwire.settings import CommonSettings
from lightwire.v1 import events_pb2 as pb
from lightwire_client import Worker, WorkerConfig
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from testing.browser import launch_chromium
from testing.kafka_reading import read_until_end
from testing.services_fixtures import AgentStack, ServiceProcess, agent_stack, free_port, service_env

pytestmark = pytest.mark.integration
KEY = "test-key"
MARK = "Zorblax has 17 quuxes"  # words the agent never sends: in a prompt, only the demonstration put them there
DEMO = [{"role": "user", "content": f"{MARK}. How many?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "calculator", "arguments": '{"expression": "17"}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "17"},
        {"role": "assistant", "content": "Answer: 17"}]
SYSTEM_V2 = "Version two speaks: always use the calculator."


@pytest.fixture(scope="module")
def stack(bootstrap, tmp_path_factory) -> Iterator[AgentStack]:
    work = tmp_path_factory.mktemp("prompts")
    with agent_stack(bootstrap, work, "pp", api_key=KEY, gateway={"gateway_prompt_task_types": "arith"}) as running:
        port = free_port()
        dashboard = ServiceProcess("dashboard", service_env(
            bootstrap, running.names.prefix, work, log_level="WARNING", api_keys=KEY, dashboard_port=port,
            dashboard_collector_url=f"http://127.0.0.1:{running.ports['collector']}"), f"http://127.0.0.1:{port}/healthz",
            work / "dashboard.log").start()
        running.ports["dashboard"] = port
        try:
            yield running
        finally:
            dashboard.stop()


def policy(version: int, **fields) -> pb.Event:
    return codec.make_event("test", prompt_policy=pb.PromptPolicy(task_type=fields.pop("task_type", "arith"), version=version,
                                                                   created_unix_ms=int(time.time() * 1000), **fields))


def gateway_health(stack: AgentStack) -> dict:
    return httpx.get(f"http://127.0.0.1:{stack.ports['http']}/healthz", timeout=10).json()


def wait_for_versions(stack: AgentStack, versions: list[int], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while gateway_health(stack).get("prompt_versions", {}).get("arith") != versions:
        assert time.monotonic() < deadline, f"the gateway never loaded prompt versions {versions}: {gateway_health(stack)}"
        time.sleep(0.3)


async def announce(stack: AgentStack, *events: pb.Event, raw: bytes | None = None) -> None:
    async with EventProducer(stack.bootstrap, "test") as producer:
        for event in events:
            p = event.prompt_policy
            await producer.send(stack.names.prompts, f"{p.task_type}/{p.version}", event)
        if raw is not None:
            await producer.send_raw(stack.names.prompts, b"arith/7", raw)


def test_a_prompt_version_shapes_the_calls_of_its_task_type_and_is_recorded_on_each(stack, bootstrap):
    names = stack.names
    asyncio.run(announce(stack, policy(1, serving=True, demonstrations=[pb.Demonstration(messages_json=json.dumps(DEMO))]),
                         policy(1, task_type="sql", serving=True), policy(3, system_mode="shout", system="x"),
                         raw=b"\x00 not an event"))
    wait_for_versions(stack, [1])
    first_call_done, go_on = threading.Event(), threading.Event()
    finished: list[str] = []

    def agent(rollout):
        client = rollout.openai_client()
        messages = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": rollout.input["q"]}]
        reply = client.chat.completions.create(model="default", messages=messages, max_tokens=4, temperature=0)
        if rollout.input.get("pause"):
            first_call_done.set()
            assert go_on.wait(90)
        messages += [{"role": "assistant", "content": reply.choices[0].message.content or ""}, {"role": "user", "content": "Sure?"}]
        client.chat.completions.create(model="default", messages=messages, max_tokens=4, temperature=0)
        rollout.emit_reward(1.0)
        finished.append(rollout.rollout_id)

    specs = {
        "served": TaskSpec("t-served", "arith", {"q": "What is 2 + 2?"}, {"answer": 4}),
        "bare": TaskSpec("t-bare", "arith", {"q": "What is 2 + 2?"}, {"answer": 4}, metadata={"lw.prompt_version": "0"}),
        "other": TaskSpec("t-other", "echo", {"q": "What is 2 + 2?"}, {"answer": 4}),
        "pinned": TaskSpec("t-pinned", "arith", {"q": "What is 3 + 3?", "pause": True}, {"answer": 6}),
    }

    async def scenario() -> dict[str, str]:
        async with TaskDriver(bootstrap, names) as driver:
            groups = {name: await driver.publish_group(spec, 1, 1) for name, spec in specs.items()}
            worker = Worker(agent, WorkerConfig(target=stack.hub, api_key=KEY, max_tasks=len(specs), concurrency=len(specs),
                                                poll_wait_ms=500))
            running = asyncio.create_task(worker.run())
            assert await asyncio.to_thread(first_call_done.wait, 120)
            deadline = time.monotonic() + 120
            while len(finished) < len(specs) - 1:  # every other rollout made both its calls under version 1
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            # A newer version arrives while the paused rollout is between its calls: the next rollouts get it, the
            # paused one keeps the version its first call had.
            await announce(stack, policy(2, serving=True, system_mode="replace", system=SYSTEM_V2))
            await asyncio.to_thread(wait_for_versions, stack, [1, 2])
            go_on.set()
            stats = await asyncio.wait_for(running, 180)
            assert stats.succeeded == len(specs), stats
            return groups

    groups = asyncio.run(scenario())
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, names.rollout_events))]
    starts = {e.rollout_started.task.group_id: e.rollout_started.rollout_id for e in events if e.WhichOneof("payload") == "rollout_started"}
    calls: dict[str, list[pb.LlmCall]] = {}
    for e in events:
        if e.WhichOneof("payload") == "llm_call":
            calls.setdefault(e.llm_call.rollout_id, []).append(e.llm_call)
    tokenizer = AutoTokenizer.from_pretrained(ensure_model("tiny-llama", CommonSettings().cache_dir))
    seen = {}
    for name, group in groups.items():
        rollout_calls = sorted(calls[starts[group]], key=lambda c: c.seq)
        assert len(rollout_calls) == 2, name
        for call in rollout_calls:  # every call of every rollout
            prompt = tokenizer.decode(list(call.prompt_token_ids))
            seen.setdefault(name, []).append((call.prompt_version, MARK in prompt, SYSTEM_V2 in prompt, "Solve it." in prompt))
            assert MARK not in call.request_json  # the event keeps what the agent sent; the tokens are what the model saw
    assert seen["served"] == [(1, True, False, True)] * 2
    assert seen["pinned"] == [(1, True, False, True)] * 2
    assert seen["bare"] == [(0, False, False, True)] * 2
    assert seen["other"] == [(0, False, False, True)] * 2

    # A rollout started after version 2 arrived is served version 2: the system message replaced, no demonstrations.
    async def after() -> str:
        async with TaskDriver(bootstrap, names) as driver:
            group = await driver.publish_group(TaskSpec("t-later", "arith", {"q": "What is 5 + 5?"}, {"answer": 10}), 1, 1)
            stats = await asyncio.wait_for(Worker(agent, WorkerConfig(target=stack.hub, api_key=KEY, max_tasks=1, poll_wait_ms=500)).run(), 120)
            assert stats.succeeded == 1
            return group

    later_group = asyncio.run(after())
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, names.rollout_events))]
    later = next(e.rollout_started.rollout_id for e in events
                 if e.WhichOneof("payload") == "rollout_started" and e.rollout_started.task.group_id == later_group)
    later_calls = [e.llm_call for e in events if e.WhichOneof("payload") == "llm_call" and e.llm_call.rollout_id == later]
    assert [(c.prompt_version, SYSTEM_V2 in tokenizer.decode(list(c.prompt_token_ids)), "Solve it." in tokenizer.decode(list(c.prompt_token_ids)))
            for c in later_calls] == [(2, True, False)] * 2

    # The analytics keep each call's prompt version (the dashboard reads them there).
    headers = {"authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 60
    while True:
        detail = httpx.get(f"http://127.0.0.1:{stack.ports['collector']}/api/rollouts/{starts[groups['served']]}", headers=headers, timeout=10)
        if detail.status_code == 200 and len(detail.json()["calls"]) == 2:
            break
        assert time.monotonic() < deadline, detail.text
        time.sleep(0.5)
    assert [c["prompt_version"] for c in detail.json()["calls"]] == [1, 1]

    # ...and a person sees it on the rollout's page: each call with the prompt version it was served under.
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        base = f"http://127.0.0.1:{stack.ports['dashboard']}"
        page.goto(base + "/")
        page.fill("input[name=key]", KEY)
        page.click("button[type=submit]")
        for name, version in (("served", 1), ("bare", 0)):
            page.goto(base + f"/rollouts/{starts[groups[name]]}")
            cards = page.locator("#timeline .call")
            expect(cards).to_have_count(2, timeout=30000)
            assert cards.evaluate_all("cs => cs.map(c => c.dataset.prompt)") == [str(version)] * 2
            expect(page.locator("#timeline .badge.prompt")).to_have_count(2 if version else 0)
        page.goto(base + f"/rollouts/{starts[groups['served']]}")
        expect(page.locator("#timeline .badge.prompt").first).to_have_text("prompt v1")
        browser.close()

    # The bad announcements were dead-lettered with their reasons, and nothing of them was served.
    letters = [codec.decode(r.value).event.dead_letter for r in asyncio.run(read_until_end(bootstrap, names.dead_letter))]
    reasons = sorted(d.reason for d in letters if d.topic == names.prompts)
    assert len(reasons) == 3, reasons
    assert any("unknown task type 'sql'" in r for r in reasons)
    assert any("system_mode must be one of" in r for r in reasons)
    assert any("not a lightwire.v1.Event" in r or "protobuf" in r for r in reasons)
    assert gateway_health(stack)["prompt_versions"] == {"arith": [1, 2]}


def test_demonstration_selection_scores_every_candidate_through_the_stack_and_serves_the_best(stack, bootstrap):
    """The optimiser's whole loop on the tiny model: explore, read the winners back from the analytics, announce
    candidates, score each (and the agent's own prompt) on the same problems, serve the best. The reward here is a
    property of the reply (its length is even), so some rollouts win and some lose."""
    from lightwire.tools.prompts.optimiser import PromptVersions, SelectionConfig, prompt_metadata, select_demonstrations
    from lightwire.tools.tasks.arithmetic import generate

    def agent(rollout):
        reply = rollout.openai_client().chat.completions.create(
            model="default", messages=[{"role": "user", "content": rollout.input["question"]}], max_tokens=6,
            temperature=float(rollout.metadata.get("temperature", "1.0")))
        rollout.emit_reward(float(len(reply.choices[0].message.content or "") % 2 == 0))

    train = [p for p in generate(12, 0, seed=5) if p.split == "train"]

    def spec(p, split, temperature, version):
        return TaskSpec(p.task_id, "arith", {"question": p.question}, {"answer": p.answer}, split=split,
                        metadata={"temperature": str(temperature), **prompt_metadata(version)})

    config = SelectionConfig(task_type="arith", explore_problems=4, explore_group=2, explore_temperature=1.0, rounds=1,
                             demonstrations=1, candidates=3, validation_problems=4, in_flight=8, seed=1)

    async def scenario():
        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(agent, WorkerConfig(target=stack.hub, api_key=KEY, concurrency=4, poll_wait_ms=200)).run(stop))
        try:
            async with TaskDriver(bootstrap, stack.names) as driver, EventProducer(bootstrap, "test") as producer, \
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.ports['collector']}",
                                      headers={"authorization": f"Bearer {KEY}"}, timeout=30) as read_api:
                versions = PromptVersions(producer, stack.names, f"http://127.0.0.1:{stack.ports['http']}/healthz")
                return await select_demonstrations(config, driver, versions, read_api, train, spec)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 60)

    result = asyncio.run(scenario())
    assert result.pool, "no explored rollout won: the test's reward should let about half of them"
    assert 1 <= len(result.candidates) <= 3
    assert result.rollouts == 4 + 4 * 2 + len(result.candidates) * 4  # own prompt, explored, candidates
    for c in result.candidates:
        assert len(c.demonstrations) == 1 and set(c.rewards) == {p.task_id for p in train[:4]}
        assert c.demonstrations[0].rollout_id in {d.rollout_id for d in result.pool}
    # Every call of every validation rollout was served under its candidate's version.
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, stack.names.rollout_events))]
    served = {e.llm_call.rollout_id: e.llm_call.prompt_version for e in events if e.WhichOneof("payload") == "llm_call"}
    for c in result.candidates:
        assert {served[rid] for rid in c.rollouts} == {c.version}
    # lw.prompts records every candidate with its score; the chosen one is announced again, serving.
    announced = [codec.decode(r.value).event.prompt_policy for r in asyncio.run(read_until_end(bootstrap, stack.names.prompts))
                 if r.key != b"arith/7"]  # the first test's record that is not an event
    scored = {p.version: p for p in announced if p.optimiser == "demonstrations" and p.scored_rollouts}
    assert {v: round(p.score, 6) for v, p in scored.items() if not p.serving} == {c.version: round(c.score, 6) for c in result.candidates}
    if result.chosen is not None:
        assert any(p.serving and p.version == result.chosen.version for p in announced)
        deadline = time.monotonic() + 30
        while gateway_health(stack)["serving_prompt_versions"].get("arith") != result.chosen.version:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    else:
        assert max(c.score for c in result.candidates) <= sum(result.baseline.values()) / len(result.baseline)
