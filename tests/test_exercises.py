"""`check_derivative`: a learner's local derivative checked point by point.

The checker must say WRONG for the classic mistakes (expected numbers worked by hand
in each test) and OK for correct answers, which are made here by PyTorch (float64
autograd of the same function), not from the rule table the checker reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from autograd import Value, check_derivative, ops
from autograd.errors import InvalidArgumentError, InvalidTypeError
from autograd.exercises import DerivativeReport


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def wrong_lines(report: DerivativeReport) -> list[str]:
    return [r.line for r in report.results if not r.ok]


# -- classic mistakes: WRONG, with the point, the expected value and the learner's ----


def test_sigmoid_derivative_written_as_x_times_one_minus_x_is_wrong() -> None:
    """σ′(0) = σ(0)(1 − σ(0)) = ½·½ = 0.25; x(1 − x) at 0 is 0."""
    report = check_derivative("sigmoid", lambda x: x * (1 - x))
    assert not report.ok
    assert "WRONG at x = 0: expected 0.25, yours 0" in wrong_lines(report)
    assert len(report.wrong) == len(report.results)  # x(1 − x) is nowhere σ′(x) at these points


def test_sigmoid_derivative_written_as_sigmoid_itself_is_wrong() -> None:
    """σ′(0) = 0.25, σ(0) = 0.5."""
    report = check_derivative("sigmoid", sigmoid)
    assert not report.ok
    assert "WRONG at x = 0: expected 0.25, yours 0.5" in wrong_lines(report)


def test_subtraction_with_plus_one_for_the_second_input_is_wrong() -> None:
    """∂(a − b)/∂b = −1 everywhere; the line names the input that is wrong."""
    report = check_derivative("sub", lambda a, b: (1.0, 1.0))
    assert not report.ok
    assert "WRONG at a = 3, b = 1: ∂y/∂b expected -1, yours 1" in wrong_lines(report)
    assert all("∂y/∂a" not in line for line in wrong_lines(report))  # ∂/∂a = 1 was right


def test_abs_derivative_one_everywhere_is_wrong_at_negative_x() -> None:
    """d|x|/dx = −1 for x < 0."""
    report = check_derivative("abs", lambda x: 1.0)
    assert "WRONG at x = -1.5: expected -1, yours 1" in wrong_lines(report)
    assert "OK at x = 2" in [r.line for r in report.results]


def test_relu_derivative_one_at_zero_is_wrong_by_pytorchs_convention(torch: ModuleType) -> None:
    """relu has no derivative at 0; PyTorch (and this engine) use relu′(0) = 0, and the report says so."""
    x = torch.tensor(0.0, requires_grad=True)
    torch.relu(x).backward()
    assert x.grad.item() == 0.0  # the convention checked is PyTorch's
    report = check_derivative("relu", lambda x: 1.0 if x >= 0 else 0.0)
    assert wrong_lines(report) == ["WRONG at x = 0: expected 0, yours 1"]
    assert "relu′(0) = 0" in str(report) and "PyTorch" in str(report)


def test_quotient_with_plus_one_over_b_squared_is_wrong() -> None:
    """∂(a/b)/∂b = −a/b²: at a = 1, b = 2 that is −0.25, not 1/b² = 0.25."""
    report = check_derivative("div", lambda a, b: (1 / b, 1 / b**2))
    assert "WRONG at a = 1, b = 2: ∂y/∂b expected -0.25, yours 0.25" in wrong_lines(report)


def test_tanh_derivative_written_as_one_minus_x_squared_is_wrong() -> None:
    """tanh′(1) = 1 − tanh(1)² = 0.419974 (6 digits); 1 − 1² = 0. At x = 0 both are 1."""
    report = check_derivative("tanh", lambda x: 1 - x * x)
    assert "WRONG at x = 1: expected 0.419974, yours 0" in wrong_lines(report)
    assert "OK at x = 0" in [r.line for r in report.results]


def test_product_with_its_partials_swapped_is_wrong() -> None:
    """∂(a·b)/∂a = b and ∂(a·b)/∂b = a; at a = 3, b = 1 the swap gives 3 and 1."""
    report = check_derivative("mul", lambda a, b: (a, b))
    assert "WRONG at a = 3, b = 1: ∂y/∂a expected 1, yours 3; ∂y/∂b expected 3, yours 1" in wrong_lines(report)


def test_power_rule_with_the_absolute_value_of_a_negative_base_is_wrong() -> None:
    """d(x²)/dx = 2x = −4 at x = −2 (a negative base), not 2|x| = 4."""
    report = check_derivative("pow2", lambda x: 2 * abs(x))
    assert "WRONG at x = -2: expected -4, yours 4" in wrong_lines(report)


def test_a_function_of_values_is_checked_against_the_engines_gradient() -> None:
    """d(x·σ(x))/dx = σ(x) + x·σ(x)(1 − σ(x)); forgetting the product rule (σ′ only) is wrong:
    at x = 1, σ(1) + σ(1)(1 − σ(1)) = 0.731059 + 0.196612 = 0.927671."""
    right = check_derivative(lambda x: x * x.sigmoid(), lambda x: sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x)))
    assert right.ok, str(right)
    wrong = check_derivative(lambda x: x * x.sigmoid(), lambda x: sigmoid(x) * (1 - sigmoid(x)))
    assert "WRONG at x = 1: expected 0.927671, yours 0.196612" in wrong_lines(wrong)


def test_points_outside_the_domain_of_a_function_are_skipped_and_listed() -> None:
    report = check_derivative(lambda x: x.log(), lambda x: 1 / x)
    assert report.ok
    assert all(r.inputs[0] > 0 for r in report.results)
    assert "skipped x = -1: DomainError" in str(report)


def test_a_candidate_that_raises_is_wrong_and_the_line_says_what_it_raised() -> None:
    report = check_derivative("log", lambda x: math.log(-x))
    assert not report.ok
    assert wrong_lines(report)[0] == "WRONG at x = 0.5: yours raised ValueError: math domain error"


def test_one_number_for_a_binary_op_is_wrong_and_asks_for_both_partials() -> None:
    report = check_derivative("mul", lambda a, b: b)
    assert wrong_lines(report)[0] == "WRONG at a = 3, b = 1: yours returned 1.0, expected 2 numbers (∂y/∂a, ∂y/∂b)"


# -- placeholders ------------------------------------------------------------------


def _returns_nothing(x: float) -> None: ...


def _not_implemented(x: float) -> float:
    raise NotImplementedError


@pytest.mark.parametrize(
    "placeholder", [None, ..., _returns_nothing, lambda x: ..., _not_implemented], ids=str
)
def test_a_placeholder_is_reported_as_not_done_yet(placeholder: Any) -> None:
    report = check_derivative("sigmoid", placeholder)
    assert not report.ok and not report.done
    assert str(report) == "check_derivative(sigmoid): not done yet (replace the placeholder with your derivative)"
    assert "not done yet" in report._repr_html_()


# -- correct answers, made by PyTorch: OK for every rule of the table --------------


def torch_partials(torch: ModuleType, function: Callable[..., Any]) -> Callable[..., tuple[float, ...]]:
    """The candidate a careful learner would write, computed by PyTorch's autograd in float64."""

    def candidate(*point: float) -> tuple[float, ...]:
        inputs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
        return tuple(g.item() for g in torch.autograd.grad(function(*inputs), inputs))

    return candidate


