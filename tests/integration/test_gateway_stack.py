"""The real openai client and the real lightwire-client against the gateway, in front of the inference service on
the tiny model, with the collector turning what they did into trajectories: all real processes, a real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from transformers import AutoTokenizer

from lightwire import topics
from lightwire.runtime import codec
from lightwire.settings import CommonSettings
from lightwire.v1 import events_pb2 as pb
from lightwire_client import Worker, WorkerConfig
from lightwire.model_cache import ensure_model
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from testing.kafka_reading import read_until_end
from testing.services_fixtures import agent_stack

pytestmark = pytest.mark.integration
KEY = "test-key"


@pytest.fixture(scope="module")
def stack(bootstrap, tmp_path_factory) -> Iterator[tuple[topics.TopicNames, dict[str, int]]]:
    """inference + gateway + collector on their own topic prefix."""
    with agent_stack(bootstrap, tmp_path_factory.mktemp("gw"), "gw", api_key=KEY) as running:
        yield running.names, running.ports


def client(ports, rollout_id: str = "", key: str = KEY) -> openai.OpenAI:
    base = f"http://127.0.0.1:{ports['http']}" + (f"/rollouts/{rollout_id}" if rollout_id else "") + "/v1"
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def calls_of(bootstrap: str, names, rollout_id: str) -> list[pb.LlmCall]:
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, names.rollout_events))]
    return [e.llm_call for e in events if e.WhichOneof("payload") == "llm_call" and e.llm_call.rollout_id == rollout_id]


def test_openai_client_calls_are_recorded_with_token_ids_that_decode_to_what_the_client_got(stack, bootstrap):
    names, ports = stack
    tokenizer = AutoTokenizer.from_pretrained(ensure_model("tiny-llama", CommonSettings().cache_dir))
    c = client(ports, "r-openai-1")
    plain = c.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=8, seed=1)
    many = c.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=6, n=2, seed=2)
    streamed = "".join((chunk.choices[0].delta.content or "") for chunk in c.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "hey"}], max_tokens=6, stream=True, stream_options={"include_usage": True})
        if chunk.choices)
    tools = c.chat.completions.create(model="default", messages=[{"role": "user", "content": "add 2 and 3"}], max_tokens=8,
                                      tools=[{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}])
    async def async_call():
        base = f"http://127.0.0.1:{ports['http']}/rollouts/r-openai-1/v1"
        async with openai.AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0) as ac:
            return await ac.chat.completions.create(model="default", messages=[{"role": "user", "content": "yo"}], max_tokens=5)

    async_reply = asyncio.run(async_call())
    assert plain.choices[0].message.content is not None and len(many.choices) == 2 and tools.choices and async_reply.choices
    deadline = time.monotonic() + 30
    while len(recorded := calls_of(bootstrap, names, "r-openai-1")) < 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [r.seq for r in recorded] == [1, 2, 3, 4, 5] and recorded[0].call_id.startswith("r-openai-1/1@")
    texts = [plain.choices[0].message.content, *[ch.message.content for ch in many.choices], streamed, async_reply.choices[0].message.content]
    completions = [recorded[0].completions[0], *recorded[1].completions, recorded[2].completions[0], recorded[4].completions[0]]
    for text, completion in zip(texts, completions):
        assert tokenizer.decode(list(completion.token_ids), skip_special_tokens=True).strip() == (text or "").strip()
        assert len(completion.logprobs) == len(completion.token_ids) > 0
    assert recorded[0].model_version == 1 and recorded[0].prompt_token_ids and recorded[0].http_status == 200
    # Engine-only fields stay out of the reply unless asked for.
    assert "token_ids" not in plain.choices[0].model_dump()


def test_bad_input_gets_openai_errors(stack):
    _, ports = stack
    with pytest.raises(openai.NotFoundError):
        client(ports).chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        client(ports, key="wrong").chat.completions.create(model="default", messages=[{"role": "user", "content": "x"}])
    bad = httpx.post(f"http://127.0.0.1:{ports['http']}/v1/chat/completions", content=b"{not json",
                     headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    too_long = client(ports).chat.completions
    with pytest.raises(openai.BadRequestError):
        too_long.create(model="default", messages=[{"role": "user", "content": "word " * 5000}], max_tokens=4)


def test_worker_rollouts_through_agenthub_become_trajectories_with_tokens_and_rewards(stack, bootstrap):
    names, ports = stack

    def agent(rollout):
        reply = rollout.openai_client().chat.completions.create(
            model="default", messages=[{"role": "user", "content": rollout.input["q"]}], max_tokens=6)
        if rollout.input["q"] == "crash":
            raise RuntimeError("the agent fell over")
        rollout.emit_reward(0.5 if reply.choices[0].message.content else 0.25)

    async def scenario():
        async with TaskDriver(bootstrap, names) as driver:
            for q in ("one", "two", "crash"):
                await driver.publish_group(TaskSpec(task_id=f"t-{q}", task_type="echo", input={"q": q}, reference={"answer": 1}), 1, 1)
            stats = await asyncio.wait_for(
                Worker(agent, WorkerConfig(target=f"127.0.0.1:{ports['hub']}", api_key=KEY, max_tasks=3, poll_wait_ms=500)).run(), 120)
            deadline = time.monotonic() + 60
            while driver.in_flight and time.monotonic() < deadline:
                await driver.poll()
            return stats, driver

    stats, driver = asyncio.run(scenario())
    assert (stats.succeeded, stats.failed) == (2, 1)
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(bootstrap, names.trajectories))]
    trajectories = {e.trajectory.task_id: e.trajectory for e in events if e.WhichOneof("payload") == "trajectory"}
    assert set(trajectories) == {"t-one", "t-two", "t-crash"}
    for task_id in ("t-one", "t-two"):
        t = trajectories[task_id]
        assert t.status == pb.ROLLOUT_STATUS_SUCCEEDED and t.reward_components["task_completion"] == 0.5
        assert t.transitions[0].response_token_ids and t.transitions[0].prompt_token_ids
    crashed = trajectories["t-crash"]
    assert crashed.status == pb.ROLLOUT_STATUS_FAILED
    assert [(a.error_class, a.step) for a in crashed.attributions] == [("agent_crash", 1)]
    assert "the agent fell over" in crashed.attributions[0].message


def test_after_a_weight_reload_the_next_call_reports_the_new_version_and_answers_differently(stack, bootstrap, tmp_path):
    """Runs last in this module: it moves the shared inference service to version 2."""
    import torch
    from transformers import AutoModelForCausalLM

    from lightwire.runtime.kafka import EventProducer

    names, ports = stack
    ask = dict(model="default", messages=[{"role": "user", "content": "tell me a story"}], max_tokens=12, temperature=0.0, seed=7)
    before = client(ports, "r-reload").chat.completions.create(**ask)
    assert before.system_fingerprint == "lightwire-v1"

    trained = AutoModelForCausalLM.from_pretrained(ensure_model("tiny-llama", CommonSettings().cache_dir))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * p.std().clamp(min=1e-3))
    trained.save_pretrained(tmp_path / "v2")

    async def announce():
        async with EventProducer(bootstrap, "test-trainer") as producer:
            version = pb.WeightVersion(model="tiny-llama", version=2, uri=f"file://{tmp_path / 'v2'}", format="full", step=1)
            await producer.send(names.weights, "tiny-llama", codec.make_event("test-trainer", weight_version=version))

    asyncio.run(announce())
    deadline = time.monotonic() + 60
    after = client(ports, "r-reload").chat.completions.create(**ask)
    while after.system_fingerprint != "lightwire-v2" and time.monotonic() < deadline:
        time.sleep(0.2)
        after = client(ports, "r-reload").chat.completions.create(**ask)
    assert after.system_fingerprint == "lightwire-v2"
    assert after.choices[0].message.content != before.choices[0].message.content
    # Greedy decoding on the new weights is stable: the version, not chance, changed the answer.
    again = client(ports, "r-reload").chat.completions.create(**ask)
    assert again.choices[0].message.content == after.choices[0].message.content

    recorded = calls_of(bootstrap, names, "r-reload")
    deadline = time.monotonic() + 30
    while (not recorded or recorded[-1].model_version != 2) and time.monotonic() < deadline:
        time.sleep(0.5)
        recorded = calls_of(bootstrap, names, "r-reload")
    assert recorded[0].model_version == 1 and recorded[-1].model_version == 2
    assert list(recorded[0].completions[0].token_ids) != list(recorded[-1].completions[0].token_ids)
