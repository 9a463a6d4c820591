"""DPO math against hand-computed values: pairs inside a group, the loss on sequence logprob sums."""

import math

import pytest
import torch

from lightwire.services.trainer.dpo import DpoConfig, dpo_loss, dpo_pairs


def test_each_group_pairs_its_best_with_its_worst_and_ties_give_no_pair():
    rewards = torch.tensor([0.2, 1.0, 0.5, 0.7, 0.7, 3.0, 1.0, 2.0, 2.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    chosen, rejected = dpo_pairs(rewards, groups)
    # group 0: best 1 (1.0), worst 0 (0.2); group 1: all equal, none; group 2: one rollout, none;
    # group 3: best 7 (the first of the two 2.0s), worst 9 (0.0)
    assert chosen.tolist() == [1, 7] and rejected.tolist() == [0, 9]
    assert dpo_pairs(torch.tensor([1.0, 1.0]), torch.tensor([0, 0]))[0].tolist() == []


def test_loss_and_gradient_of_one_pair():
    # chosen: pi = -1 - 2 = -3, ref = -1.5 - 2.5 = -4 -> +1; rejected: pi = -2, ref = -1.5 -> -0.5
    logp = torch.tensor([[-1.0, -2.0], [-1.0, -1.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -2.5], [-1.0, -0.5]])
    out = dpo_loss(logp, ref, torch.ones(2, 2), torch.tensor([0]), torch.tensor([1]), DpoConfig(beta=0.1))
    # margin 0.1 * (1 - (-0.5)) = 0.15 -> loss -log sigmoid(0.15) = log(1 + e^-0.15) = 0.620957
    assert out.loss.item() == pytest.approx(0.620957, rel=1e-5)
    assert out.loss.item() == pytest.approx(math.log(1 + math.exp(-0.15)), rel=1e-6) and out.accuracy == 1.0
    out.loss.backward()
    # d loss / d margin = -sigmoid(-0.15) = -0.462570; times beta: -0.046257 on each chosen token, +0.046257 on rejected
    assert logp.grad.flatten().tolist() == pytest.approx([-0.046257, -0.046257, 0.046257, 0.046257], rel=1e-4)


def test_at_the_reference_the_loss_is_log_2_whatever_beta():
    logp = torch.tensor([[-1.0, -3.0], [-0.2, -0.7]])
    for beta in (0.1, 2.0):
        out = dpo_loss(logp, logp, torch.ones(2, 2), torch.tensor([1]), torch.tensor([0]), DpoConfig(beta))
        assert out.loss.item() == pytest.approx(math.log(2)) and out.kl == 0.0 and out.accuracy == 0.0


def test_a_rollout_of_several_rows_is_one_sequence_and_masked_tokens_never_count():
    # the chosen rollout of the pair above split over two transitions (rows 0 and 1), with a wild masked value
    logp = torch.tensor([[-1.0, 0.0], [-2.0, 0.0], [-1.0, -1.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, float("-inf")], [-2.5, 0.0], [-1.0, -0.5]])
    mask = torch.tensor([[1, 0], [1, 0], [1, 1]])
    out = dpo_loss(logp, ref, mask, torch.tensor([0]), torch.tensor([1]), DpoConfig(0.1), sequence=torch.tensor([0, 0, 1]))
    assert out.loss.item() == pytest.approx(0.620957, rel=1e-5)
    out.loss.backward()
    assert torch.isfinite(logp.grad).all() and logp.grad[0, 1].item() == 0.0
    assert logp.grad[:, 0].tolist() == pytest.approx([-0.046257, -0.046257, 0.046257], rel=1e-4)


def test_pairs_are_averaged_with_their_weights():
    # pair 0 as above (loss 0.620957); pair 1 at its reference (loss log 2 = 0.693147)
    logp = torch.tensor([[-1.0, -2.0], [-1.0, -1.0], [-0.3, -0.3], [-0.9, -0.9]])
    ref = torch.tensor([[-1.5, -2.5], [-1.0, -0.5], [-0.3, -0.3], [-0.9, -0.9]])
    chosen, rejected = torch.tensor([0, 2]), torch.tensor([1, 3])
    plain = dpo_loss(logp, ref, torch.ones(4, 2), chosen, rejected)
    assert plain.loss.item() == pytest.approx((0.620957 + math.log(2)) / 2, rel=1e-5) and plain.accuracy == 0.5
    weighted = dpo_loss(logp, ref, torch.ones(4, 2), chosen, rejected, pair_weights=torch.tensor([3.0, 1.0]))
    # (3 * 0.620957 + 1 * 0.693147) / 4 = 0.639005
    assert weighted.loss.item() == pytest.approx(0.639005, rel=1e-5) and weighted.accuracy == 0.75


def test_bad_input_and_config_are_refused():
    with pytest.raises(ValueError, match="beta"):
        DpoConfig(beta=0.0)
    with pytest.raises(ValueError, match="same"):
        dpo_loss(torch.zeros(2, 2), torch.zeros(2, 3), torch.ones(2, 2), torch.tensor([0]), torch.tensor([1]))
    with pytest.raises(ValueError, match="chosen"):
        dpo_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([0]), torch.tensor([1, 0]))