def torch_functions(torch: ModuleType) -> dict[str, Callable[..., Any]]:
    F = torch.nn.functional
    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "neg": lambda x: -x,
        "abs": torch.abs,
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "softplus": F.softplus,
        "sin": torch.sin,
        "cos": torch.cos,
        "tan": torch.tan,
        "sinh": torch.sinh,
        "cosh": torch.cosh,
        "asin": torch.asin,
        "acos": torch.acos,
        "atan": torch.atan,
        "log1p": torch.log1p,
        "expm1": torch.expm1,
        "log2": torch.log2,
        "log10": torch.log10,
        "atan2": torch.atan2,
        "hypot": torch.hypot,
        "maximum": torch.maximum,
        "minimum": torch.minimum,
        "sum": lambda *xs: torch.stack(xs).sum(),
        "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
        "leaky_relu0.2": lambda x: F.leaky_relu(x, 0.2),
        "pow0": lambda x: x**0.0,
        "pow1": lambda x: x**1.0,
        "pow3": lambda x: x**3.0,
        "pow-1": lambda x: x**-1.0,
        "pow-2": lambda x: x**-2.0,
        "pow0.5": lambda x: x**0.5,
        "pow-1.5": lambda x: x**-1.5,
    }


def test_every_rule_of_the_table_has_a_reference_here(torch: ModuleType) -> None:
    """A rule added to autograd.ops must be added to `torch_functions` (parametric families by example)."""
    names = {rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)}
    assert names <= set(torch_functions(torch)), names - set(torch_functions(torch))


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_derivatives_from_pytorch_are_ok_for_every_rule(torch: ModuleType, seed: int) -> None:
    for name, function in torch_functions(torch).items():
        report = check_derivative(name, torch_partials(torch, function), seed=seed)
        assert report.ok, str(report)
        assert report.summary() == f"All {len(report.results)} points OK."


