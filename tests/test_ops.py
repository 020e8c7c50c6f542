"""Every rule of the op table, checked against two independent references:
central finite differences (gradcheck) and PyTorch in float64 (to 1e-12)."""

from __future__ import annotations

import math

import pytest
from op_cases import CASES, OpCase, case_id, expand

from autograd import Value, grad, gradcheck, ops

PAIRS = expand()


def test_every_rule_has_a_case() -> None:
    table = {rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)}
    covered = {case.rule for case in CASES}
    assert table - covered == set(), "add an OpCase in tests/op_cases.py for each new rule"
    # The parametric families too: x ** n (number n) and leaky_relu(slope).
    assert ops.power(3.0).name.startswith("pow") and "pow" in covered
    assert ops.leaky_relu(0.2).name.startswith("leaky_relu") and "leaky_relu" in covered


@pytest.mark.parametrize(("case", "point"), PAIRS, ids=case_id)
def test_gradient_matches_finite_differences(case: OpCase, point: tuple[float, ...]) -> None:
    assert gradcheck(case.engine, list(point))


@pytest.mark.parametrize(("case", "point"), PAIRS, ids=case_id)
def test_value_and_gradient_match_pytorch(case: OpCase, point: tuple[float, ...], torch) -> None:
    xs = [Value(x) for x in point]
    out = case.engine(*xs)
    out.backward()

    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    expected = case.reference(torch, *ts)
    expected.backward()

    assert out.data == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    for x, t in zip(xs, ts, strict=True):
        assert x.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-12)


SMOOTH_PAIRS = [(case, point) for case, point in PAIRS if case.smooth]


@pytest.mark.parametrize(("case", "point"), SMOOTH_PAIRS, ids=case_id)
def test_second_derivative_matches_finite_differences_of_the_first(
    case: OpCase, point: tuple[float, ...]
) -> None:
    """d²f/dx_i dx_j from grad(grad(f, create_graph=True)) vs the central difference of
    the first derivative, (∂f/∂x_i(x + ε e_j) - ∂f/∂x_i(x - ε e_j)) / 2ε."""
    eps = 1e-5

    def first_derivatives(at: list[float]) -> list[float]:
        xs = [Value(x) for x in at]
        return [float(g) for g in grad(case.engine(*xs), xs)]

    xs = [Value(x) for x in point]
    firsts = grad(case.engine(*xs), xs, create_graph=True)
    for i, first in enumerate(firsts):
        assert isinstance(first, Value)
        seconds = grad(first, xs)
        for j, second in enumerate(seconds):
            plus, minus = list(point), list(point)
            plus[j] += eps
            minus[j] -= eps
            numerical = (first_derivatives(plus)[i] - first_derivatives(minus)[i]) / (2 * eps)
            assert second == pytest.approx(numerical, rel=1e-5, abs=1e-6), (i, j)


@pytest.mark.parametrize(("case", "point"), SMOOTH_PAIRS, ids=case_id)
def test_second_derivative_matches_pytorch(case: OpCase, point: tuple[float, ...], torch) -> None:
    xs = [Value(x) for x in point]
    firsts = grad(case.engine(*xs), xs, create_graph=True)

    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    t_firsts = torch.autograd.grad(case.reference(torch, *ts), ts, create_graph=True)
    for first, t_first in zip(firsts, t_firsts, strict=True):
        assert isinstance(first, Value)
        seconds = grad(first, xs)
        if t_first.requires_grad:
            t_seconds = torch.autograd.grad(t_first, ts, allow_unused=True, retain_graph=True)
        else:  # a constant first derivative (e.g. of a + b): every second derivative is 0
            t_seconds = (None,) * len(ts)
        for second, t_second in zip(seconds, t_seconds, strict=True):
            expected = 0.0 if t_second is None else t_second.item()
            assert second == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_sigmoid_and_softplus_do_not_overflow_for_large_inputs() -> None:
    # σ(-800) underflows to 0 and softplus(800) = 800 + log1p(e^-800) = 800 (by hand).
    assert Value(-800.0).sigmoid().data == 0.0
    assert Value(800.0).sigmoid().data == 1.0
    assert Value(800.0).softplus().data == 800.0
    assert Value(-800.0).softplus().data == pytest.approx(math.exp(-800.0), abs=0.0)


ALL_RULES = (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM, ops.power(3.0), ops.leaky_relu(0.2))


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.name)
def test_every_rule_carries_its_formula_as_text(rule: ops.Rule) -> None:
    """help(), edge labels and the walkthrough print this one text: a forward
    expression and one local derivative per input."""
    assert len(rule.formula) == 1 + (rule.arity or 1)
    assert all(text.strip() for text in rule.formula)
    explained = rule.explain()
    for i in range(rule.arity or 1):
        assert rule.local_derivative(i) in explained
    assert rule.formula[0] in repr(rule)


def test_help_of_a_method_shows_the_derivative_formula() -> None:
    """A student reads σ' = σ(1 - σ) from help(Value.sigmoid) (the textbook derivative)."""
    assert "∂(σ(x))/∂x = σ(x)·(1 - σ(x))" in (Value.sigmoid.__doc__ or "")
    assert "∂(a·b)/∂b = a" in (Value.__mul__.__doc__ or "")
    assert "∂(a / b)/∂b = -a/b²" in (Value.__truediv__.__doc__ or "")
