"""nn.losses.binary_cross_entropy against torch.nn.functional.binary_cross_entropy (float64)
on a grid that includes the saturated predictions 0 and 1, the log floor e^-100 and its
float neighbours, in eager mode, with create_graph=True and in traced replay.

PyTorch is the independent reference: its forward floors each log at -100 and its
gradient is (p - t) / max(p(1 - p), 1e-12f). The one documented difference is the
gradient with respect to the *target* where a floor is active (see the docstring).
"""

from __future__ import annotations

import math

import pytest

import nn
from autograd import Value, grad, ops, trace
from autograd.errors import DomainError, InvalidArgumentError

FLOOR = math.exp(-100.0)
PREDICTIONS = [
    0.0,
    5e-324,  # the smallest subnormal
    1e-300,
    math.nextafter(FLOOR, 0.0),
    FLOOR,
    math.nextafter(FLOOR, 1.0),
    1e-13,  # p(1 - p) below PyTorch's ε = 1e-12: the gradient's denominator is ε
    1e-12,
    1e-6,
    0.3,
    0.5,
    math.nextafter(1.0, 0.0),
    1.0,
]
TARGETS = [0.0, 0.25, 1.0]
GRID = [(p, t) for p in PREDICTIONS for t in TARGETS]


def torch_value_and_gradients(torch, p, t):
    P = torch.tensor([p], requires_grad=True)
    T = torch.tensor([t], requires_grad=True)
    e = torch.nn.functional.binary_cross_entropy(P, T)
    dp, dt = torch.autograd.grad(e, (P, T))
    return e.item(), dp.item(), dt.item()


def ours(p, t):
    P, T = Value(p), Value(t)
    e = nn.losses.binary_cross_entropy(P, T)
    e.backward()
    return e.data, P.grad, T.grad


@pytest.mark.parametrize("p, t", GRID)
def test_value_and_prediction_gradient_equal_pytorch_everywhere(torch, p, t):
    value, dp, _ = ours(p, t)
    expected_value, expected_dp, _ = torch_value_and_gradients(torch, p, t)
    assert value == pytest.approx(expected_value, rel=1e-15, abs=0.0)
    assert dp == pytest.approx(expected_dp, rel=1e-15, abs=0.0)


def test_the_gradient_at_the_floor_is_about_1e12_and_zero_when_p_equals_t(torch):
    """PyTorch: (1 - 0)/max(0, 1e-12f) = 1/9.999999960041972e-13 at p = 1, t = 0; (1 - 1)/ε = 0 at p = t = 1."""
    assert ours(1.0, 0.0)[1] == 1.0 / 9.999999960041972e-13 == torch_value_and_gradients(torch, 1.0, 0.0)[1]
    assert ours(0.0, 1.0)[1] == -1.0 / 9.999999960041972e-13
    assert ours(1.0, 1.0)[1] == 0.0 and ours(0.0, 0.0)[1] == 0.0


@pytest.mark.parametrize("p, t", GRID)
def test_target_gradient_equals_pytorch_where_no_log_is_floored(torch, p, t):
    """∂E/∂t = max(log(1 - p), -100) - max(log p, -100) (the derivative of the floored loss);
    PyTorch's leaves the logs unfloored, so the two agree exactly where log p >= -100 and p < 1."""
    _, _, dt = ours(p, t)
    _, _, expected = torch_value_and_gradients(torch, p, t)
    if p >= math.nextafter(FLOOR, 1.0) and p < 1.0:
        assert dt == pytest.approx(expected, rel=1e-12, abs=1e-15)
    else:  # documented difference: finite here, PyTorch's is ±inf (p = 0, 1) or > 100 (p < e^-100)
        assert math.isfinite(dt) and abs(dt) <= 100.0
        assert expected == math.inf if p == 0.0 else expected == -math.inf if p == 1.0 else expected >= 100.0