def test_a_rule_object_is_accepted_like_its_name(torch: ModuleType) -> None:
    by_name = check_derivative("sigmoid", torch_partials(torch, torch.sigmoid))
    by_rule = check_derivative(ops.SIGMOID, torch_partials(torch, torch.sigmoid))
    assert by_rule.ok and str(by_rule) == str(by_name)


def test_correct_partials_of_a_two_input_function_are_ok_by_finite_differences() -> None:
    """f(a, b) = a·sin(b) + a²; the candidate is the central difference (h = 1e-6), so rtol 1e-5."""

    def f(a: float, b: float) -> float:
        return a * math.sin(b) + a * a

    h = 1e-6
    candidate = lambda a, b: (  # noqa: E731
        (f(a + h, b) - f(a - h, b)) / (2 * h),
        (f(a, b + h) - f(a, b - h)) / (2 * h),
    )
    report = check_derivative(lambda a, b: a * b.sin() + a * a, candidate, rtol=1e-5, atol=1e-6)
    assert report.ok, str(report)
    assert len(report.results[0].inputs) == 2


# -- the points ----------------------------------------------------------------------


def test_edge_points_come_first_and_random_points_follow_the_seed() -> None:
    first = check_derivative("relu", lambda x: 0.0 if x <= 0 else 1.0, samples=3, seed=5)
    again = check_derivative("relu", lambda x: 0.0 if x <= 0 else 1.0, samples=3, seed=5)
    other = check_derivative("relu", lambda x: 0.0 if x <= 0 else 1.0, samples=3, seed=6)
    inputs = [r.inputs for r in first.results]
    assert inputs[:3] == [(0.0,), (-1.5,), (2.0,)]
    assert len(inputs) == 6 and inputs == [r.inputs for r in again.results]
    assert inputs[3:] != [r.inputs for r in other.results][3:]


def test_points_replace_the_chosen_ones() -> None:
    report = check_derivative("sub", lambda a, b: (1.0, -1.0), points=[(2, 7), [0.5, 0.25]])
    assert [r.inputs for r in report.results] == [(2.0, 7.0), (0.5, 0.25)]
    assert report.ok


def test_domain_limited_rules_are_sampled_inside_their_domain() -> None:
    for name in ("log", "sqrt", "pow", "pow0.5", "pow-1", "div"):
        report = check_derivative(name, lambda *xs: tuple(0.0 for _ in xs), samples=20)
        assert len(report.results) >= 20  # no point was outside the domain (it would have raised)


