"""The numeric policy, checked for every rule of the op table against PyTorch in float64,
in eager mode, in `grad(..., create_graph=True)` and in traced replay:

- overflow gives ±inf (no op raises because a result is too large);
- NaN and ±inf inputs propagate as in PyTorch (relu(nan) is nan);
- a pole or a point outside the domain, at finite inputs, raises DomainError (PyTorch
  gives nan there) or DivisionByZeroError (PyTorch gives ±inf at a pole);
- where PyTorch gives a finite value and gradient, we give the same.

The expected outcome of each point is read off PyTorch's answer (never this engine's):
a finite input whose value (or gradient) PyTorch gives as nan must raise; otherwise the
numbers must agree, NaN with NaN and inf with inf. The grids of extreme points avoid 0,
so a finite input that PyTorch maps to ±inf is an overflow, which we must reproduce.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from op_cases import CASES, OpCase

import nn
from autograd import Value, grad, ops
from autograd.errors import DivisionByZeroError, DomainError

NAN, INF = math.nan, math.inf
# Finite but extreme: products, squares, exponentials and sums of these overflow.
EXTREMES = (1e308, -1e308, 1e200, -1e200, 710.0, -710.0)


def same(ours: float, theirs: float) -> bool:
    """Equal as IEEE numbers: NaN matches NaN, ±inf itself, finite numbers to 1e-12."""
    if math.isnan(theirs) or math.isinf(theirs):
        return ours == theirs or (math.isnan(ours) and math.isnan(theirs))
    return ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)


def torch_answer(reference: Callable[..., Any], point: Sequence[float], torch: Any) -> tuple[float, list[float]]:
    """PyTorch's value and gradient (float64) of ``reference`` at ``point``."""
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in point]
    out = reference(torch, *ts)
    grads = torch.autograd.grad(out, ts, allow_unused=True)
    return out.item(), [0.0 if g is None else g.item() for g in grads]


# Cases with a pole away from 0: PyTorch's ±inf at a finite input is 0 ** (x < 0) = 1/0 there.
# (With ``poles``, ±inf at finite inputs, in the value or a gradient, is a pole, not an overflow.)
POLE_CASES = {"rpow:0**a"}


def expected_outcome(value: float, grads: list[float], point: Sequence[float], poles: bool = False) -> str:
    """'forward' or 'backward' where the policy says raise, else 'numbers'."""
    if all(math.isfinite(x) for x in point):
        if math.isnan(value) or (poles and math.isinf(value)):
            return "forward"
        if any(math.isnan(g) or (poles and math.isinf(g)) for g in grads):
            return "backward"
    return "numbers"


def leaves(point: Sequence[float]) -> list[Value]:
    """Values holding ``point``; NaN and ±inf are written into .data (the constructor refuses them,
    but they reach graphs through overflow, .data assignments and optimizer updates)."""
    xs = [Value(0.0) for _ in point]
    for x, p in zip(xs, point):
        x.data = p
    return xs


def check_eager_and_create_graph(
    engine: Callable[..., Value], point: Sequence[float], value: float, grads: list[float], poles: bool = False
) -> None:
    outcome = expected_outcome(value, grads, point, poles)
    xs = leaves(point)
    if outcome == "forward":
        with pytest.raises((DomainError, DivisionByZeroError)):
            engine(*xs)
        return
    out = engine(*xs)
    assert same(out.data, value), (point, out.data, value)
    if outcome == "backward":
        with pytest.raises((DomainError, DivisionByZeroError)):
            out.backward()
        with pytest.raises((DomainError, DivisionByZeroError)):
            grad(out, xs, create_graph=True)
        return
    out.backward()
    recorded = grad(engine(*leaves(point)), leaves(point), create_graph=False)
    assert len(recorded) == len(grads)
    firsts = grad(out, xs, create_graph=True)
    for x, first, expected in zip(xs, firsts, grads):
        assert same(x.grad, expected), (point, x.grad, expected)
        assert same(first.data if isinstance(first, Value) else first, expected), (point, first, expected)