def test_a_mean_over_several_predictions_matches_pytorch(torch):
    ps, ts = [0.0, 0.3, 1.0, FLOOR, 0.999], [1.0, 0.6, 1.0, 0.0, 0.5]
    P = [Value(p) for p in ps]
    e = nn.losses.binary_cross_entropy(P, ts)
    e.backward()
    reference = torch.tensor(ps, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy(reference, torch.tensor(ts))
    expected.backward()
    assert e.data == pytest.approx(expected.item(), rel=1e-15)
    assert [v.grad for v in P] == pytest.approx(reference.grad.tolist(), rel=1e-15)


@pytest.mark.parametrize("p, t", GRID)
def test_create_graph_gives_the_same_first_derivatives_as_eager(p, t):
    P, T = Value(p), Value(t)
    dp, dt = grad(nn.losses.binary_cross_entropy(P, T), [P, T], create_graph=True)
    _, eager_dp, eager_dt = ours(p, t)
    assert (dp.data, dt.data) == (eager_dp, eager_dt)


@pytest.mark.parametrize("p, t", [(0.3, 0.6), (0.3, 1.0), (0.9, 0.0), (1e-3, 0.5)])
def test_second_derivatives_match_pytorch_inside_the_floor(torch, p, t):
    """Ours is the exact derivative (p² - 2pt + t)/(p(1 - p))²; PyTorch's double backward adds
    1e-12 to p and to 1 - p in the denominator, a relative change of about 2e-12/min(p, 1 - p)."""
    P, T = Value(p), Value(t)
    dp, _ = grad(nn.losses.binary_cross_entropy(P, T), [P, T], create_graph=True)
    dpp, dpt = grad(dp, [P, T])
    Pt, Tt = torch.tensor([p], requires_grad=True), torch.tensor([t], requires_grad=True)
    (gp,) = torch.autograd.grad(torch.nn.functional.binary_cross_entropy(Pt, Tt), Pt, create_graph=True)
    expected_pp, expected_pt = torch.autograd.grad(gp.sum(), (Pt, Tt))
    assert dpp == pytest.approx(expected_pp.item(), rel=3e-12 / min(p, 1 - p))
    assert dpt == pytest.approx(expected_pt.item(), rel=1e-12)


def test_second_derivative_matches_finite_differences_of_the_slope():
    """d/dp of (p - t)/(p(1 - p)) by central differences of the first derivative (step 1e-6)."""
    p, t, h = 0.3, 0.6, 1e-6
    P = Value(p)
    (dp,) = grad(nn.losses.binary_cross_entropy(P, t), [P], create_graph=True)
    (dpp,) = grad(dp, [P])
    assert dpp == pytest.approx((ours(p + h, t)[1] - ours(p - h, t)[1]) / (2 * h), rel=1e-7)


def test_traced_replay_gives_eagers_numbers_on_the_whole_grid():
    """p = x + w with a parameter w = 0: ∂E/∂w is ∂E/∂p for each sample (one sample per replay)."""
    pytest.importorskip("numpy", reason="traced replay needs numpy (extra `fast`)")
    w = Value(0.0)
    step = trace(lambda x, t: nn.losses.binary_cross_entropy(x[0] + w, t), [0.5], [1.0])
    for p, t in GRID:
        w.grad = 0.0
        (value,) = step.forward([[p]], [[t]]).tolist()
        step.backward()
        expected_value, expected_dp, _ = ours(p, t)
        assert (value, w.grad) == (pytest.approx(expected_value, rel=1e-15), pytest.approx(expected_dp, rel=1e-15))


def test_traced_replay_refuses_a_probability_outside_0_1_like_eager():
    pytest.importorskip("numpy", reason="traced replay needs numpy (extra `fast`)")
    step = trace(lambda x, t: nn.losses.binary_cross_entropy(x[0], t), [0.5], [1.0])
    with pytest.raises(DomainError, match=r"binary_cross_entropy\(1\.5, 1\.0\).*sample 1"):
        step.forward([[0.5], [1.5]], [[1.0], [1.0]])
    with pytest.raises(DomainError, match="sample 0"):
        step.forward([[0.5]], [[2.0]])
    with pytest.raises(InvalidArgumentError, match="got 1.5"):
        nn.losses.binary_cross_entropy(Value(1.5), 1.0)


def test_the_loss_rules_carry_their_formulas():
    for rule in ops.LOSS_RULES:
        assert len(rule.formula) == 1 + rule.arity and all(text.strip() for text in rule.formula)
    assert ops.BINARY_CROSS_ENTROPY.local_derivative(0) == (
        "∂(-(t·max(log p, -100) + (1 - t)·max(log(1 - p), -100)))/∂p = (p - t) / max(p·(1 - p), 1e-12)"
    )
