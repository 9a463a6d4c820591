"""What a user's `pip install .` puts in site-packages, and the layering contract checked over exactly that install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A real, non-editable install of this checkout (no dependencies: they are not what is checked)."""
    target = tmp_path_factory.mktemp("site")
    # From a copy: setuptools builds in the source tree's build/, and a stale build/lib would ship modules since deleted.
    source = tmp_path_factory.mktemp("src") / "lightwire"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".lightwire", "build", "*.egg-info", "__pycache__",
                                                              "demo-results", "node_modules", ".pytest_cache"))
    # uv is in the dev lock (the venv has no pip); the build uses the venv's setuptools, offline.
    cmd = [str(VENV_BIN / "uv"), "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--python", sys.executable,
           "--target", str(target), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=target,
                          env={**os.environ, "UV_CACHE_DIR": str(target.parent / "uv-cache")})
    assert done.returncode == 0, done.stderr
    return target


def test_install_puts_only_lightwire_at_the_top_level(installed):
    top = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info") and p.name not in ("bin", ".lock")}
    assert top == {"lightwire"}, f"top-level names in site-packages: {sorted(top)}"
    pkg = installed / "lightwire"
    for sub in ("services/gateway", "services/collector", "services/reward", "services/trainer", "services/inference",
                "tools/stack", "tools/tasks", "examples", "runtime", "analytics/migrations", "v1"):
        assert (pkg / sub).is_dir(), f"lightwire/{sub} missing from the install"
    assert list((pkg / "analytics" / "migrations").glob("*.sql")), "the schema migrations are package data"


def test_the_import_linter_contract_holds_on_the_installed_package(installed):
    done = subprocess.run([str(VENV_BIN / "lint-imports"), "--no-cache", str(ROOT / "pyproject.toml")], capture_output=True,
                          text=True, cwd=installed, env={**os.environ, "PYTHONPATH": str(installed)}, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout
