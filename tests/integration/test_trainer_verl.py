"""The verl backend's update against the torch backend's, on one batch of tiny-llama sequences.

Runs in the verl side venv (requirements/verl.lock: verl 0.9.1, about 6.6 GB; 45 s to build from a warm uv cache,
several GB of downloads from a cold one), so it is opt-in: it runs where that venv is already built, or with
LW_TEST_VERL=1, which builds it. verl's FSDP engine needs CUDA, so what is compared here is everything around it:
our batch layout through verl's DataProto, left_right_2_no_padding and ppo_loss (the loss verl's engine
backpropagates), against services/trainer/grpo.py's loss on the same model and batch.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lightwire.settings import CommonSettings
from lightwire.tools.stack.framework_venv import ROOT, cached_venv, venv_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCK = ROOT / "requirements" / "verl.lock"


@pytest.fixture(scope="module")
def verl_python() -> Path:
    venv = venv_path("verl")
    if not (venv / ".complete").exists() and os.environ.get("LW_TEST_VERL") != "1":
        pytest.skip(f"the verl venv ({venv}) is not built; LW_TEST_VERL=1 builds it (several GB)")
    return cached_venv(venv, "-r", str(LOCK))


def test_verl_loss_and_update_match_the_torch_backend(verl_python: Path):
    model_dir = CommonSettings().cache_dir / "models" / "tiny-llama"
    if not model_dir.is_dir():
        pytest.skip(f"{model_dir} is not prepared")
    done = subprocess.run([str(verl_python), str(ROOT / "testing" / "verl_loss_check.py"), str(model_dir)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    # Same float32 math in a different order: agreement to float32 rounding, far below what a wrong weight fold,
    # a shifted response column or a different clip range gives (those move the loss in its second digit).
    assert r["ours_loss"] != 0 and r["verl_rows"] == 8
    assert abs(r["verl_loss"] - r["ours_loss"]) <= 1e-5 * max(1.0, abs(r["ours_loss"]))
    assert r["grad_max_diff"] <= 1e-5 * r["grad_max_abs"] + 1e-7
    assert 0 < r["ours_clip_fraction"] < 1 and r["verl_clip_fraction"] == pytest.approx(r["ours_clip_fraction"], abs=1e-6)
    # Adam's first step is about lr * g / |g| per weight, so for weights whose gradient is near 0 a rounding-sized
    # gradient difference moves the step visibly: 5% of the step (lr 1e-3) is the bound; a wrong mapping moves it ~100%.
    assert r["weights_moved"] > 1e-4 and r["weights_max_diff"] <= 0.05 * r["weights_moved"]
    assert r["mapped_loss"] == pytest.approx(r["verl_loss"], abs=1e-7)
