"""The agent frameworks' own virtualenvs, built once from their locks and reused: the examples run in them (the
framework tests, `lightwire demo --task sql`).

`$LW_CACHE_DIR/venv-<name>-<hash of requirements/<name>.lock and the interpreter>` holds the lock's packages
(keyed by content, so a lock change builds a fresh one and every later run reuses it). lightwire-client is
built and installed into it from a copy of client/ on every call (a few seconds), the way a user installs it
beside their framework, so the venv never holds a stale client.

    python -m lightwire.tools.stack.framework_venv frameworks     # build (or reuse) it by hand; prints its path
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: requirements/, client/, proto/
UV_VERSION = "0.13.8"
# No framework may phone home from a test or the demo (tracing exporters, telemetry).
QUIET_ENV = {"OPENAI_AGENTS_DISABLE_TRACING": "1", "CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false",
             "OTEL_SDK_DISABLED": "true", "LANGCHAIN_TRACING_V2": "false", "ANONYMIZED_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}


def cache_dir() -> Path:
    from lightwire.settings import CommonSettings  # LW_CACHE_DIR, with the project's documented default

    return CommonSettings().cache_dir


def uv() -> str:
    """The uv that scripts/bootstrap.sh installs into the cache; a uv on PATH otherwise."""
    cached = cache_dir() / f"uv-{UV_VERSION}" / "bin" / "uv"
    found = str(cached) if cached.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("no uv: run `make setup` (scripts/bootstrap.sh installs it into the cache)")
    return found


def venv_path(name: str) -> Path:
    lock = ROOT / "requirements" / f"{name}.lock"
    digest = hashlib.sha256(lock.read_bytes() + sys.version.encode()).hexdigest()[:16]
    return cache_dir() / f"venv-{name}-{digest}"


def _run(*args: str, timeout_s: float = 900) -> None:
    env = {**os.environ, "UV_CACHE_DIR": str(cache_dir() / "uv-cache"), "UV_LINK_MODE": "copy"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def ensure_venv(name: str) -> Path:
    """The venv for requirements/<name>.lock, on this interpreter's Python, with the current lightwire-client in it;
    its python's path."""
    python = cached_venv(venv_path(name), "-r", str(ROOT / "requirements" / f"{name}.lock"))
    _install_client(python)
    return python


def cached_venv(venv: Path, *install: str) -> Path:
    """`venv` with `uv pip install *install` in it, built once (a marker file says it finished) and reused; its python."""
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        _run(uv(), "venv", "-q", "-p", sys.executable, str(venv))
        _run(uv(), "pip", "install", "-q", "--python", str(python), *install)
        (venv / ".complete").write_text(" ".join(install) + "\n")
    return python


def _install_client(python: Path) -> None:
    # The build writes its stubs into the source tree: build from a copy, so the checkout stays as it is.
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("client", "proto", "scripts"):
            shutil.copytree(ROOT / part, Path(tmp) / part, ignore=shutil.ignore_patterns("build", "*.egg-info", "_gen", "__pycache__"))
        _run(uv(), "pip", "install", "-q", "--python", str(python), "--no-deps", "--reinstall", str(Path(tmp) / "client"))


if __name__ == "__main__":
    print(ensure_venv(sys.argv[1] if len(sys.argv) > 1 else "frameworks"))