class Replay:
    """``engine`` traced as fn(x) = engine(x₁ + z₁, …) with parameters z: replayed with x = 0
    and z.data = point, the op sees exactly the point (0 + p = p, NaN and ±inf included),
    and ∂out/∂z_i is the op's own partial derivative."""

    def __init__(self, engine: Callable[..., Value], example: Sequence[float]) -> None:
        from autograd import trace

        self.z = [Value(p) for p in example]
        self.step = trace(lambda x: engine(*[xi + zi for xi, zi in zip(x, self.z)]), [0.0] * len(example))

    def check(self, point: Sequence[float], value: float, grads: list[float], poles: bool = False) -> None:
        outcome = expected_outcome(value, grads, point, poles)
        for z, p in zip(self.z, point):
            z.data, z.grad = p, 0.0
        batch = [[0.0] * len(point)]
        if outcome == "forward":
            with pytest.raises((DomainError, DivisionByZeroError), match="traced replay, sample 0"):
                self.step.forward(batch)
            return
        (out,) = self.step.forward(batch).tolist()
        assert same(out, value), (point, out, value)
        if outcome == "backward":
            with pytest.raises((DomainError, DivisionByZeroError), match="traced replay, sample 0"):
                self.step.backward()
            return
        self.step.backward()
        for z, expected in zip(self.z, grads):
            assert same(z.grad, expected), (point, z.grad, expected)


def extreme_points(arity: int) -> list[tuple[float, ...]]:
    return list(itertools.product(EXTREMES, repeat=arity))


def non_finite_points(case: OpCase) -> list[tuple[float, ...]]:
    """Each input in turn NaN, +inf and -inf, the others at the case's first point."""
    base = case.points[0]
    return [base[:i] + (bad,) + base[i + 1 :] for i in range(len(base)) for bad in (NAN, INF, -INF)]


# The trig functions of PyTorch (SLEEF) and of libm differ for |x| ~ 1e200: at such
# arguments sin(x) is a function of the last bit of x, and neither is "the" answer.
HUGE_ARGUMENT_CASES = {"sin", "cos"}


def case_name(case: OpCase) -> str:
    return case.id


@pytest.mark.parametrize("case", CASES, ids=case_name)
def test_overflow_gives_inf_as_pytorch_in_eager_and_create_graph(case: OpCase, torch) -> None:
    """Every rule at extreme finite inputs: ±inf where PyTorch overflows, DomainError where it gives nan."""
    points = extreme_points(len(case.points[0]))
    if case.rule in HUGE_ARGUMENT_CASES:
        points = [(710.0,), (-710.0,)]
    for point in points:
        value, grads = torch_answer(case.reference, point, torch)
        check_eager_and_create_graph(case.engine, point, value, grads, case.id in POLE_CASES)


@pytest.mark.parametrize("case", CASES, ids=case_name)
def test_overflow_gives_inf_as_pytorch_in_traced_replay(case: OpCase, torch) -> None:
    pytest.importorskip("numpy")
    replay = Replay(case.engine, case.points[0])
    points = extreme_points(len(case.points[0]))
    if case.rule in HUGE_ARGUMENT_CASES:
        points = [(710.0,), (-710.0,)]
    for point in points:
        value, grads = torch_answer(case.reference, point, torch)
        replay.check(point, value, grads, case.id in POLE_CASES)


# PyTorch computes x ** 0.5 as sqrt(x): (-inf) ** 0.5 is nan there, while IEEE pow (C, numpy
# and Python's math.pow) gives +inf; we follow IEEE pow for every exponent alike.
IEEE_POW_DIFFERS = {("pow:a**0.5", (-INF,))}


@pytest.mark.parametrize("case", CASES, ids=case_name)
def test_nan_and_inf_inputs_propagate_as_pytorch_in_eager_and_create_graph(case: OpCase, torch) -> None:
    """relu(nan) is nan and its gradient 1, leaky_relu's 0.01, abs's 0 (PyTorch's conventions),
    inf - inf is nan, exp(-inf) is 0, ...: never an error once an input is NaN or infinite."""
    for point in non_finite_points(case):
        if (case.id, point) in IEEE_POW_DIFFERS:
            continue
        value, grads = torch_answer(case.reference, point, torch)
        check_eager_and_create_graph(case.engine, point, value, grads)


@pytest.mark.parametrize("case", CASES, ids=case_name)
def test_nan_and_inf_inputs_propagate_as_pytorch_in_traced_replay(case: OpCase, torch) -> None:
    pytest.importorskip("numpy")
    replay = Replay(case.engine, case.points[0])
    for point in non_finite_points(case):
        if (case.id, point) in IEEE_POW_DIFFERS:
            continue
        value, grads = torch_answer(case.reference, point, torch)
        replay.check(point, value, grads)


def test_every_rule_of_the_table_is_in_the_policy_grids() -> None:
    """The grids above run over tests/op_cases.py, which must cover every rule (test_ops checks it)."""
    table = {rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)}
    assert table <= {case.rule for case in CASES}


