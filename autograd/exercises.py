"""Derive it yourself: check a hand-derived local derivative against the engine.

`check_derivative(op, candidate)` evaluates a learner's derivative (a plain function
on floats) at random points and at the edge points where the usual mistakes show,
and compares it with the engine's gradient of the same op (which reads the rule
table of `autograd.ops`). The report says, point by point,
"OK at x = …" or "WRONG at x = …: expected …, yours …".
"""

from __future__ import annotations

import html
import inspect
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from . import ops
from .errors import AutogradError, InvalidArgumentError, InvalidTypeError
from .functional import grad
from .ops import Rule
from .value import CONSTANT, Value, apply

Point = tuple[float, ...]
Op = Union[str, Rule, Callable[..., Value]]

#: Placeholders an exercise cell may hold before the learner fills it in.
PLACEHOLDERS = (None, Ellipsis)


@dataclass(frozen=True)
class PointResult:
    """One point of a check: the inputs, the engine's partials, the candidate's, the verdict."""

    inputs: Point
    expected: Point
    yours: Point | None  # None when the candidate raised or returned something unusable
    ok: bool
    line: str  # "OK at x = 0" / "WRONG at x = 0: expected 0.25, yours 0"


@dataclass(frozen=True)
class DerivativeReport:
    """What `check_derivative` found; prints as one line per point (HTML in Jupyter)."""

    title: str
    done: bool
    results: tuple[PointResult, ...] = ()
    skipped: tuple[str, ...] = ()  # points outside the domain of a function of Values
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the candidate is filled in and right at every point."""
        return self.done and bool(self.results) and all(r.ok for r in self.results)

    @property
    def wrong(self) -> list[PointResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        if not self.done:
            return "Not done yet: replace the placeholder with your derivative."
        if self.ok:
            return f"All {_count(len(self.results))} OK."
        return f"{len(self.wrong)} of {_count(len(self.results))} WRONG."

    def lines(self) -> list[str]:
        if not self.done:
            return [f"{self.title}: not done yet (replace the placeholder with your derivative)"]
        body = [f"  {r.line}" for r in self.results]
        body += [f"  skipped {s}" for s in self.skipped]
        body += [f"  note: {n}" for n in self.notes]
        return [self.title, *body, self.summary()]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colours = {"OK": "#1a7f37", "WRONG": "#cf222e"}
        rows = []
        for line in self.lines():
            word = line.strip().split(" ", 1)[0]
            colour = colours.get(word, "inherit")
            bold = "font-weight:bold;" if word == "WRONG" or line is self.lines()[-1] else ""
            rows.append(f'<div style="color:{colour};{bold}">{html.escape(line)}</div>')
        return '<div style="font-family:monospace;white-space:pre">' + "".join(rows) + "</div>"


@dataclass(frozen=True)
class _Exercise:
    """An op made checkable: its input names, how to compute the expected partials, and its points."""

    name: str
    inputs: tuple[str, ...]
    expected: Callable[[Point], Point]  # the engine's gradient at a point
    sample: Callable[[random.Random], Point]  # one random point inside the domain
    edges: tuple[Point, ...]  # the points that catch the usual mistakes
    kink_note: str = ""  # said at x = 0 for relu, leaky_relu, abs


def check_derivative(
    op: Op,
    candidate: Callable[..., Any] | None,
    *,
    points: Sequence[float | Sequence[float]] | None = None,
    samples: int = 4,
    seed: int = 0,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> DerivativeReport:
    """Compare ``candidate`` with the engine's derivative of ``op``, point by point.

    ``op`` is a rule name of `autograd.ops` (``"sigmoid"``, ``"sub"``, ``"pow3"``,
    ``"leaky_relu0.1"``...), a `Rule`, or a function of Values
    (``lambda x: x * x.sigmoid()``). ``candidate`` is the learner's derivative as a
    function on floats: ``candidate(x) -> dy/dx`` for one input,
    ``candidate(a, b) -> (∂y/∂a, ∂y/∂b)`` for several. ``None`` or ``...`` (or a
    function returning them, or raising NotImplementedError) is reported as not
    done yet.

    A point passes when ``|yours − expected| ≤ atol + rtol·|expected|``. The points are
    the op's edge points (0 for relu/abs, negative bases, both inputs of binary ops)
    and ``samples`` random points from ``random.Random(seed)``; ``points=`` replaces them.

    >>> print(check_derivative("neg", lambda x: -1.0, points=[2.0]))
    check_derivative(neg): your dy/dx at 1 point
      OK at x = 2
    All 1 point OK.
    """
    exercise = _exercise(op)
    if not (candidate in PLACEHOLDERS or callable(candidate)):
        raise InvalidTypeError(
            f"check_derivative: candidate must be a function of {', '.join(exercise.inputs)} "
            f"(or None while not done), got {type(candidate).__name__} {candidate!r}"
        )
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise InvalidArgumentError(f"check_derivative: samples must be an int >= 0, got {samples!r}")
    chosen = _points(exercise, points, samples, seed)
    partials = [f"∂y/∂{name}" for name in exercise.inputs]
    what = f"dy/d{exercise.inputs[0]}" if len(partials) == 1 else f"({', '.join(partials)})"
    if candidate in PLACEHOLDERS:
        return DerivativeReport(title=f"check_derivative({exercise.name})", done=False)

    results: list[PointResult] = []
    skipped: list[str] = []
    for point in chosen:
        try:
            expected = exercise.expected(point)
        except AutogradError as exc:  # outside the domain of a function of Values
            skipped.append(f"{_at(exercise.inputs, point)}: {type(exc).__name__}: {exc}")
            continue
        outcome = _judge(exercise, candidate, point, expected, rtol, atol)  # type: ignore[arg-type]
        if outcome is None:
            return DerivativeReport(title=f"check_derivative({exercise.name})", done=False)
        results.append(outcome)
    title = f"check_derivative({exercise.name}): your {what} at {_count(len(results))}"
    notes = (exercise.kink_note,) if exercise.kink_note and any(r.inputs == (0.0,) for r in results) else ()
    return DerivativeReport(title=title, done=True, results=tuple(results), skipped=tuple(skipped), notes=notes)


# -- judging one point --------------------------------------------------------------


def _judge(
    exercise: _Exercise, candidate: Callable[..., Any], point: Point, expected: Point, rtol: float, atol: float
) -> PointResult | None:
    """The verdict at one point, or None when the candidate turns out to be a placeholder."""
    at = _at(exercise.inputs, point)
    try:
        answer = candidate(*point)
    except NotImplementedError:
        return None
    except Exception as exc:  # a learner's function may raise anything; say what it raised
        return PointResult(point, expected, None, False, f"WRONG at {at}: yours raised {type(exc).__name__}: {exc}")
    if answer in PLACEHOLDERS:
        return None
    yours = _as_partials(answer)
    n = len(exercise.inputs)
    if yours is None or len(yours) != n:
        wanted = "a number" if n == 1 else f"{n} numbers (" + ", ".join(f"∂y/∂{x}" for x in exercise.inputs) + ")"
        return PointResult(point, expected, None, False, f"WRONG at {at}: yours returned {answer!r}, expected {wanted}")
    bad = [i for i in range(n) if not _close(yours[i], expected[i], rtol, atol)]
    if not bad:
        return PointResult(point, expected, yours, True, f"OK at {at}")
    if n == 1:
        detail = f"expected {_number(expected[0])}, yours {_number(yours[0])}"
    else:
        detail = "; ".join(
            f"∂y/∂{exercise.inputs[i]} expected {_number(expected[i])}, yours {_number(yours[i])}" for i in bad
        )
    return PointResult(point, expected, yours, False, f"WRONG at {at}: {detail}")


def _as_partials(answer: object) -> Point | None:
    """The candidate's answer as a tuple of floats (a number, a Value, or a sequence of them)."""
    items = answer if isinstance(answer, (tuple, list)) else (answer,)
    partials = []
    for item in items:
        if isinstance(item, Value):
            item = item.data
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            return None
        partials.append(float(item))
    return tuple(partials)


