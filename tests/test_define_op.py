"""`define_op`: a user's operation joins the rule table, and every interpreter serves it:
eager, backward, grad(create_graph=True), gradcheck, traced replay, drawing and the
walkthrough. Expected numbers are worked by hand in each docstring."""

from __future__ import annotations

import math

import pytest
from conftest import require_module

from autograd import Value, define_op, draw_graph, grad, gradcheck, trace, walkthrough
from autograd.errors import DomainError, InvalidArgumentError, InvalidTypeError
from autograd.functions import USER_RULES

# smoothstep(x) = x²(3 − 2x): s'(x) = 6x(1 − x), s''(x) = 6 − 12x.
smoothstep = define_op(
    "smoothstep_test",
    lambda m, x: x * x * (3.0 - 2.0 * x),
    lambda m, x, y: 6.0 * x * (1.0 - x),
    symbol="S",
    formula=("x²(3 - 2x)", "6x(1 - x)"),
)
# A two-input op written with the namespace: f(a, b) = a·e^b, ∂f/∂a = e^b, ∂f/∂b = a·e^b = y.
scaled_exp = define_op(
    "scaled_exp_test",
    lambda m, a, b: a * m.exp(b),
    lambda m, a, b, y: (m.exp(b), y),
    domain="any a and b",
)


def test_value_and_gradient_by_hand() -> None:
    """s(0.25) = 0.0625·2.5 = 0.15625; s'(0.25) = 6·0.25·0.75 = 1.125."""
    x = Value(0.25)
    y = smoothstep(x)
    y.backward()
    assert y.data == 0.15625 and x.grad == 1.125


def test_second_derivative_through_create_graph() -> None:
    """s''(0.25) = 6 − 3 = 3; s''(0.9) = 6 − 10.8 = −4.8."""
    for point, expected in ((0.25, 3.0), (0.9, -4.8)):
        x = Value(point)
        (first,) = grad(smoothstep(x), [x], create_graph=True)
        assert grad(first, [x])[0] == pytest.approx(expected, rel=1e-14)


def test_two_input_op_and_numbers_as_constants() -> None:
    """f(2, 0) = 2, ∂f/∂a = 1, ∂f/∂b = 2; a number argument becomes a constant."""
    a, b = Value(2.0), Value(0.0)
    y = scaled_exp(a, b)
    y.backward()
    assert (y.data, a.grad, b.grad) == (2.0, 1.0, 2.0)
    assert scaled_exp(3.0, b).data == 3.0


def test_gradcheck_checks_a_user_op() -> None:
    assert gradcheck(lambda a, b: smoothstep(a) * scaled_exp(a, b), [0.3, -0.7])


def test_traced_replay_equals_eager() -> None:
    pytest.importorskip("numpy")
    w = Value(0.5)
    step = trace(lambda x: scaled_exp(smoothstep(x), w), 0.0)
    xs = [-0.5, 0.1, 0.25, 0.8]
    outputs = step.forward(xs)
    step.backward(1.0)
    expected_grad = 0.0
    for x, out in zip(xs, outputs):
        s = x * x * (3 - 2 * x)
        assert out == pytest.approx(s * math.exp(0.5), rel=1e-12)
        expected_grad += s * math.exp(0.5)  # ∂/∂w of s·e^w = s·e^w
    assert w.grad == pytest.approx(expected_grad, rel=1e-12)


def test_drawing_and_walkthrough_read_the_new_row() -> None:
    pytest.importorskip("graphviz")
    x = Value(0.25, label="x")
    y = smoothstep(x)
    assert "S" in draw_graph(y).source
    steps = walkthrough(y).steps
    formulas = [c.formula for step in steps for c in step.parents]
    assert "∂(x²(3 - 2x))/∂x = 6x(1 - x)" in formulas
    assert "6x(1 - x)" in (smoothstep.__doc__ or "")


def test_errors_name_the_op() -> None:
    log_of = define_op("log_of_test", lambda m, x: m.log(x), lambda m, x, y: 1.0 / x, domain="log_of needs x > 0")
    with pytest.raises(DomainError, match=r"log_of_test\(-1.0\): log_of needs x > 0"):
        log_of(Value(-1.0))
    with pytest.raises(InvalidArgumentError, match="expected 1 arguments, got 2"):
        smoothstep(Value(1.0), Value(2.0))
    with pytest.raises(InvalidTypeError):
        smoothstep("x")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"name": "smoothstep_test"}, InvalidArgumentError, "already in the table"),
        ({"name": "tanh"}, InvalidArgumentError, "already in the table"),
        ({"name": "not a name"}, InvalidArgumentError, "identifier"),
        ({"forward": lambda x: x}, InvalidArgumentError, "math namespace m first"),
        ({"derivative": lambda m, x: 1.0}, InvalidArgumentError, r"derivative must take \(m, x, y\)"),
        ({"forward": 3}, InvalidTypeError, "forward must be callable"),
        ({"formula": ("x",)}, InvalidArgumentError, "tuple of 2 texts"),
    ],
)
def test_bad_definitions_are_named(kwargs, error, words) -> None:
    arguments = {"name": "fresh_op_test", "forward": lambda m, x: x, "derivative": lambda m, x, y: 1.0, **kwargs}
    with pytest.raises(error, match=words):
        define_op(**arguments)
    assert "fresh_op_test" not in USER_RULES


def test_an_op_whose_formula_holds_an_inf_keeps_the_fast_replays_tests() -> None:
    """x/2 + inf is inf for every finite x, and no floating-point flag says so (the inf was there
    already). The fast replay trusts the flags only for the table's own rows: with a user's op it
    tests its outputs, finds them not finite and gives eager mode's infinities through the careful
    pass, so `outputs_checked` never tells a training loop that an inf is finite."""
    require_module("numpy", extra="fast")
    far = define_op("far_test", lambda m, x: x * 0.5 + math.inf, lambda m, x, y: 0.5)
    w = Value(2.0)
    step = trace(lambda x: far(x[0]) * w, [1.0])
    out = step.forward([[1.0], [-3.0], [0.0]])
    assert out.tolist() == [math.inf, math.inf, math.inf]  # eager: (x/2 + inf)·2 = inf
    assert not step.outputs_checked
