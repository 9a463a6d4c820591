"""The Reward gRPC service on a real in-process server, and a pipeline reward scored through it."""

from __future__ import annotations

import textwrap
import threading
import time

import grpc
import pytest

from lightwire.v1 import reward_pb2, reward_pb2_grpc
from lightwire.plugins.registry import RewardPipeline, resolve_rewards
from lightwire.plugins.remote_reward import RemoteReward
from lightwire.services.reward.servicer import RewardServicer


@pytest.fixture
def slow_plugin(tmp_path, monkeypatch):
    (tmp_path / "slow_judge.py").write_text(textwrap.dedent("""
        import time
        def slow(prompts, completions, delay=0.0, **ctx):
            time.sleep(delay)
            return [float(len(c)) for c in completions]
    """))
    dist = tmp_path / "slow_judge-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-judge\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lightwire.rewards]\nslow = slow_judge:slow\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def reward_server():
    """A real grpc.aio server with the servicer, on its own loop in a thread (the remote client is blocking)."""
    import asyncio

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box = {}

    async def start():
        server = grpc.aio.server()
        reward_pb2_grpc.add_RewardServicer_to_server(RewardServicer(), server)
        box["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        box["server"] = server
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    yield f"127.0.0.1:{box['port']}"
    asyncio.run_coroutine_threadsafe(box["server"].stop(None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def test_a_built_in_reward_scored_remotely_matches_the_local_one(reward_server):
    remote = RemoteReward("numeric_match", reward_server)
    assert remote(["q"], ["so it is 42"], reference=[{"answer": 42}]) == [1.0]
    assert remote(["q"], ["no idea"], reference=[{"answer": 42}]) == [0.0]
    assert remote(["q"], ["42"], reference=[{}]) == [None]  # does not apply


def test_unknown_names_and_bad_context_are_refused(reward_server):
    stub = reward_pb2_grpc.RewardStub(grpc.insecure_channel(reward_server))
    with pytest.raises(grpc.RpcError) as err:
        stub.Score(reward_pb2.ScoreRequest(reward_name="nope", completion="x"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.Score(reward_pb2.ScoreRequest(reward_name="format_validity", completion="x", context_json="[1"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_slow_judge_past_its_timeout_is_left_out(slow_plugin, reward_server):
    assert RemoteReward("slow", reward_server, timeout_s=5)(["q"], ["abc"]) == [3.0]
    t0 = time.monotonic()
    assert RemoteReward("slow", reward_server, timeout_s=0.3)(["q"], ["abc"], delay=2.0) == [None]
    assert time.monotonic() - t0 < 1.5


def test_pipelines_resolve_remote_names_only_with_a_target():
    pipeline = RewardPipeline.parse("task_completion,remote:judge:0.5")
    with pytest.raises(ValueError, match="LW_COLLECTOR_REMOTE_REWARD_TARGET"):
        resolve_rewards(pipeline)
    functions = resolve_rewards(pipeline, "127.0.0.1:1", 0.1)
    assert isinstance(functions["remote:judge"], RemoteReward) and callable(functions["task_completion"])
