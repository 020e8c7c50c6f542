"""One test case per rule of the op table: how to call it on Values, how to call the
same thing in PyTorch (the independent reference), and points to check it at.

Kinked ops list points on both sides of the kink. A rule added to `autograd.ops`
without a case here fails `test_every_rule_has_a_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OpCase:
    rule: str  # name of the rule in autograd.ops (parametric rules by family prefix)
    engine: Callable[..., Any]
    reference: Callable[..., Any]  # the same function written with torch (module passed first)
    points: tuple[tuple[float, ...], ...]
    smooth: bool = True  # has a second derivative everywhere we test

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.engine.__doc__ or ''}".rstrip(":")


def _named(text: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.__doc__ = text
    return fn


CASES: tuple[OpCase, ...] = (
    OpCase("add", _named("a+b", lambda a, b: a + b), lambda t, a, b: a + b, ((1.5, -0.3), (-2.0, 4.0))),
    OpCase("add", _named("a+3", lambda a: a + 3), lambda t, a: a + 3, ((0.7,),)),
    OpCase("add", _named("3+a", lambda a: 3 + a), lambda t, a: 3 + a, ((0.7,),)),
    OpCase("sub", _named("a-b", lambda a, b: a - b), lambda t, a, b: a - b, ((1.5, -0.3), (-2.0, 4.0))),
    OpCase("sub", _named("1-a", lambda a: 1 - a), lambda t, a: 1 - a, ((0.7,),)),
    OpCase("mul", _named("a*b", lambda a, b: a * b), lambda t, a, b: a * b, ((1.5, -0.3), (-2.0, 4.0))),
    OpCase("mul", _named("2*a", lambda a: 2 * a), lambda t, a: 2 * a, ((0.7,),)),
    OpCase("mul", _named("a*a", lambda a: a * a), lambda t, a: a * a, ((-1.3,),)),
    OpCase("div", _named("a/b", lambda a, b: a / b), lambda t, a, b: a / b, ((1.5, -0.3), (-2.0, 4.0))),
    OpCase("div", _named("1/a", lambda a: 1 / a), lambda t, a: 1 / a, ((0.7,), (-2.5,))),
    OpCase("div", _named("a/4", lambda a: a / 4), lambda t, a: a / 4, ((0.7,),)),
    OpCase("pow", _named("a**b", lambda a, b: a**b), lambda t, a, b: a**b, ((1.5, -0.3), (0.4, 2.5))),
    OpCase("pow", _named("2**a", lambda a: 2**a), lambda t, a: 2**a, ((0.7,), (-1.5,))),
    OpCase("pow", _named("a**3", lambda a: a**3), lambda t, a: a**3, ((-1.3,), (0.7,))),
    OpCase("pow", _named("a**-2", lambda a: a**-2), lambda t, a: a**-2, ((-1.3,), (0.7,))),
    OpCase("pow", _named("a**0.5", lambda a: a**0.5), lambda t, a: a**0.5, ((0.3,), (2.0,))),
    OpCase("neg", _named("-a", lambda a: -a), lambda t, a: -a, ((0.7,), (-2.0,))),
    OpCase("abs", _named("abs", lambda a: abs(a)), lambda t, a: t.abs(a), ((-1.5,), (0.7,)), smooth=False),
    OpCase("exp", _named("exp", lambda a: a.exp()), lambda t, a: t.exp(a), ((-1.5,), (0.7,), (3.0,))),
    OpCase("log", _named("log", lambda a: a.log()), lambda t, a: t.log(a), ((0.3,), (2.5,))),
    OpCase("sqrt", _named("sqrt", lambda a: a.sqrt()), lambda t, a: t.sqrt(a), ((0.2,), (4.0,))),
    OpCase("tanh", _named("tanh", lambda a: a.tanh()), lambda t, a: t.tanh(a), ((-2.0,), (0.5,))),
    OpCase("sigmoid", _named("sigmoid", lambda a: a.sigmoid()), lambda t, a: t.sigmoid(a),
           ((-3.0,), (0.0,), (2.0,))),
    OpCase("relu", _named("relu", lambda a: a.relu()), lambda t, a: t.relu(a), ((-1.2,), (0.8,)), smooth=False),
    OpCase("leaky_relu", _named("leaky_relu", lambda a: a.leaky_relu()),
           lambda t, a: t.nn.functional.leaky_relu(a, 0.01), ((-1.2,), (0.8,)), smooth=False),
    OpCase("leaky_relu", _named("leaky_relu(0.2)", lambda a: a.leaky_relu(0.2)),
           lambda t, a: t.nn.functional.leaky_relu(a, 0.2), ((-1.2,), (0.8,)), smooth=False),
    # torch's softplus switches to the identity above x = 20; our points stay below.
    OpCase("softplus", _named("softplus", lambda a: a.softplus()), lambda t, a: t.nn.functional.softplus(a),
           ((-3.0,), (0.5,), (4.0,))),
    OpCase("sin", _named("sin", lambda a: a.sin()), lambda t, a: t.sin(a), ((-2.0,), (0.5,))),
    OpCase("cos", _named("cos", lambda a: a.cos()), lambda t, a: t.cos(a), ((-2.0,), (0.5,))),
    OpCase("tan", _named("tan", lambda a: a.tan()), lambda t, a: t.tan(a), ((-1.2,), (0.5,))),
    OpCase("sinh", _named("sinh", lambda a: a.sinh()), lambda t, a: t.sinh(a), ((-2.0,), (0.5,))),
    OpCase("cosh", _named("cosh", lambda a: a.cosh()), lambda t, a: t.cosh(a), ((-2.0,), (0.5,))),
    OpCase("asin", _named("asin", lambda a: a.asin()), lambda t, a: t.asin(a), ((-0.7,), (0.3,))),
    OpCase("acos", _named("acos", lambda a: a.acos()), lambda t, a: t.acos(a), ((-0.7,), (0.3,))),
    OpCase("atan", _named("atan", lambda a: a.atan()), lambda t, a: t.atan(a), ((-3.0,), (0.5,))),
    OpCase("log1p", _named("log1p", lambda a: a.log1p()), lambda t, a: t.log1p(a), ((-0.5,), (1e-9,), (3.0,))),
    OpCase("expm1", _named("expm1", lambda a: a.expm1()), lambda t, a: t.expm1(a), ((-2.0,), (1e-9,), (1.5,))),
    OpCase("log2", _named("log2", lambda a: a.log2()), lambda t, a: t.log2(a), ((0.3,), (8.0,))),
    OpCase("log10", _named("log10", lambda a: a.log10()), lambda t, a: t.log10(a), ((0.3,), (1000.0,))),
    OpCase("atan2", _named("atan2(a,b)", lambda a, b: _functions().atan2(a, b)), lambda t, a, b: t.atan2(a, b),
           ((1.5, -0.3), (-2.0, 4.0), (0.5, 0.5))),
    OpCase("hypot", _named("hypot(a,b)", lambda a, b: _functions().hypot(a, b)), lambda t, a, b: t.hypot(a, b),
           ((1.5, -0.3), (-2.0, 4.0))),
    OpCase("maximum", _named("maximum(a,b)", lambda a, b: _functions().maximum(a, b)),
           lambda t, a, b: t.maximum(a, b), ((1.5, -0.3), (-2.0, 4.0)), smooth=False),
    OpCase("minimum", _named("minimum(a,b)", lambda a, b: _functions().minimum(a, b)),
           lambda t, a, b: t.minimum(a, b), ((1.5, -0.3), (-2.0, 4.0)), smooth=False),
    OpCase("clamp", _named("clamp(-1,1)", lambda a: a.clamp(-1.0, 1.0)), lambda t, a: t.clamp(a, -1.0, 1.0),
           ((-1.5,), (0.3,), (2.0,)), smooth=False),
    OpCase("sum", _named("sum_values", lambda a, b, c: _sum_values()([a, b, 2.0, c, a])),
           lambda t, a, b, c: a + b + 2.0 + c + a, ((1.5, -0.3, 0.25),)),
)


def _functions() -> Any:
    import autograd.functions

    return autograd.functions


def _sum_values() -> Callable[..., Any]:
    from autograd import sum_values

    return sum_values


def expand(cases: tuple[OpCase, ...] = CASES) -> list[tuple[OpCase, tuple[float, ...]]]:
    """(case, point) pairs for pytest.mark.parametrize."""
    return [(case, point) for case in cases for point in case.points]


def case_id(pair: Any) -> str:
    if isinstance(pair, OpCase):
        return pair.id
    return ",".join(f"{x:g}" for x in pair)
