"""The verl backend's batch mapping (services/trainer/verl_batch.py) on real tensors, and the backend choice: the
torch path never imports verl."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightwire.settings import CommonSettings
from lightwire.services.trainer.collate import Sequences
from lightwire.services.trainer.grpo import LossConfig, policy_loss
from lightwire.services.trainer.settings import TrainerSettings
from lightwire.services.trainer.verl_batch import metrics_from_verl, pad_rows, split_points, to_verl_tensors

ROOT = Path(__file__).resolve().parents[2]


def batch() -> Sequences:
    # row 0: prompt [11, 12], response [13, 14, 15] (14 an observation token); row 1: prompt [21, 22, 23, 24],
    # response [25]; row 2: prompt [31], response [32, 33]. Masks and logprobs sit at the predicting position.
    ids = torch.tensor([[11, 12, 13, 14, 15], [21, 22, 23, 24, 25], [31, 32, 33, 0, 0]])
    attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    mask = torch.tensor([[0, 1, 0, 1.0], [0, 0, 0, 1.0], [1, 1, 0, 0.0]])
    behaviour = torch.tensor([[0, -0.1, -9, -0.3], [0, 0, 0, -0.5], [-0.6, -0.7, 0, 0]])
    return Sequences(ids, attention, mask, behaviour, torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.5, 1.0, 0.5]))


def test_rows_split_at_the_first_sampled_token_into_left_padded_prompts_and_right_padded_responses():
    s = batch()
    assert split_points(s).tolist() == [2, 4, 1]
    t = to_verl_tensors(s, pad_id=0)
    assert t["prompts"].tolist() == [[0, 0, 11, 12], [21, 22, 23, 24], [0, 0, 0, 31]]
    assert t["responses"].tolist() == [[13, 14, 15], [25, 0, 0], [32, 33, 0]]
    assert torch.equal(t["input_ids"], torch.cat([t["prompts"], t["responses"]], dim=-1))
    assert t["attention_mask"].tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 0]]
    # positions count real tokens only, from 0 at each row's first token
    assert t["position_ids"].tolist() == [[0, 0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 4, 4], [0, 0, 0, 0, 1, 2, 2]]
    assert t["response_mask"].tolist() == [[1, 0, 1], [1, 0, 0], [1, 1, 0]]
    torch.testing.assert_close(t["old_log_probs"], torch.tensor([[-0.1, -9, -0.3], [-0.5, 0, 0], [-0.6, -0.7, 0]]))


def test_per_rollout_weights_fold_into_token_advantages():
    t = to_verl_tensors(batch(), pad_id=0)
    # weight * N / sum(weights): 0.5 * 3 / 2 = 0.75, 1.0 * 3 / 2 = 1.5; zero outside the response mask
    torch.testing.assert_close(t["advantages"], torch.tensor([[0.75, 0, 0.75], [-3.0, 0, 0], [0.375, 0.375, 0]]))


def test_the_folded_batch_gives_our_weighted_loss_under_a_plain_sequence_mean():
    s = batch()
    current = s.behaviour_logprobs + torch.tensor([[0, 0.4, 0, -0.3], [0, 0, 0, 0.5], [-0.4, 0.1, 0, 0]])
    ours = policy_loss(current, s.behaviour_logprobs, s.advantages, s.response_mask, LossConfig(), sequence_weights=s.weights)
    t = to_verl_tensors(s, pad_id=0)
    moved = to_verl_tensors(Sequences(s.input_ids, s.attention_mask, s.response_mask, current, s.advantages, s.weights), 0)
    # verl's seq-mean-token-mean is our loss with unit weights (every row here holds model tokens); the folded
    # advantage is constant over a row's model tokens
    per_row = t["advantages"].sum(-1) / t["response_mask"].sum(-1)
    folded = policy_loss(moved["old_log_probs"], t["old_log_probs"], per_row, t["response_mask"], LossConfig())
    assert float(folded.loss) == pytest.approx(float(ours.loss), rel=1e-6)
    assert folded.clip_fraction == pytest.approx(ours.clip_fraction)


def test_a_row_without_sampled_tokens_keeps_one_response_token_and_no_advantage():
    s = batch()
    s.response_mask[1] = 0
    assert split_points(s).tolist() == [2, 4, 1]
    t = to_verl_tensors(s, pad_id=0)
    assert t["advantages"][1].abs().sum() == 0
    assert t["advantages"][0, 0] == pytest.approx(1.0 * 0.5 * 3 / 1.0)


def test_padding_rows_train_nothing_and_leave_the_folded_advantages_alone():
    s = batch()
    assert pad_rows(s, 3) is s
    padded = pad_rows(s, 4)
    assert len(padded) == 4 and padded.model_tokens == s.model_tokens
    assert padded.input_ids[3].tolist() == s.input_ids[2].tolist() and padded.weights[3] == 0
    t, u = to_verl_tensors(s, pad_id=0), to_verl_tensors(padded, pad_id=0)
    # N grows 3 -> 4 in the fold, and verl's sequence mean divides by 4 instead of 3: the loss is the same
    torch.testing.assert_close(u["advantages"][:3] * 3 / 4, t["advantages"])
    assert u["advantages"][3].abs().sum() == 0 and u["response_mask"][3].sum() == 0


def test_verl_metrics_map_onto_update_metrics():
    m = metrics_from_verl({"loss": [0.25, 0.35], "actor/pg_clipfrac": [0.1, 0.3], "actor/ppo_kl": [-0.02, 0.0],
                           "actor/pg_loss": [0.3, 0.3], "grad_norm": [1.5]}, tokens=40, seconds=2.0)
    assert (m.loss, m.kl, m.clip_fraction, m.tokens_per_s) == pytest.approx((0.3, 0.0, 0.2, 20.0))
    assert m.ratio_mean == pytest.approx(float(torch.tensor(0.01).exp()))


def test_the_backend_is_chosen_by_setting(monkeypatch):
    monkeypatch.setenv("LW_TRAINER_BACKEND", "verl")
    assert TrainerSettings().trainer_backend == "verl"
    monkeypatch.setenv("LW_TRAINER_BACKEND", "jax")
    with pytest.raises(ValueError, match="trainer_backend"):
        TrainerSettings()
    monkeypatch.delenv("LW_TRAINER_BACKEND")
    assert TrainerSettings().trainer_backend == "torch"


def test_the_torch_path_never_imports_verl():
    model_dir = CommonSettings().cache_dir / "models" / "tiny-llama"
    if not model_dir.is_dir():
        pytest.skip(f"{model_dir} is not prepared")
    script = f"""
import sys
import lightwire.services.trainer.main
from lightwire.services.trainer.backend_choice import build_backend
from lightwire.services.trainer.settings import TrainerSettings
backend = build_backend(TrainerSettings(trainer_backend="torch"), {str(model_dir)!r})
assert type(backend).__name__ == "TorchBackend", type(backend)
print(sorted(m for m in sys.modules if m == "verl" or m.startswith("verl.")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
