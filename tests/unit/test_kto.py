"""KTO math against hand-computed values: desirable or not by reward, the reference point, the loss."""

import pytest
import torch

from lightwire.services.trainer.kto import KtoConfig, kto_desirable, kto_loss, reference_point

# seq 0: pi = -1 - 0.5 = -1.5, ref = -1.5 - 1 = -2.5 -> r0 = +1.0 (desirable)
# seq 1: pi = -2 - 1 = -3,     ref = -2 - 0.8 = -2.8 -> r1 = -0.2 (undesirable)
LOGP = [[-1.0, -0.5], [-2.0, -1.0]]
REF = torch.tensor([[-1.5, -1.0], [-2.0, -0.8]])
CONFIG = KtoConfig(beta=0.1, desirable_weight=1.0, undesirable_weight=1.5)


def test_desirable_is_a_reward_that_reaches_the_threshold():
    assert kto_desirable(torch.tensor([0.5, 0.4, 1.0])).tolist() == [True, False, True]
    assert kto_desirable(torch.tensor([0.5, 0.4]), KtoConfig(threshold=0.45)).tolist() == [True, False]


def test_reference_point_is_the_mean_log_ratio_clamped_at_zero_and_detached():
    r = torch.tensor([0.3, -0.1], requires_grad=True)
    z = reference_point(r)
    assert z.item() == pytest.approx(0.1) and not z.requires_grad
    assert reference_point(torch.tensor([-0.3, 0.1])).item() == 0.0
    assert reference_point(torch.zeros(0)).item() == 0.0


def test_loss_and_gradient_with_the_batch_reference_point():
    logp = torch.tensor(LOGP, requires_grad=True)
    out = kto_loss(logp, REF, torch.ones(2, 2), torch.tensor([True, False]), CONFIG)
    # z0 = max(0, (1.0 - 0.2) / 2) = 0.4
    # desirable:   1.0 * (1 - sigmoid(0.1 * (1.0 - 0.4)))  = 1 - sigmoid(0.06) = 0.4850045
    # undesirable: 1.5 * (1 - sigmoid(0.1 * (0.4 + 0.2)))  = 1.5 * 0.4850045   = 0.7275067
    # mean 0.6062556
    assert out.reference_point == pytest.approx(0.4) and out.loss.item() == pytest.approx(0.6062556, rel=1e-5)
    out.loss.backward()
    # z0 is detached: d/dr0 = -0.1 * s(1 - s) / 2 with s = sigmoid(0.06) -> -0.0124888 on each token of seq 0;
    # d/dr1 = +1.5 * 0.1 * s(1 - s) / 2 = +0.0187331 on each token of seq 1 (a gradient through z0 would change both)
    assert logp.grad.flatten().tolist() == pytest.approx([-0.0124888, -0.0124888, 0.0187331, 0.0187331], rel=1e-4)


def test_a_given_reference_point_replaces_the_batch_estimate():
    out = kto_loss(torch.tensor(LOGP), REF, torch.ones(2, 2), torch.tensor([True, False]), CONFIG, z0=0.0)
    # desirable 1 - sigmoid(0.1) = 0.4750208; undesirable 1.5 * (1 - sigmoid(0.1 * 0.2)) = 0.7425003 -> mean 0.6087606
    assert out.loss.item() == pytest.approx(0.6087606, rel=1e-5) and out.reference_point == 0.0


def test_rows_of_one_rollout_add_up_weights_average_and_masked_tokens_never_count():
    # seq 0 of above split over rows 0 and 1; row 2 is seq 1 with a wild masked third token
    logp = torch.tensor([[-1.0, 0.0, 0.0], [-0.5, 0.0, 0.0], [-2.0, -1.0, 9.0]])
    ref = torch.tensor([[-1.5, 0.0, 0.0], [-1.0, 0.0, 0.0], [-2.0, -0.8, float("nan")]])
    mask = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 1, 0]])
    split = kto_loss(logp, ref, mask, torch.tensor([True, False]), CONFIG, sequence=torch.tensor([0, 0, 1]))
    assert split.loss.item() == pytest.approx(0.6062556, rel=1e-5)
    weighted = kto_loss(logp, ref, mask, torch.tensor([True, False]), CONFIG, sequence=torch.tensor([0, 0, 1]),
                        sequence_weights=torch.tensor([1.0, 3.0]))
    # (1 * 0.4850045 + 3 * 0.7275067) / 4 = 0.6668812
    assert weighted.loss.item() == pytest.approx(0.6668812, rel=1e-5)


def test_bad_input_and_config_are_refused():
    for bad in (dict(beta=0.0), dict(desirable_weight=0.0), dict(undesirable_weight=-1.0), dict(threshold=float("nan"))):
        with pytest.raises(ValueError, match="kto"):
            KtoConfig(**bad)
    with pytest.raises(ValueError, match="one per sequence"):
        kto_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([True]))