def test_the_overflow_examples_of_the_policy() -> None:
    """By hand (IEEE 754): (1e200)² = 1e400 > 1.8e308, e^1000 > e^709.8, 1e200·1e200 = 1e400."""
    assert (Value(1e200) ** 2).data == INF
    assert Value(1000.0).exp().data == INF
    assert (Value(1e200) * Value(1e200)).data == INF
    assert (Value(-1e200) ** 3).data == -INF  # an odd power keeps the sign
    x = Value(1e200)
    (x**3).backward()  # 3x² = 3e400
    assert x.grad == INF


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_relu_keeps_nan_like_pytorch(activation: str, torch) -> None:
    """Forward, backward, create_graph and trace: relu(nan) = nan with local derivative 1 and
    leaky_relu(nan) = nan with 0.01 (PyTorch: relu backward passes where the output is not <= 0,
    leaky_relu's where the input is > 0)."""
    t = torch.tensor(NAN, requires_grad=True)
    (torch.relu(t) if activation == "relu" else torch.nn.functional.leaky_relu(t, 0.01)).backward()
    (x,) = leaves([NAN])
    y = getattr(x, activation)()
    y.backward()
    assert math.isnan(y.data) and x.grad == t.grad.item() == (1.0 if activation == "relu" else 0.01)
    (first,) = grad(getattr(x, activation)(), [x], create_graph=True)
    assert float(first) == t.grad.item()


def test_hinge_of_nan_is_nan() -> None:
    """hinge = mean(max(0, 1 - t·o)): a NaN prediction gives a NaN loss, which the divergence
    guard sees (it used to be 0, so training went on)."""
    (o,) = leaves([NAN])
    assert math.isnan(nn.losses.hinge([o], [1.0]).data)


# -- x ** n at 0 (issue 11, item 1) -------------------------------------------------------


