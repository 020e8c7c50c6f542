"""nn.losses: each loss and its gradient against PyTorch (float64) and the hand formula."""

from __future__ import annotations

import math

import pytest

import nn
from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError

OUTPUTS = [0.2, 0.9, 0.55]
TARGETS = [0.0, 1.0, 1.0]


def loss_and_grads(loss, outputs, targets):
    o = [Value(x) for x in outputs]
    e = loss(o, targets)
    e.backward()
    return e.data, [v.grad for v in o]


def torch_loss_and_grads(torch, function, outputs, targets):
    o = torch.tensor(outputs, requires_grad=True)
    e = function(o, torch.tensor(targets))
    e.backward()
    return e.item(), o.grad.tolist()


def test_every_loss_is_tested_by_name():
    assert set(nn.losses.LOSSES) == {"mse", "sse_half", "binary_cross_entropy", "hinge"}


def test_mse_matches_torch(torch):
    ours = loss_and_grads(nn.losses.mse, OUTPUTS, TARGETS)
    reference = torch_loss_and_grads(torch, torch.nn.functional.mse_loss, OUTPUTS, TARGETS)
    assert ours[0] == pytest.approx(reference[0], abs=1e-15)
    assert ours[1] == pytest.approx(reference[1], abs=1e-15)


def test_mse_hand_formula():
    # E = ((0.2-0)² + (0.9-1)² + (0.55-1)²)/3 = (0.04 + 0.01 + 0.2025)/3; ∂E/∂o_k = 2(o_k - t_k)/3
    value, grads = loss_and_grads(nn.losses.mse, OUTPUTS, TARGETS)
    assert value == pytest.approx(0.2525 / 3, abs=1e-15)
    assert grads == pytest.approx([2 * 0.2 / 3, 2 * -0.1 / 3, 2 * -0.45 / 3], abs=1e-15)


def test_sse_half_is_half_the_sum_and_its_derivative_is_o_minus_t():
    value, grads = loss_and_grads(nn.losses.sse_half, OUTPUTS, TARGETS)
    assert value == pytest.approx(0.5 * 0.2525, abs=1e-15)
    assert grads == pytest.approx([0.2, -0.1, -0.45], abs=1e-15)


@pytest.mark.parametrize(
    "outputs, targets",
    [(OUTPUTS, TARGETS), ([1e-9, 1 - 1e-9], [1.0, 0.0]), ([0.3, 0.7], [0.25, 0.6]), ([0.5], [1.0])],
)
def test_binary_cross_entropy_matches_torch_for_probabilities_in_0_1(torch, outputs, targets):
    ours = loss_and_grads(nn.losses.binary_cross_entropy, outputs, targets)
    reference = torch_loss_and_grads(torch, torch.nn.functional.binary_cross_entropy, outputs, targets)
    assert ours[0] == pytest.approx(reference[0], rel=1e-12)
    assert ours[1] == pytest.approx(reference[1], rel=1e-10)


def test_binary_cross_entropy_hand_formula():
    # E = -(log(1-0.2) + log 0.9 + log 0.55)/3; ∂E/∂p = (p-t)/(3p(1-p))
    value, grads = loss_and_grads(nn.losses.binary_cross_entropy, OUTPUTS, TARGETS)
    assert value == pytest.approx(-(math.log(0.8) + math.log(0.9) + math.log(0.55)) / 3, abs=1e-15)
    assert grads == pytest.approx([(p - t) / (3 * p * (1 - p)) for p, t in zip(OUTPUTS, TARGETS)], rel=1e-12)


@pytest.mark.parametrize("p, t", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_binary_cross_entropy_of_a_saturated_output_is_clamped_like_torch(torch, p, t):
    value, grads = loss_and_grads(nn.losses.binary_cross_entropy, [p], [t])
    assert value == torch.nn.functional.binary_cross_entropy(torch.tensor([p]), torch.tensor([t])).item()
    assert math.isfinite(grads[0])


def test_binary_cross_entropy_of_a_saturated_sigmoid_stays_finite():
    z = Value(40.0)  # σ(40) rounds to 1.0: log(1 - p) would be log 0
    e = nn.losses.binary_cross_entropy(z.sigmoid(), 0.0)
    e.backward()
    assert e.data == 100.0 and z.grad == 0.0


def test_hinge_hand_formula():
    # t·o = 2.0 (no loss), -0.5 (1.5), 0.3 (0.7): E = 2.2/3; ∂E/∂o = -t/3 where t·o < 1
    value, grads = loss_and_grads(nn.losses.hinge, [2.0, 0.5, 0.3], [1.0, -1.0, 1.0])
    assert value == pytest.approx(2.2 / 3, abs=1e-15)
    assert grads == pytest.approx([0.0, 1 / 3, -1 / 3], abs=1e-15)


def test_hinge_matches_torch_formula(torch):
    outputs, targets = [2.0, 0.5, 0.3, -1.2], [1.0, -1.0, 1.0, -1.0]
    ours = loss_and_grads(nn.losses.hinge, outputs, targets)
    reference = torch_loss_and_grads(torch, lambda o, t: torch.clamp(1 - t * o, min=0).mean(), outputs, targets)
    assert ours[0] == pytest.approx(reference[0], abs=1e-15)
    assert ours[1] == pytest.approx(reference[1], abs=1e-15)


@pytest.mark.parametrize("loss", nn.losses.LOSSES.values())
def test_a_single_value_and_a_list_of_one_give_the_same_loss(loss):
    target = 1.0
    assert loss(Value(0.3), target).data == loss([Value(0.3)], [target]).data


@pytest.mark.parametrize("loss", nn.losses.LOSSES.values())
def test_mismatched_lengths_are_a_shape_error(loss):
    with pytest.raises(ShapeError, match="2 predictions but 3 targets"):
        loss([Value(0.5), Value(0.5)], [1.0, 1.0, 1.0])
    with pytest.raises(ShapeError):
        loss([], [])


@pytest.mark.parametrize("loss", nn.losses.LOSSES.values())
def test_non_numbers_are_type_errors(loss):
    with pytest.raises(InvalidTypeError):
        loss([Value(0.5)], ["1"])
    with pytest.raises(InvalidTypeError):
        loss("0.5", [1.0])


def test_targets_may_be_values():
    t = Value(0.25)
    e = nn.losses.mse(Value(1.0), t)
    e.backward()
    assert t.grad == pytest.approx(-1.5)  # ∂(o-t)²/∂t = -2(o-t)


def test_domain_errors_name_the_bad_number():
    with pytest.raises(InvalidArgumentError, match="1.5"):
        nn.losses.binary_cross_entropy(Value(1.5), 1.0)
    with pytest.raises(InvalidArgumentError, match="got 2.0"):
        nn.losses.binary_cross_entropy(Value(0.5), 2.0)
    with pytest.raises(InvalidArgumentError, match="-1 or \\+1, got 0.0"):
        nn.losses.hinge(Value(0.5), 0.0)
