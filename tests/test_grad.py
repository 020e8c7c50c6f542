"""grad(), create_graph and higher derivatives, against hand derivations and PyTorch."""

from __future__ import annotations

import math

import pytest

from autograd import Value, grad


def test_grad_returns_gradients_without_touching_dot_grad() -> None:
    """f = a·b + sin(a): ∂f/∂a = b + cos a, ∂f/∂b = a."""
    a, b = Value(0.5), Value(-2.0)
    f = a * b + a.sin()
    da, db = grad(f, [a, b])
    assert da == pytest.approx(-2.0 + math.cos(0.5), abs=1e-15)
    assert db == 0.5
    assert a.grad == 0.0 and b.grad == 0.0


def test_input_not_reached_gets_zero() -> None:
    a, unused = Value(1.0), Value(2.0)
    assert grad(a * 3, [a, unused]) == [3.0, 0.0]


def test_second_derivative_of_x_cubed_is_6x() -> None:
    x = Value(2.0)
    (first,) = grad(x**3, [x], create_graph=True)
    assert isinstance(first, Value) and first.data == 12.0  # 3x²
    assert grad(first, [x]) == [12.0]  # 6x


def test_third_derivative_of_sin_is_minus_cos() -> None:
    x = Value(0.7)
    (d1,) = grad(x.sin(), [x], create_graph=True)
    (d2,) = grad(d1, [x], create_graph=True)  # type: ignore[arg-type]
    (d3,) = grad(d2, [x])  # type: ignore[arg-type]
    assert d3 == pytest.approx(-math.cos(0.7), abs=1e-15)


def test_mixed_partial_derivatives() -> None:
    """f = x²·y³: ∂²f/∂x∂y = 6·x·y² = 6·1.5·4 = 36 at (1.5, -2)."""
    x, y = Value(1.5), Value(-2.0)
    dfdx, _ = grad(x * x * y**3, [x, y], create_graph=True)
    assert grad(dfdx, [x, y]) == pytest.approx([2 * (-8.0), 36.0])  # ∂²f/∂x² = 2y³


def test_hessian_vector_product_matches_pytorch(torch) -> None:
    """H·v for f(x, y) = exp(x·y) + x²·tanh(y), computed as ∇(∇f · v)."""
    point, v = [0.3, -0.8], [1.0, 2.0]
    xs = [Value(p) for p in point]
    x, y = xs
    gradient = grad((x * y).exp() + x * x * y.tanh(), xs, create_graph=True)
    directional = sum(g * vi for g, vi in zip(gradient, v, strict=True))
    hvp = grad(directional, xs)  # type: ignore[arg-type]

    ts = torch.tensor(point, requires_grad=True)
    f = torch.exp(ts[0] * ts[1]) + ts[0] ** 2 * torch.tanh(ts[1])
    (tg,) = torch.autograd.grad(f, ts, create_graph=True)
    (thvp,) = torch.autograd.grad(tg @ torch.tensor(v), ts)
    assert hvp == pytest.approx(thvp.tolist(), rel=1e-12, abs=1e-12)


def test_grad_rejects_non_values() -> None:
    from autograd.errors import InvalidTypeError

    with pytest.raises(InvalidTypeError, match="output must be a Value"):
        grad(3.0, [Value(1.0)])  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"inputs\[1\] must be a Value, got float"):
        grad(Value(1.0) * 2, [Value(1.0), 2.0])  # type: ignore[list-item]


def test_gradcheck_of_a_first_derivative_checks_the_second() -> None:
    """gradcheck on x -> d(x³ sin x)/dx compares d²/dx² with finite differences of d/dx."""
    from autograd import gradcheck

    def derivative(x: Value) -> Value:
        (d,) = grad(x**3 * x.sin(), [x], create_graph=True)
        return d  # type: ignore[return-value]

    assert gradcheck(derivative, [0.8])


def test_sum_values_of_nothing_is_a_constant_zero_like_sum_and_torch_sum(torch) -> None:
    """Σ over an empty set is 0: Python's sum([]) == 0, math.fsum([]) == 0.0, torch.sum of an
    empty tensor is 0. It is a constant (no gradient), so a graph built on it still works."""
    from autograd import sum_values

    empty = sum_values([])
    assert empty.data == sum([]) == math.fsum([]) == torch.sum(torch.tensor([])).item() == 0.0
    assert not empty.requires_grad and empty.parents == ()
    x = Value(2.0)
    assert grad(x * 3 + sum_values([]), [x]) == [3.0]


@pytest.mark.parametrize("flag", ["no", "", 1, 0, None, 1.0])
def test_requires_grad_must_be_a_bool(flag: object) -> None:
    """A truthy "no" must not switch gradients on (torch.tensor(1., requires_grad="no") is a TypeError)."""
    from autograd.errors import InvalidTypeError

    with pytest.raises(InvalidTypeError, match=r"Value: requires_grad must be a bool, got"):
        Value(1.0, requires_grad=flag)  # type: ignore[arg-type]
    assert Value(1.0, requires_grad=False).requires_grad is False
    assert Value(1.0, requires_grad=True).requires_grad is True