def _count(n: int) -> str:
    return f"{n} point" if n == 1 else f"{n} points"


def _close(yours: float, expected: float, rtol: float, atol: float) -> bool:
    return abs(yours - expected) <= atol + rtol * abs(expected)  # False for a NaN answer


def _number(x: float) -> str:
    return f"{x + 0.0:.6g}"  # + 0.0 shows -0.0 as 0


def _at(names: tuple[str, ...], point: Point) -> str:
    return ", ".join(f"{name} = {_number(x)}" for name, x in zip(names, point))


# -- the ops: domains and edge points -----------------------------------------------


def _uniform(low: float, high: float) -> Callable[[random.Random], float]:
    # Two decimals: a point a learner can also work out by hand.
    return lambda rng: round(rng.uniform(low, high), 2)


def _nonzero(low: float, high: float) -> Callable[[random.Random], float]:
    return lambda rng: round(rng.choice((-1.0, 1.0)) * rng.uniform(low, high), 2)


ANY = _uniform(-3.0, 3.0)
POSITIVE = _uniform(0.2, 3.0)
NONZERO = _nonzero(0.3, 3.0)

# name: (random point per input, edge points). The edges are where the classic
# mistakes show: the kink at 0 and negative x (relu, abs), x = 0 where σ and tanh
# are not x (σ′(0) = 1/4, not 0 or 1/2), both inputs of binary ops at points where
# they differ in sign and size (a − b's ∂/∂b = −1, a/b's ∂/∂b = −a/b², a·b's partials
# swapped), small and large positive x for log and sqrt.
_TABLE: dict[str, tuple[tuple[Callable[[random.Random], float], ...], tuple[Point, ...]]] = {
    "add": ((ANY, ANY), ((3.0, 1.0), (-1.0, 2.0))),
    "sub": ((ANY, ANY), ((3.0, 1.0), (-1.0, 2.0), (0.5, -4.0))),
    "mul": ((ANY, ANY), ((3.0, 1.0), (-1.0, 2.0), (0.5, -4.0))),
    "div": ((ANY, NONZERO), ((1.0, 2.0), (3.0, -0.5), (-2.0, 4.0))),
    "pow": ((POSITIVE, ANY), ((2.0, 3.0), (0.5, -2.0), (3.0, 0.5))),
    "neg": ((ANY,), ((0.0,), (2.0,))),
    "abs": ((ANY,), ((0.0,), (-1.5,), (2.0,))),
    "exp": ((ANY,), ((0.0,), (-1.0,), (2.0,))),
    "log": ((POSITIVE,), ((0.5,), (2.0,))),
    "sqrt": ((POSITIVE,), ((0.25,), (4.0,))),
    "tanh": ((ANY,), ((0.0,), (1.0,), (-2.0,))),
    "sigmoid": ((ANY,), ((0.0,), (2.0,), (-3.0,))),
    "relu": ((ANY,), ((0.0,), (-1.5,), (2.0,))),
    "softplus": ((ANY,), ((0.0,), (-2.0,), (3.0,))),
    "sin": ((ANY,), ((0.0,), (2.0,))),
    "cos": ((ANY,), ((0.0,), (2.0,))),
    "sum": ((ANY, ANY, ANY), ((1.0, -2.0, 3.0),)),
    "tan": ((_uniform(-1.2, 1.2),), ((0.0,), (1.0,), (-0.5,))),
    "sinh": ((ANY,), ((0.0,), (1.0,), (-2.0,))),
    "cosh": ((ANY,), ((0.0,), (1.0,), (-2.0,))),
    "asin": ((_uniform(-0.9, 0.9),), ((0.0,), (0.5,), (-0.8,))),
    "acos": ((_uniform(-0.9, 0.9),), ((0.0,), (0.5,), (-0.8,))),
    "atan": ((ANY,), ((0.0,), (1.0,), (-2.0,))),
    "log1p": ((_uniform(-0.9, 3.0),), ((0.0,), (-0.5,), (2.0,))),
    "expm1": ((ANY,), ((0.0,), (1.0,), (-2.0,))),
    "log2": ((POSITIVE,), ((0.5,), (4.0,))),
    "log10": ((POSITIVE,), ((0.5,), (10.0,))),
    "atan2": ((ANY, NONZERO), ((1.0, 2.0), (-1.0, -0.5), (2.0, -3.0))),
    "hypot": ((NONZERO, NONZERO), ((3.0, 4.0), (-1.0, 2.0))),
    "maximum": ((ANY, ANY), ((3.0, 1.0), (-1.0, 2.0), (1.0, 1.0))),
    "minimum": ((ANY, ANY), ((3.0, 1.0), (-1.0, 2.0), (1.0, 1.0))),
}

