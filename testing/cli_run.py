"""Running the `lightwire` command as a user does, in a subprocess of the test's interpreter."""

from __future__ import annotations

import subprocess
import sys


def lightwire(*args: str, env: dict[str, str], timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightwire.tools.cli", *args], env=env, capture_output=True, text=True, timeout=timeout_s)
