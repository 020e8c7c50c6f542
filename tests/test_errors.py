"""Bad input to the engine: each error is of the project's family, the matching
built-in type, and names the op and the offending value."""

from __future__ import annotations

import math

import pytest

from autograd import GradcheckError, Value, gradcheck
from autograd.errors import (
    AutogradError,
    DivisionByZeroError,
    DomainError,
    InvalidArgumentError,
    InvalidTypeError,
    NumericOverflowError,
)


@pytest.mark.parametrize(
    ("bad", "match"),
    [("3", "got str '3'"), (None, "got NoneType None"), (True, "got bool True"), ([1.0], "got list")],
)
def test_value_rejects_non_numbers(bad: object, match: str) -> None:
    with pytest.raises(InvalidTypeError, match=match) as info:
        Value(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_value_rejects_non_finite_numbers(bad: float) -> None:
    with pytest.raises(InvalidArgumentError, match="finite"):
        Value(bad)


@pytest.mark.parametrize(
    ("compute", "error", "builtin", "match"),
    [
        (lambda: Value(-1.0).log(), DomainError, ValueError, r"log\(-1.0\)"),
        (lambda: Value(0.0).log(), DomainError, ValueError, r"log\(0.0\)"),
        (lambda: Value(-4.0).sqrt(), DomainError, ValueError, r"sqrt\(-4.0\)"),
        (lambda: Value(1.0) / 0, DivisionByZeroError, ZeroDivisionError, r"div\(1.0, 0.0\)"),
        (lambda: 1 / Value(0.0), DivisionByZeroError, ZeroDivisionError, r"div\(1.0, 0.0\)"),
        (lambda: Value(0.0) ** -1, DivisionByZeroError, ZeroDivisionError, r"pow-1\(0.0\)"),
        (lambda: Value(-8.0) ** (1 / 3), DomainError, ValueError, r"-8.0"),
        (lambda: Value(-2.0) ** Value(0.5), DomainError, ValueError, r"pow\(-2.0, 0.5\): a \*\* b needs a > 0"),
        (lambda: Value(0.0) ** Value(-1.0), DivisionByZeroError, ZeroDivisionError, r"pow\(0.0, -1.0\)"),
        (lambda: (-2.0) ** Value(0.5), DomainError, ValueError, r"rpow-2\(0.5\): -2 \*\* x needs an integer x"),
        (lambda: 0.0 ** Value(-1.0), DivisionByZeroError, ZeroDivisionError, r"rpow0\(-1.0\): 0 \*\* x needs x >= 0"),
        (lambda: Value(10**400), NumericOverflowError, OverflowError, r"Value: int too large for a float"),
        (lambda: Value(1.0) * "a", InvalidTypeError, TypeError, "mul: cannot combine a Value with str 'a'"),
        (lambda: "a" + Value(1.0), InvalidTypeError, TypeError, "add: cannot combine"),
        (lambda: Value(1.0) ** "2", InvalidTypeError, TypeError, "pow"),
        (lambda: Value(1.0) < "2", InvalidTypeError, TypeError, "<"),
        (lambda: Value(1.0).leaky_relu(None), InvalidTypeError, TypeError, "slope"),
    ],
)
def test_math_errors_name_the_op_and_value(compute, error, builtin, match) -> None:
    with pytest.raises(error, match=match) as info:
        compute()
    assert isinstance(info.value, builtin) and isinstance(info.value, AutogradError)


def test_a_failed_operation_records_nothing() -> None:
    x = Value(-1.0)
    with pytest.raises(DomainError):
        x.log()
    assert x.parents == () and x.grad == 0.0


def test_overflow_is_inf_not_an_error() -> None:
    """The numeric policy: a result too large for a float is ±inf, as IEEE 754 and
    PyTorch give (e^1000 > 1.8e308; (1e200)² = 1e400; (-1e200)³ = -1e600)."""
    assert Value(1000.0).exp().data == math.inf
    assert (Value(1e200) ** 2).data == math.inf
    assert (Value(-1e200) ** 3).data == -math.inf


def test_negative_base_has_a_value_but_no_derivative_in_the_exponent() -> None:
    """(-2)^2 = 4 is finite (PyTorch gives it too); ∂/∂b = a^b·log(a) needs log(-2),
    which PyTorch gives as nan: backward raises DomainError naming the op."""
    a, b = Value(-2.0), Value(2.0)
    y = a**b
    assert y.data == 4.0
    with pytest.raises(DomainError, match=r"backward through pow\(-2.0, 2.0\).*log of a negative number"):
        y.backward()


def test_infinite_derivative_in_backward_is_a_clear_error() -> None:
    """d√x/dx = 1/(2√x) is infinite at 0: the error names the op and the point."""
    y = Value(0.0).sqrt()
    with pytest.raises(DivisionByZeroError, match=r"backward through sqrt\(0.0\)"):
        y.backward()


def test_infinite_derivative_in_grad_is_the_same_clear_error() -> None:
    """grad() differentiates like backward(), so it fails the same way at √0."""
    from autograd import grad

    x = Value(0.0)
    with pytest.raises(DivisionByZeroError, match=r"backward through sqrt\(0.0\)"):
        grad(x.sqrt(), [x])


def test_gradcheck_reports_the_input_and_both_values() -> None:
    from autograd import ops

    wrong = ops.Rule("bad_square", "sq", 1, lambda m, x: x * x, lambda m, x, y: (3 * x,))  # true: 2x
    from autograd.value import apply

    with pytest.raises(GradcheckError, match=r"inputs\[1\].*analytic 3.0 but numerical 2.0000"):
        gradcheck(lambda a, b: a + apply(wrong, (b,)), [0.5, 1.0])


def test_gradcheck_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidTypeError, match="must return a Value"):
        gradcheck(lambda a: 3.0, [1.0])  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidTypeError, match=r"inputs\[0\]"):
        gradcheck(lambda a: a, ["x"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="eps"):
        gradcheck(lambda a: a, [1.0], eps=0.0)


def _rule_with_slope(slope: float):
    """y = 2x with a wrong local derivative `slope` (NaN or ±inf) written into the rule."""
    from autograd import ops
    from autograd.value import apply

    rule = ops.Rule("bad_slope", "bad", 1, lambda m, x: 2.0 * x, lambda m, x, y: (slope,))
    return lambda a: apply(rule, (a,))


@pytest.mark.parametrize("slope", [math.nan, math.inf, -math.inf])
def test_gradcheck_fails_on_a_non_finite_analytic_derivative_like_torch(slope: float, torch) -> None:
    """A NaN compares false with everything, so |nan - 2| > tol is false too: the check must
    look for it. torch.autograd.gradcheck fails on the same function (y = 2x, backward slope)."""

    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def]
            return 2.0 * x

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            return g * slope

    import sys

    torch_gradcheck_error = sys.modules["torch.autograd.gradcheck"].GradcheckError  # the module, not the function
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    with pytest.raises(torch_gradcheck_error):
        torch.autograd.gradcheck(Bad.apply, (x,))
    with pytest.raises(GradcheckError, match=rf"inputs\[1\]\) at \[0.0, 0.5\] is not finite: analytic {slope!r}"):
        gradcheck(lambda a, b: a + _rule_with_slope(slope)(b), [0.0, 0.5])


def test_gradcheck_fails_on_a_non_finite_numerical_derivative() -> None:
    """e^x at x = 709.78271289338 is just below the largest float (e^709.782712893384 ≈ 1.798e308):
    the analytic derivative e^x is finite, but f(x + 1e-6) overflows to inf, so the central
    difference is inf: gradcheck must fail naming the input, not pass or raise a bare error."""
    x = 709.78271289338
    assert math.isfinite(math.exp(x)) and Value(x + 1e-6).exp().data == math.inf
    with pytest.raises(GradcheckError, match=r"inputs\[0\].*not finite.*numerical inf"):
        gradcheck(lambda a: a.exp(), [x])
