"""The demo's framework agent runs as a child that dies with the demo, even when the demo is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lightwire.tools.demo import _with_parent

# A stand-in for the demo: starts the long-running child the way the demo does, prints its pid, then waits.
PARENT = """
import subprocess, sys, time
from pathlib import Path
from lightwire.tools.demo import _with_parent
child = subprocess.Popen(_with_parent(Path(sys.executable), ["-c", "import time; time.sleep(120)"]))
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_agent_child_dies_when_the_demo_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.5)  # past the launcher's exec: the child runs the agent's command now
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


def test_without_linux_the_command_is_unchanged(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _with_parent(sys.executable, ["agent.py", "--x"]) == [sys.executable, "agent.py", "--x"]


def test_the_launcher_refuses_an_orphaned_start():
    # The parent it names is not its parent (it died before the guard was set): the agent must not start at all.
    argv = _with_parent(sys.executable, ["-c", "print('started')"])
    argv[3] = str(os.getpid() + 1_000_000)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "started" not in done.stdout