_KINKS = {
    "relu": "at the kink x = 0 relu has no derivative; this checks PyTorch's convention, relu′(0) = 0",
    "abs": "at the kink x = 0 |x| has no derivative; this checks PyTorch's convention, abs′(0) = sign(0) = 0",
    "maximum": "at a tie a = b max has no derivative; this checks PyTorch's convention, ½ to each input",
    "minimum": "at a tie a = b min has no derivative; this checks PyTorch's convention, ½ to each input",
}


def _known_names() -> list[str]:
    return [rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)] + [
        "leaky_relu",
        "leaky_relu<slope> (e.g. leaky_relu0.1)",
        "pow<n> (x ** n for a number n, e.g. pow3, pow-1, pow0.5)",
    ]


def _rule_named(name: str) -> Rule:
    for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM):
        if rule.name == name:
            return rule
    number = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"
    if name == "leaky_relu":
        return ops.leaky_relu(0.01)  # Value.leaky_relu's default slope
    if match := re.fullmatch(f"leaky_relu{number}", name):
        return ops.leaky_relu(float(match.group(1)))
    if match := re.fullmatch(f"pow{number}", name):
        return ops.power(float(match.group(1)))
    raise InvalidArgumentError(f"check_derivative: unknown op {name!r}; known: {', '.join(_known_names())}")


def _exercise(op: object) -> _Exercise:
    if isinstance(op, str):
        return _rule_exercise(_rule_named(op))
    if isinstance(op, Rule):
        return _rule_exercise(op)
    if callable(op):
        return _function_exercise(op)
    raise InvalidTypeError(
        f"check_derivative: op must be a rule name, a Rule or a function of Values, got {type(op).__name__} {op!r}"
    )


