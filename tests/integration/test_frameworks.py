"""Each framework example, unchanged, against the real stack (inference on tiny-llama, gateway, collector): its LLM
calls arrive as trajectories with token ids and with the reward it emitted, and a crash mid-rollout is attributed.

The frameworks live in their own virtualenvs (tools/stack/framework_venv.py, built once from requirements/frameworks*.lock
and reused), and every agent runs there as a subprocess, as a user would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lightwire.runtime import codec
from lightwire.v1 import events_pb2 as pb
from lightwire.tools.tasks.driver import TaskDriver, TaskSpec
from lightwire.tools.stack.framework_venv import QUIET_ENV, ensure_venv
from testing.kafka_reading import read_until_end
from testing.services_fixtures import AgentStack, agent_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
KEY = "framework-key"


@pytest.fixture(scope="module")
def stack(bootstrap, tmp_path_factory) -> Iterator[AgentStack]:
    """inference (tiny-llama) + gateway (API key on) + collector (the agent's reward) on their own topic prefix."""
    with agent_stack(bootstrap, tmp_path_factory.mktemp("frameworks"), "fw", api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def frameworks_python() -> Path:
    return ensure_venv("frameworks")


@pytest.fixture(scope="module")
def crewai_python() -> Path:
    return ensure_venv("frameworks-crewai")


@dataclass(frozen=True)
class Agent:
    venv: str          # requirements/<venv>.lock
    script: Path
    min_calls: int     # the fewest LLM calls one of its rollouts makes
    inputs: tuple[dict, ...]


QUESTIONS = ({"question": "Tom has 1 apple and buys 2 more. How many apples does he have?"},
             {"question": "A box holds 2 pens and 2 more are added. How many pens are there?"})
# The demo agent stops when the model calls no tool; the others nudge for an 'Answer:' line for a few turns.
AGENTS = {
    "openai_sdk": Agent("frameworks", ROOT / "examples" / "arith_agent.py", 1, QUESTIONS),
    "langgraph": Agent("frameworks", ROOT / "examples" / "langgraph_agent.py", 2, QUESTIONS),
    "openai_agents": Agent("frameworks", ROOT / "examples" / "openai_agents_agent.py", 2, QUESTIONS),
    "autogen": Agent("frameworks", ROOT / "examples" / "autogen_agent.py", 2, QUESTIONS),
    "crewai": Agent("frameworks-crewai", ROOT / "examples" / "crewai_agent.py", 2, QUESTIONS),
    # The SQL task's agent (LangGraph), on tasks that name their database.
    "sql": Agent("frameworks", ROOT / "examples" / "sql_agent.py", 2,
                 ({"question": "How many employees live in Osaka?", "db_seed": 1}, {"question": "How old is Ana?", "db_seed": 2})),
    "crash": Agent("frameworks", ROOT / "testing" / "framework_crash_agent.py", 2,
                   ({"question": "2 + 1?", "crash": True}, {"question": "2 + 2?"}, {"question": "2 + 3?"})),
}


@dataclass
class Run:
    returncode: int
    stderr: str
    reports: dict[str, dict]                 # rollout id -> the agent's own line: calls made, reward emitted
    summary: dict                            # the worker's totals
    trajectories: dict[str, pb.Trajectory]   # task id -> trajectory
    calls: dict[str, list[pb.LlmCall]]       # rollout id -> the gateway's call events

    def check_exit(self) -> None:
        assert self.returncode == 0, self.stderr[-4000:]


@pytest.fixture(scope="module")
def runs(stack, frameworks_python, crewai_python, tmp_path_factory) -> dict[str, Run]:
    """Every agent at once, each on tasks of its own type (the inference service batches their calls), to the end."""
    pythons = {"frameworks": frameworks_python, "frameworks-crewai": crewai_python}

    async def publish() -> None:
        async with TaskDriver(stack.bootstrap, stack.names) as driver:
            for name, agent in AGENTS.items():
                for i, task_input in enumerate(agent.inputs):
                    await driver.publish_group(TaskSpec(task_id=f"{name}-{i}", task_type=f"arith-{name}", input=task_input,
                                                        reference={"answer": 3 + i}), 1, 1)

    asyncio.run(publish())
    env = {**os.environ, **QUIET_ENV}
    logs = tmp_path_factory.mktemp("agents")
    procs = {
        # Output to files: a pipe nobody reads while we wait on another agent would fill up and stall it.
        name: subprocess.Popen([str(pythons[agent.venv]), str(agent.script), "--target", stack.hub, "--api-key", KEY,
                                "--task-type", f"arith-{name}", "--max-tasks", str(len(agent.inputs)), "--max-tokens", "12", "--max-turns", "2"],
                               stdout=open(logs / f"{name}.out", "w"), stderr=open(logs / f"{name}.err", "w"), env=env,
                               cwd=agent.script.parent)
        for name, agent in AGENTS.items()
    }
    outputs = {}
    for name, proc in procs.items():
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        outputs[name] = ((logs / f"{name}.out").read_text(), (logs / f"{name}.err").read_text(), proc.returncode)
    wanted = {f"{name}-{i}" for name, agent in AGENTS.items() for i in range(len(agent.inputs)) if outputs[name][2] == 0}
    deadline = time.monotonic() + 60
    while not wanted <= set(trajectories := _trajectories(stack)) and time.monotonic() < deadline:
        time.sleep(0.5)
    calls: dict[str, list[pb.LlmCall]] = {}
    for record in asyncio.run(read_until_end(stack.bootstrap, stack.names.rollout_events)):
        event = codec.decode(record.value).event
        if event.WhichOneof("payload") == "llm_call":
            calls.setdefault(event.llm_call.rollout_id, []).append(event.llm_call)
    out = {}
    for name, (stdout, stderr, returncode) in outputs.items():
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        summaries = [json.loads(line) for line in stderr.splitlines() if line.startswith('{"succeeded"')]
        out[name] = Run(returncode, stderr, {r["rollout_id"]: r for r in lines}, summaries[-1] if summaries else {},
                        {k: t for k, t in trajectories.items() if k.startswith(f"{name}-")}, calls)
    return out


def _trajectories(stack: AgentStack) -> dict[str, pb.Trajectory]:
    events = [codec.decode(r.value).event for r in asyncio.run(read_until_end(stack.bootstrap, stack.names.trajectories))]
    return {e.trajectory.task_id: e.trajectory for e in events if e.WhichOneof("payload") == "trajectory"}


@pytest.mark.parametrize("framework", [name for name in AGENTS if name != "crash"])
def test_the_example_runs_unchanged_and_its_calls_become_trajectories_with_tokens_and_its_reward(framework, runs):
    run, agent = runs[framework], AGENTS[framework]
    run.check_exit()
    assert (run.summary["succeeded"], run.summary["failed"]) == (2, 0), run.summary
    assert set(run.trajectories) == {f"{framework}-0", f"{framework}-1"}
    for t in run.trajectories.values():
        report = run.reports[t.rollout_id]
        assert t.status == pb.ROLLOUT_STATUS_SUCCEEDED
        # Every call the agent made was recorded by the gateway and declared at finish.
        assert report["calls"] >= agent.min_calls and t.num_calls == report["calls"] == len(run.calls[t.rollout_id])
        assert sum(x.merged_calls for x in t.transitions) == t.num_calls
        assert all(x.prompt_token_ids and x.response_token_ids and len(x.response_logprobs) == len(x.response_token_ids)
                   for x in t.transitions)
        assert all(c.http_status == 200 and c.completions[0].token_ids for c in run.calls[t.rollout_id])
        # The reward the agent emitted is the trajectory's (the collector scores with task_completion only). A protobuf
        # map reads 0.0 for a missing key, and the tiny model's reward is 0.0: the key itself must be there.
        assert "task_completion" in t.reward_components
        assert t.reward_components["task_completion"] == report["reward"] == t.reward


def test_a_crash_mid_rollout_is_attributed_to_its_step_and_the_worker_goes_on(runs):
    run = runs["crash"]
    run.check_exit()
    assert (run.summary["succeeded"], run.summary["failed"]) == (2, 1)
    assert run.summary["errors"] == ["LedgerUnavailable: ledger for 'acme' is down"]
    crashed = run.trajectories["crash-0"]
    assert crashed.status == pb.ROLLOUT_STATUS_FAILED and crashed.num_calls == 2 == len(run.calls[crashed.rollout_id])
    # The failure happened after the agent's second call: that is the step it belongs to.
    assert [(a.error_class, a.step) for a in crashed.attributions] == [("agent_crash", 2)]
    assert "ledger for 'acme' is down" in crashed.attributions[0].message
    assert "in ledger_lookup" in crashed.attributions[0].stack and "LedgerUnavailable" in crashed.attributions[0].stack
    for task_id in ("crash-1", "crash-2"):
        t = run.trajectories[task_id]
        assert t.status == pb.ROLLOUT_STATUS_SUCCEEDED and t.num_calls == 2 and t.reward_components["task_completion"] == 1.0


def test_the_sql_agent_s_failed_query_comes_back_as_the_tool_s_error_and_a_failed_tool_span(frameworks_python, tmp_path):
    """The tool itself, in the agent's own virtualenv: the model reads SQLite's error and may repair its query, and
    the span it reports is what the collector attributes (a tool_exception at that call: tests/unit/test_attribution.py)."""
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import json
        from sql_agent import sql_tool
        from sql_db import build

        class Rollout:  # what the tool uses of a rollout: emit_span
            calls = 1
            spans = []
            def emit_span(self, name, kind="step", attributes=None, error=None, **_):
                self.spans.append({"name": name, "kind": kind, "attributes": attributes, "error": type(error).__name__, "message": str(error)})

        rollout = Rollout()
        run_sql = sql_tool(rollout, build(1))
        good = run_sql.invoke({"query": "SELECT COUNT(*) FROM employees"})
        bad = run_sql.invoke({"query": "SELECT wage FROM employees"})
        write = run_sql.invoke({"query": "DELETE FROM employees"})
        print(json.dumps({"good": good, "bad": bad, "write": write, "spans": rollout.spans}))
    """))
    done = subprocess.run([str(frameworks_python), str(probe)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT / "examples", env={**os.environ, **QUIET_ENV, "PYTHONPATH": str(ROOT / "examples")})
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["good"] == "12"
    assert out["bad"] == "error: no such column: wage"
    assert out["write"] == "error: attempt to write a readonly database"
    assert out["spans"] == [
        {"name": "run_sql", "kind": "tool", "attributes": {"query": "SELECT wage FROM employees"}, "error": "OperationalError",
         "message": "no such column: wage"},
        {"name": "run_sql", "kind": "tool", "attributes": {"query": "DELETE FROM employees"}, "error": "OperationalError",
         "message": "attempt to write a readonly database"},
    ]