# -- the report ----------------------------------------------------------------------


def test_report_prints_one_line_per_point_and_a_summary() -> None:
    report = check_derivative("neg", lambda x: -1.0 if x else 1.0, points=[0.0, 2.0])
    assert str(report).splitlines() == [
        "check_derivative(neg): your dy/dx at 2 points",
        "  WRONG at x = 0: expected -1, yours 1",
        "  OK at x = 2",
        "1 of 2 points WRONG.",
    ]
    assert repr(report) == str(report)


def test_report_shows_itself_as_html_in_jupyter_with_the_text_escaped() -> None:
    report = check_derivative("relu", lambda x: 1.0 if x >= 0 else 0.0, points=[0.0, -1.0])
    page = report._repr_html_()
    assert "WRONG at x = 0: expected 0, yours 1" in page
    assert "OK at x = -1" in page
    assert "<script" not in page


def test_a_value_returned_by_the_candidate_counts_as_its_number() -> None:
    assert check_derivative("exp", lambda x: Value(x).exp(), points=[1.0]).ok


# -- misuse: named errors, not report lines ----------------------------------------------


def test_an_unknown_op_name_is_refused_with_the_known_names() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown op 'sigmod'; known: add, sub, .*sigmoid"):
        check_derivative("sigmod", lambda x: 0.0)


@pytest.mark.parametrize("candidate", [0.25, "x*(1-x)"], ids=str)
def test_a_candidate_that_is_not_a_function_is_refused(candidate: Any) -> None:
    with pytest.raises(InvalidTypeError, match="candidate must be a function of x"):
        check_derivative("sigmoid", candidate)


def test_an_op_that_is_neither_name_rule_nor_function_is_refused() -> None:
    with pytest.raises(InvalidTypeError, match="op must be a rule name, a Rule or a function of Values, got int 3"):
        check_derivative(3, lambda x: 0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("points", [[(1.0, 2.0)], [math.nan], ["1"]], ids=str)
def test_points_of_the_wrong_shape_or_not_finite_are_refused(points: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"points\[0\]"):
        check_derivative("exp", lambda x: math.exp(x), points=points)


def test_a_rule_without_points_of_its_own_is_checked_at_generic_points(torch: ModuleType) -> None:
    """A row added to the table later still gets checked (0, ±1, ±2 and random points)."""
    from autograd.ops import Rule

    cube = Rule("cube", "³", 1, lambda m, x: x * x * x, lambda m, x, y: (3.0 * x * x,), formula=("x³", "3·x²"))
    report = check_derivative(cube, torch_partials(torch, lambda x: x**3))
    assert report.ok and [r.inputs for r in report.results][:5] == [(0.0,), (1.0,), (-1.0,), (2.0,), (-2.0,)]
    assert not check_derivative(cube, lambda x: 3 * x).ok


def test_a_constant_has_nothing_to_check() -> None:
    from autograd.value import CONSTANT

    with pytest.raises(InvalidArgumentError, match="a constant has no inputs"):
        check_derivative(CONSTANT, lambda: 0.0)


def test_the_report_names_the_inputs_as_the_function_does() -> None:
    """The delta of an output neuron as a function of its net input z: δ = (σ(z) − t)·σ(z)(1 − σ(z)),
    for E = ½(t − σ(z))² with t = 0.6."""
    report = check_derivative(
        lambda z: 0.5 * (0.6 - z.sigmoid()) ** 2, lambda z: (sigmoid(z) - 0.6) * sigmoid(z) * (1 - sigmoid(z)),
        points=[0.8],
    )
    assert str(report).splitlines() == [
        "check_derivative(f): your dy/dz at 1 point",
        "  OK at z = 0.8",
        "All 1 point OK.",
    ]
