"""GRPO math against hand-computed values."""

import math

import pytest
import torch

from services.trainer.grpo import LossConfig, group_advantages, policy_loss, token_logprobs


def test_group_advantages_normalise_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 1.0, 2.0, 2.0])
    groups = torch.tensor([0, 0, 0, 1, 1])
    adv = group_advantages(rewards, groups)
    # group 0: mean 2/3, sample std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3) = 0.57735
    s = math.sqrt(1 / 3)
    assert adv[:3].tolist() == pytest.approx([(1 / 3) / s, (-2 / 3) / s, (1 / 3) / s], rel=1e-4)
    # group 1: identical rewards -> no signal
    assert adv[3:].tolist() == [0.0, 0.0]
    assert group_advantages(rewards, groups, scale_by_std=False)[:3].tolist() == pytest.approx([1 / 3, -2 / 3, 1 / 3])


def test_token_logprobs_apply_temperature():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # p = [1/4, 3/4] at T=1
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.75))
    # T=2: logits/2 -> [0, log(3)/2] -> p1 = sqrt3 / (1 + sqrt3)
    assert token_logprobs(logits, torch.tensor([[1]]), 2.0).item() == pytest.approx(math.log(math.sqrt(3) / (1 + math.sqrt(3))))


def test_on_policy_loss_is_minus_the_mean_advantage_and_its_gradient_is_the_policy_gradient():
    logp = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    out = policy_loss(logp, logp.detach(), torch.tensor([2.0]), torch.tensor([[1, 1, 0]]))
    # ratio 1 everywhere -> per-token loss -A = -2 on the two model tokens -> mean -2
    assert out.loss.item() == pytest.approx(-2.0) and out.clip_fraction == 0.0 and out.ratio_mean == pytest.approx(1.0)
    out.loss.backward()
    # d/dlogp of -(exp(logp - old) * A) / 2 tokens = -A/2 = -1 on model tokens, 0 on the masked one
    assert logp.grad[0].tolist() == pytest.approx([-1.0, -1.0, 0.0])


def test_ratios_outside_the_clip_range_stop_the_gradient():
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.9, 0.5]])).requires_grad_(True)  # ratio 1.8 on token 0, 1.0 on token 1
    out = policy_loss(new, old, torch.tensor([1.0]), torch.ones(1, 2), LossConfig(clip_low=0.2, clip_high=0.28))
    # token 0: min(1.8, 1.28) * 1 = 1.28 (clipped, no gradient); token 1: 1.0 -> loss -(1.28 + 1.0) / 2 = -1.14
    assert out.loss.item() == pytest.approx(-1.14) and out.clip_fraction == pytest.approx(0.5)
    out.loss.backward()
    assert new.grad[0, 0].item() == 0.0 and new.grad[0, 1].item() == pytest.approx(-0.5)


def test_each_sequence_counts_once_whatever_its_length():
    logp = torch.zeros(2, 4)
    mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]])
    out = policy_loss(logp, logp, torch.tensor([1.0, 3.0]), mask)
    # per sequence: -1 and -3 -> mean -2 (token-level averaging would give (-1 - 12) / 5 = -2.6)
    assert out.loss.item() == pytest.approx(-2.0)
    weighted = policy_loss(logp, logp, torch.tensor([1.0, 3.0]), mask, sequence_weights=torch.tensor([1.0, 0.0]))
    assert weighted.loss.item() == pytest.approx(-1.0)


def test_k3_kl_penalty():
    logp = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    out = policy_loss(logp, logp, torch.tensor([0.0]), torch.ones(1, 1), LossConfig(kl_coef=0.1), ref_logprobs=ref)
    # diff = log(0.25/0.5) = -ln2: k3 = 0.5 + ln2 - 1 = 0.19315
    k3 = 0.5 + math.log(2) - 1
    assert out.kl == pytest.approx(k3, rel=1e-5) and out.loss.item() == pytest.approx(0.1 * k3, rel=1e-5)