def torch_derivatives(n: float, x: float, orders: int, torch) -> list[float]:
    """d^k(x^n)/dx^k for k = 0 … orders-1 by repeated torch.autograd.grad(create_graph=True)."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    f = t**n
    out = [f.item()]
    for _ in range(orders - 1):
        if not f.requires_grad:  # a constant (the derivative of x**0): every further one is 0
            out.append(0.0)
            continue
        (f,) = torch.autograd.grad(f, t, create_graph=True)
        out.append(f.item())
    return out


def our_derivatives(n: float, x: Value, orders: int) -> list[float]:
    f: Value | float = x**n
    out = [float(f)]  # type: ignore[arg-type]
    for _ in range(orders - 1):
        (f,) = grad(f, [x], create_graph=True) if isinstance(f, Value) else (0.0,)
        out.append(float(f))
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5])
def test_integer_powers_at_zero_have_every_derivative_like_pytorch(n: int, torch) -> None:
    """d^k(x^n)/dx^k at 0 is n! for k = n and 0 otherwise (n·(n-1)···(n-k+1)·0^(n-k)),
    with d(x^0)/dx = 0: eager backward, create_graph to order n + 2, and PyTorch agree."""
    expected = [float(math.perm(n, k)) if k == n else 0.0 for k in range(n + 3)]
    expected[0] = 1.0 if n == 0 else 0.0
    assert torch_derivatives(n, 0.0, n + 3, torch) == expected
    assert our_derivatives(n, Value(0.0), n + 3) == expected
    x = Value(0.0)
    (x**n).backward()
    assert x.grad == (1.0 if n == 1 else 0.0)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_integer_powers_at_zero_in_traced_replay(n: int) -> None:
    """The traced k-th derivative of (x + w)^n (by grad(create_graph=True) inside the traced
    function), replayed at x = 0, -1, 2 with w = 0: n!/(n-k)!·x^(n-k); its backward gives
    the (k+1)-th derivative in w. Closed forms by hand."""
    pytest.importorskip("numpy")
    from autograd import trace

    def derivative(x: Value, k: int) -> Value:
        f: Any = (x + w) ** n
        for _ in range(k):
            (f,) = grad(f, [x], create_graph=True)
            if not isinstance(f, Value):
                f = Value(f) * 1.0
        return f  # type: ignore[no-any-return]

    def closed_form(k: int, x: float) -> float:
        return 0.0 if k > n else math.perm(n, k) * x ** (n - k)

    for k in range(n + 2):
        w = Value(0.5)
        step = trace(lambda x: derivative(x, k), 0.5)  # noqa: B023
        w.data = 0.0
        points = [0.0, -1.0, 2.0]
        assert step.forward(points).tolist() == [closed_form(k, p) for p in points]
        w.grad = 0.0
        step.backward()
        assert w.grad == sum(closed_form(k + 1, p) for p in points)


@pytest.mark.parametrize(
    ("n", "x", "error", "message"),
    [
        (-1, 0.0, DivisionByZeroError, r"pow-1\(0\.0\): x \*\* -1 needs x != 0$"),
        (-2, 0.0, DivisionByZeroError, r"pow-2\(0\.0\): x \*\* -2 needs x != 0$"),
        (0.5, -1.0, DomainError, r"pow0\.5\(-1\.0\): x \*\* 0\.5 needs x >= 0, and x > 0 for its derivative$"),
        (2.5, -1.0, DomainError, r"pow2\.5\(-1\.0\): x \*\* 2\.5 needs x >= 0$"),
        (-0.5, 0.0, DivisionByZeroError, r"pow-0\.5\(0\.0\): x \*\* -0\.5 needs x > 0$"),
        (-0.5, -4.0, DomainError, r"pow-0\.5\(-4\.0\): x \*\* -0\.5 needs x > 0$"),
    ],
)
def test_pow_error_messages_state_the_true_condition(n: float, x: float, error: type, message: str, torch) -> None:
    """Each message names the condition for its own n (x ** 0 and x ** 3 have none: defined
    everywhere); PyTorch confirms the point is outside it (nan or inf there)."""
    assert not math.isfinite(torch.tensor(x, dtype=torch.float64).pow(n).item())
    with pytest.raises(error, match=message):
        Value(x) ** n


def test_pow_derivative_error_names_the_condition_of_the_derivative(torch) -> None:
    """x ** 0.5 at 0 is 0, but its derivative 0.5·x^-0.5 is inf (PyTorch gives inf too)."""
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (t**0.5).backward()
    assert t.grad.item() == INF
    with pytest.raises(DivisionByZeroError, match=r"backward through pow0\.5\(0\.0\).*x > 0 for its derivative"):
        (Value(0.0) ** 0.5).backward()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 0.0, 4.0])
@pytest.mark.parametrize("x", [0.0, -1.0, -0.5])
def test_non_negative_integer_powers_never_raise(n: float, x: float) -> None:
    """x^n for an integer n >= 0 is a polynomial: defined, with every derivative, for every x."""
    our_derivatives(n, Value(x), 4)


# -- x ** y with constants and 0 ** y (issue 11, item 2) -------------------------------------

BASES = (0.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
EXPONENTS = (0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 1.5, -0.5, 2.5)

# (name, ours, PyTorch's, which operands are differentiated)
POW_VARIANTS: list[tuple[str, Callable[[Value, Value, float, float], Value], Callable[..., Any], tuple[bool, bool]]] = [
    ("Value ** Value", lambda a, b, p, q: a**b, lambda t, a, b: a**b, (True, True)),
    ("Value ** constant Value", lambda a, b, p, q: a ** Value(q, requires_grad=False),
     lambda t, a, b: a ** b.detach(), (True, False)),
    ("constant Value ** Value", lambda a, b, p, q: Value(p, requires_grad=False) ** b,
     lambda t, a, b: a.detach() ** b, (False, True)),
    ("number ** Value", lambda a, b, p, q: p**b, lambda t, a, b: a.item() ** b, (False, True)),
    ("Value ** number", lambda a, b, p, q: a**q, lambda t, a, b: a ** b.item(), (True, False)),
]


def torch_pow(reference: Callable[..., Any], p: float, q: float, torch) -> tuple[float, list[float]]:
    a = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(q, dtype=torch.float64, requires_grad=True)
    out = reference(torch, a, b)
    wanted = [t for t in (a, b) if t is not None]
    grads = torch.autograd.grad(out, wanted, allow_unused=True) if out.requires_grad else (None, None)
    return out.item(), [0.0 if g is None else g.item() for g in grads]


@pytest.mark.parametrize(
    ("name", "ours", "reference", "differentiated"), POW_VARIANTS, ids=[v[0] for v in POW_VARIANTS]
)
def test_pow_follows_pytorch_where_finite_and_raises_where_not(name, ours, reference, differentiated, torch) -> None:
    """On a grid of bases and exponents (0, negatives, integers, fractions): where PyTorch's value
    and the gradients it takes are finite, ours are the same (0 ** y = 0 with ∂/∂y = 0 for y > 0,
    0 ** 0 = 1 with gradient 0); where PyTorch gives nan we raise DomainError, where ±inf
    DivisionByZeroError: at the forward for the value, at backward for a gradient."""
    for p, q in itertools.product(BASES, EXPONENTS):
        value, (da, db) = torch_pow(reference, p, q, torch)
        taken = [d for d, used in zip((da, db), differentiated) if used]

        def raises_for(number: float) -> type:
            return DomainError if math.isnan(number) else DivisionByZeroError

        a, b = Value(p), Value(q)
        if not math.isfinite(value):
            with pytest.raises(raises_for(value)):
                ours(a, b, p, q)
            continue
        out = ours(a, b, p, q)
        assert out.data == pytest.approx(value, rel=1e-14, abs=0.0), (p, q)
        bad = [d for d in taken if not math.isfinite(d)]
        if bad:
            with pytest.raises(raises_for(bad[0])):
                out.backward()
            with pytest.raises(raises_for(bad[0])):
                grad(out, [a, b], create_graph=True)
            continue
        out.backward()
        expected = [da if differentiated[0] else 0.0, db if differentiated[1] else 0.0]
        assert [a.grad, b.grad] == pytest.approx(expected, rel=1e-14, abs=0.0), (p, q)
        recorded = grad(out, [a, b], create_graph=True)
        assert [float(g) for g in recorded] == pytest.approx(expected, rel=1e-14, abs=0.0), (p, q)


@pytest.mark.parametrize(
    ("name", "ours", "reference", "differentiated"), POW_VARIANTS, ids=[v[0] for v in POW_VARIANTS]
)
def test_pow_follows_pytorch_where_finite_and_raises_where_not_in_traced_replay(
    name, ours, reference, differentiated, torch
) -> None:
    """The same grid replayed by `trace` (traced at a = b = 2, where every variant is defined)."""
    pytest.importorskip("numpy")
    for p, q in itertools.product(BASES, EXPONENTS):
        value, grads = torch_pow(reference, p, q, torch)
        replay = Replay(lambda a, b: ours(a, b, p, q), (2.0, 2.0))  # noqa: B023
        replay.check((p, q), value, grads, poles=True)


def test_zero_to_a_positive_power_has_a_zero_gradient_in_the_exponent(torch) -> None:
    """0 ** y = 0 for y > 0, a constant: ∂/∂y = 0 (PyTorch's convention, also for y = 0, where 0^0 = 1)."""
    for q in (0.0, 0.5, 2.0, 3.0):
        y = Value(q)
        out = 0.0**y
        out.backward()
        assert (out.data, y.grad) == (1.0 if q == 0.0 else 0.0, 0.0)


def test_zero_to_a_positive_power_is_constant_to_every_order() -> None:
    """0^y = 0 for every y > 0: every derivative in y is 0 (by hand). PyTorch's second
    derivative there is nan (0·log 0 from its masked branch), an artefact we do not copy."""
    y = Value(0.7)
    f: Any = 0.0**y
    for _ in range(3):
        (f,) = grad(f, [y], create_graph=True) if isinstance(f, Value) else (0.0,)
        assert float(f) == 0.0


def test_pow_with_a_constant_value_records_the_constant_rule() -> None:
    """As in PyTorch, only operands needing a gradient are differentiated: a constant exponent
    gives the rule x ** n, a constant base the rule c ** x (no derivative in the constant)."""
    x = Value(2.0)
    assert (x ** Value(3.0, requires_grad=False)).op == "pow3"
    assert (Value(2.0, requires_grad=False) ** x).op == "rpow2"
    assert (2.0**x).op == "rpow2"
    assert (x ** Value(3.0)).op == "pow"



def test_tracing_refuses_a_pow_derivative_chosen_by_the_traced_numbers() -> None:
    """∂(a^b)/∂a is 0 at b = 0 by PyTorch's convention, a choice made from b's number: traced
    at b = 0 it would be frozen for every sample, so tracing raises TraceError there. Traced
    at b = 2 the recorded formula b·a^(b-1) replays correctly (by hand: 2·3 = 6, 3·2² = 12)."""
    pytest.importorskip("numpy")
    from autograd import trace
    from autograd.errors import TraceError

    def slope(x: list[Value]) -> Value:
        (d,) = grad(x[0] ** x[1], [x[0]], create_graph=True)
        return d  # type: ignore[return-value]

    with pytest.raises(TraceError, match="chosen by the value of y while tracing"):
        trace(slope, [2.0, 0.0])
    assert trace(slope, [2.0, 2.0]).forward([[3.0, 2.0], [2.0, 3.0]]).tolist() == [6.0, 12.0]
