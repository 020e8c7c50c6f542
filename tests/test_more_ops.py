"""The rows added for breadth, at the points where conventions matter, against PyTorch
(float64): ties of maximum/minimum, the bounds of clamp, atan2 at the origin, overflow
to ±inf, and the named error where PyTorch's answer is not finite."""

from __future__ import annotations

import math

import pytest

import autograd
from autograd import Value
from autograd.errors import AutogradError, InvalidArgumentError


def torch_value_and_grads(torch, fn, *point):
    ts = [torch.tensor(x, requires_grad=True) for x in point]
    y = fn(*ts)
    y.backward()
    return y.item(), [t.grad.item() for t in ts]


def engine_value_and_grads(fn, *point):
    xs = [Value(x) for x in point]
    y = fn(*xs)
    y.backward()
    return y.data, [x.grad for x in xs]


CONVENTIONS = [
    ("maximum tie", lambda a, b: autograd.maximum(a, b), lambda t, a, b: t.maximum(a, b), (1.0, 1.0)),
    ("minimum tie", lambda a, b: autograd.minimum(a, b), lambda t, a, b: t.minimum(a, b), (-2.0, -2.0)),
    ("clamp at lo", lambda x: x.clamp(-1.0, 1.0), lambda t, x: t.clamp(x, -1.0, 1.0), (-1.0,)),
    ("clamp at hi", lambda x: x.clamp(-1.0, 1.0), lambda t, x: t.clamp(x, -1.0, 1.0), (1.0,)),
    ("clamp outside", lambda x: x.clamp(-1.0, 1.0), lambda t, x: t.clamp(x, -1.0, 1.0), (3.0,)),
    ("atan2 at the origin", lambda a, b: autograd.atan2(a, b), lambda t, a, b: t.atan2(a, b), (0.0, 0.0)),
    ("sinh overflows", lambda x: x.sinh(), lambda t, x: t.sinh(x), (1000.0,)),
    ("cosh overflows", lambda x: x.cosh(), lambda t, x: t.cosh(x), (-1000.0,)),
    ("expm1 overflows", lambda x: x.expm1(), lambda t, x: t.expm1(x), (1000.0,)),
    ("expm1 keeps tiny x", lambda x: x.expm1(), lambda t, x: t.expm1(x), (1e-300,)),
    ("log1p keeps tiny x", lambda x: x.log1p(), lambda t, x: t.log1p(x), (1e-300,)),
]


@pytest.mark.parametrize(("name", "ours", "theirs", "point"), CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_convention_equals_pytorch(name, ours, theirs, point, torch) -> None:
    value, grads = engine_value_and_grads(ours, *point)
    expected_value, expected_grads = torch_value_and_grads(torch, lambda *ts: theirs(torch, *ts), *point)
    assert value == expected_value
    assert grads == expected_grads


def test_nan_goes_through_maximum_and_clamp_like_pytorch(torch) -> None:
    """torch.maximum(nan, 1) is nan with gradient 1 to both inputs; clamp(nan) is nan with gradient 0."""
    a, b = Value(1.0), Value(1.0)
    a.data = math.nan  # NaN reaches a graph through .data (an optimizer step that overflowed)
    y = autograd.maximum(a, b)
    y.backward()
    assert math.isnan(y.data) and (a.grad, b.grad) == (1.0, 1.0)
    assert torch_value_and_grads(torch, torch.maximum, math.nan, 1.0)[1] == [1.0, 1.0]
    x = Value(0.0)
    x.data = math.nan
    z = x.clamp(-1.0, 1.0)
    z.backward()
    assert math.isnan(z.data) and x.grad == 0.0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: Value(2.0).asin(), "asin is defined for -1 <= x <= 1"),
        (lambda: Value(-1.0).log1p(), "log1p is defined for x > -1"),
        (lambda: Value(0.0).log2(), "log2 is defined for x > 0"),
        (lambda: Value(-3.0).log10(), "log10 is defined for x > 0"),
    ],
)
def test_outside_the_domain_is_a_named_error(call, words) -> None:
    """PyTorch gives NaN or -inf here; the engine's policy is a named error."""
    with pytest.raises(AutogradError, match=words):
        call()


@pytest.mark.parametrize(
    ("fn", "point"),
    [
        (lambda x: x.asin(), 1.0),
        (lambda x: x.acos(), -1.0),
        (lambda x: autograd.hypot(x, 0.0), 0.0),
    ],
    ids=["asin at 1", "acos at -1", "hypot at the origin"],
)
def test_a_derivative_that_is_not_finite_is_a_named_error(fn, point) -> None:
    """PyTorch gives inf or NaN for these derivatives; the engine raises, naming the op."""
    y = fn(Value(point))
    with pytest.raises(AutogradError, match="backward through"):
        y.backward()


def test_clamp_bounds_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="lo must be <= hi"):
        Value(0.0).clamp(1.0, -1.0)


def test_help_shows_the_formula_of_each_new_row() -> None:
    assert "∂(atan(x))/∂x = 1/(1 + x²)" in (Value.atan.__doc__ or "")
    assert "½ at a tie" in (autograd.maximum.__doc__ or "")