def _rule_exercise(rule: Rule) -> _Exercise:
    """A row of the rule table; expected = the engine's gradient of one node of that rule."""

    def expected(point: Point) -> Point:
        inputs = [Value(x) for x in point]
        return tuple(float(g) for g in grad(apply(rule, tuple(inputs)), inputs))

    if rule.name in _TABLE:
        samplers, edges = _TABLE[rule.name]
        kink = _KINKS.get(rule.name, "")
    elif rule.name.startswith("leaky_relu"):
        slope = rule.derivative(ops.FloatMath, -1.0, 0.0)[0]
        samplers, edges = (ANY,), ((0.0,), (-1.5,), (2.0,))
        kink = (
            "at the kink x = 0 leaky_relu has no derivative; this checks PyTorch's convention, "
            f"leaky_relu′(0) = the slope {slope:g}"
        )
    elif rule.name.startswith("pow") and rule.arity == 1:
        samplers, edges, kink = (*_power_points(rule), "")
    elif rule is CONSTANT:
        raise InvalidArgumentError("check_derivative: a constant has no inputs to differentiate")
    else:  # a rule added to the table without points here: generic points, domain errors skipped
        count = rule.arity or 3
        samplers, edges, kink = (ANY,) * count, _generic_edges(count), ""
    inputs = ("x₁", "x₂", "x₃") if rule.arity == 0 else rule.inputs
    return _Exercise(rule.name, inputs, expected, _sampler(samplers), edges, kink)


def _generic_edges(count: int) -> tuple[Point, ...]:
    """0, ±1 and ±2 in every input, and for several inputs one point where they all differ."""
    edges = tuple(tuple(v for _ in range(count)) for v in (0.0, 1.0, -1.0, 2.0, -2.0))
    if count > 1:
        edges += (tuple(float((-1) ** i * (i + 1)) for i in range(count)),)
    return edges


def _power_points(rule: Rule) -> tuple[tuple[Callable[[random.Random], float], ...], tuple[Point, ...]]:
    """x ** n: negative bases where n is an integer (x ** 3 at x = -2), positive x otherwise."""
    n = float(rule.name[len("pow"):])
    if not n.is_integer():
        return (POSITIVE,), ((0.5,), (2.0,))
    if n < 0:
        return (NONZERO,), ((-2.0,), (-0.5,), (1.5,))
    edges: tuple[Point, ...] = ((-2.0,), (-0.5,), (1.5,))
    if n >= 1:  # x ** n for n >= 1 has a derivative at 0 too (n·0^(n-1), 1 for n = 1)
        edges = ((0.0,), *edges)
    return (ANY,), edges


def _function_exercise(function: Callable[..., Value]) -> _Exercise:
    """A function of Values; expected = the engine's gradient of its output."""
    try:
        parameters = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        raise InvalidTypeError(f"check_derivative: cannot read the parameters of {function!r}") from None
    if not parameters:
        raise InvalidArgumentError("check_derivative: op must take at least one Value (e.g. lambda x: x * x)")
    names = tuple(p.name for p in parameters)

    def expected(point: Point) -> Point:
        inputs = [Value(x) for x in point]
        output = function(*inputs)
        if type(output) is not Value:
            raise InvalidTypeError(f"check_derivative: op must return a Value, got {type(output).__name__}")
        return tuple(float(g) for g in grad(output, inputs))

    # Points outside the function's domain are skipped (and listed).
    edges = _generic_edges(len(names))
    label = getattr(function, "__name__", "f")
    return _Exercise("f" if label == "<lambda>" else label, names, expected, _sampler((ANY,) * len(names)), edges)


def _sampler(samplers: tuple[Callable[[random.Random], float], ...]) -> Callable[[random.Random], Point]:
    return lambda rng: tuple(sample(rng) for sample in samplers)


def _points(
    exercise: _Exercise, points: Sequence[float | Sequence[float]] | None, samples: int, seed: int
) -> list[Point]:
    n = len(exercise.inputs)
    if points is None:
        rng = random.Random(seed)
        return [*exercise.edges, *(exercise.sample(rng) for _ in range(samples))]
    chosen = []
    for i, point in enumerate(points):
        values = tuple(point) if isinstance(point, (tuple, list)) else (point,)
        if len(values) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise InvalidArgumentError(
                f"check_derivative: points[{i}] must be {n} number{'s' if n > 1 else ''} "
                f"({', '.join(exercise.inputs)}), got {point!r}"
            )
        if not all(math.isfinite(v) for v in values):
            raise InvalidArgumentError(f"check_derivative: points[{i}] must be finite, got {point!r}")
        chosen.append(tuple(float(v) for v in values))
    return chosen
