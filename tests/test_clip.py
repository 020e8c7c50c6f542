"""Gradient clipping, compared with torch.nn.utils (the independent reference)."""

from __future__ import annotations

import math

import pytest

from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from nn.utils import clip_grad_norm_, clip_grad_value_

GRADS = [3.0, -4.0, 0.5, 1e-3, -12.0]


@pytest.mark.parametrize("max_norm", [0.5, 5.0, 13.0, 100.0])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_clip_grad_norm_equals_pytorch(max_norm: float, norm_type: float, torch) -> None:
    params = [Value(1.0) for _ in GRADS]
    for p, g in zip(params, GRADS):
        p.grad = g
    tensors = [torch.ones((), requires_grad=True) for _ in GRADS]
    for t, g in zip(tensors, GRADS):
        t.grad = torch.tensor(g)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    assert [p.grad for p in params] == pytest.approx([t.grad.item() for t in tensors], rel=1e-12, abs=1e-300)


def test_clip_grad_norm_by_hand() -> None:
    """g = (3, 4): ‖g‖ = 5; with max_norm 1 each is scaled by 1/(5 + 1e-6)."""
    a, b = Value(0.0), Value(0.0)
    a.grad, b.grad = 3.0, 4.0
    assert clip_grad_norm_([a, b], 1.0) == 5.0
    assert (a.grad, b.grad) == pytest.approx((3.0 / 5.000001, 4.0 / 5.000001), rel=1e-15)


def test_clip_grad_value_equals_pytorch(torch) -> None:
    params = [Value(1.0) for _ in GRADS]
    for p, g in zip(params, GRADS):
        p.grad = g
    tensors = [torch.ones((), requires_grad=True) for _ in GRADS]
    for t, g in zip(tensors, GRADS):
        t.grad = torch.tensor(g)
    assert clip_grad_value_(params, 2.0) is None
    torch.nn.utils.clip_grad_value_(tensors, 2.0)
    assert [p.grad for p in params] == [t.grad.item() for t in tensors]
    assert [p.grad for p in params] == [2.0, -2.0, 0.5, 1e-3, -2.0]  # clamped by hand


def test_non_finite_norm_raises_only_when_asked() -> None:
    a = Value(0.0)
    a.grad = math.inf
    with pytest.raises(NonFiniteError, match="total norm"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: clip_grad_norm_([Value(1.0)], -1.0), InvalidArgumentError),
        (lambda: clip_grad_norm_([Value(1.0)], 1.0, norm_type=0.0), InvalidArgumentError),
        (lambda: clip_grad_norm_([1.0], 1.0), InvalidTypeError),
        (lambda: clip_grad_value_(3, 1.0), InvalidTypeError),
        (lambda: clip_grad_value_([Value(1.0)], "1"), InvalidTypeError),
    ],
)
def test_bad_arguments_are_named(call, error: type) -> None:
    with pytest.raises(error):
        call()
