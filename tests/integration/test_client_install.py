"""lightwire-client installs on its own, imports fast and brings in no ML dependency."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ML = {"torch", "transformers", "numpy", "tensorflow", "jax", "vllm", "verl", "accelerate", "peft", "safetensors", "pandas"}


def test_the_client_installs_alone_imports_in_under_a_second_and_pulls_no_ml(tmp_path):
    # pip builds in the source tree: build from a copy, so the checkout stays clean.
    src = tmp_path / "src"
    for part in ("client", "proto", "scripts"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("build", "*.egg-info", "_gen", "__pycache__"))
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "uv"] if not Path(uv).exists() else [uv]
    install = subprocess.run(
        [*pip, "pip", "install", "-q", "--python", str(python), str(src / "client")], capture_output=True, text=True, timeout=600
    )
    if install.returncode != 0:  # no uv beside this interpreter: plain pip does the same job
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(src / "client")], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "lightwire-client" in installed
    assert not (installed & ML), f"ML dependencies pulled in: {sorted(installed & ML)}"
    timing = subprocess.run(
        [str(python), "-c", "import time; t=time.perf_counter(); import lightwire_client; print(time.perf_counter()-t)"],
        capture_output=True, text=True, check=True,
    )
    assert float(timing.stdout) < 1.0, f"import took {timing.stdout.strip()} s"
