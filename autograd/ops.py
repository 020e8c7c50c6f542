"""The table of primitive operations: the only place a derivative is written.

Each `Rule` says how to compute an operation and its local derivatives
d(output)/d(input_i). Rules are written against a *math namespace* ``m``
(`FloatMath` for plain floats, `ValueMath` for Values when the backward pass is
itself recorded, numpy in traced replay), so one row serves every interpreter:
eager forward, backward, higher-order gradients, drawing and tracing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

LN2 = math.log(2.0)
LN10 = math.log(10.0)


class Rule:
    """One primitive: ``y = forward(m, *x)`` and ``dy/dx_i = derivative(m, *x, y)[i]``.

    ``arity`` is the number of inputs, or 0 for a variadic rule (``sum``).
    ``domain`` describes the valid inputs; it is quoted in error messages.
    ``formula`` is the same row as text, for people: the forward expression
    first, then one local derivative per input, written with the input names
    of ``forward`` (``a, b`` or ``x``). `help()`, edge labels and the
    walkthrough print this one text.
    """

    __slots__ = ("name", "symbol", "arity", "forward", "derivative", "domain", "formula")

    def __init__(
        self,
        name: str,
        symbol: str,
        arity: int,
        forward: Callable[..., Any],
        derivative: Callable[..., tuple[Any, ...]],
        domain: str = "",
        formula: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.symbol = symbol
        self.arity = arity
        self.forward = forward
        self.derivative = derivative
        self.domain = domain
        self.formula = formula

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the inputs, as ``forward`` calls them (``("a", "b")``, ``("x",)``)."""
        code = self.forward.__code__
        if self.arity == 0:  # variadic: x₁ … xₙ
            return ("x₁", "x₂", "…")
        return code.co_varnames[1 : 1 + self.arity]

    @property
    def expression(self) -> str:
        """The forward computation as text, e.g. ``"a·b"`` (for ``"σ(x) = 1/(1 + e^-x)"``, ``"σ(x)"``)."""
        return self.formula[0].split(" = ")[0] if self.formula else self.name

    def local_derivative(self, i: int) -> str:
        """The local derivative with respect to input ``i`` as text, e.g. ``"∂(a·b)/∂a = b"``."""
        text = self.formula[1 + min(i, len(self.formula) - 2)] if len(self.formula) > 1 else "?"
        name = self.inputs[min(i, len(self.inputs) - 1)] if self.arity else "xᵢ"
        return f"∂({self.expression})/∂{name} = {text}"

    def explain(self) -> str:
        """The whole row as text: what the rule computes and each local derivative."""
        lines = [f"{self.name}: y = {self.formula[0] if self.formula else self.name}"]
        count = self.arity or 1
        lines += [f"  {self.local_derivative(i)}" for i in range(count)]
        if self.domain:
            lines.append(f"  ({self.domain})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self.formula:
            return f"Rule({self.name!r})"
        _, *rest = self.explain().splitlines()
        return f"Rule({self.name!r}: y = {self.formula[0]}; " + "; ".join(line.strip() for line in rest) + ")"

    # A rule is a row of the table, compared by identity (``rule is CONSTANT``):
    # copying a graph, or a model with `copy.deepcopy`, shares its rules.
    def __copy__(self) -> Rule:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Rule:
        return self


class FloatMath:
    """The math namespace for plain Python floats (eager mode)."""

    exp = staticmethod(math.exp)
    log = staticmethod(math.log)
    sqrt = staticmethod(math.sqrt)
    tanh = staticmethod(math.tanh)
    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)
    abs = staticmethod(abs)

    @staticmethod
    def pow(x: float, n: float) -> float:
        # math.pow raises instead of returning a complex number for (-8) ** (1/3).
        return math.pow(x, n)

    @staticmethod
    def sigmoid(x: float) -> float:
        # Two branches so that exp never overflows: 1/(1+e^-x) = e^x/(1+e^x).
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)

    @staticmethod
    def softplus(x: float) -> float:
        # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), stable for large |x|.
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))

    @staticmethod
    def relu(x: float) -> float:
        return x if x > 0.0 else 0.0

    @staticmethod
    def step(x: float) -> float:
        """Heaviside step with step(0) = 0, the derivative of relu (as in PyTorch)."""
        return 1.0 if x > 0.0 else 0.0

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)

    # binary cross-entropy (`BINARY_CROSS_ENTROPY`), in PyTorch's arithmetic.
    @staticmethod
    def bce(p: float, t: float) -> float:
        if not (0.0 <= p <= 1.0 and 0.0 <= t <= 1.0):  # also NaN, which PyTorch refuses too
            raise ValueError("math domain error")
        return (t - 1.0) * FloatMath.floored_log1m(p) - t * FloatMath.floored_log(p)

    @staticmethod
    def bce_slope(p: float, t: float) -> float:
        return (p - t) / max((1.0 - p) * p, BCE_EPSILON)

    @staticmethod
    def bce_target_slope(p: float) -> float:
        return FloatMath.floored_log1m(p) - FloatMath.floored_log(p)

    @staticmethod
    def floored_log(p: float) -> float:
        """max(log p, -100), with log 0 = -inf floored too."""
        return max(math.log(p), BCE_LOG_FLOOR) if p > 0.0 else BCE_LOG_FLOOR

    @staticmethod
    def floored_log1m(p: float) -> float:
        """max(log(1 - p), -100), computed as log1p(-p) (as PyTorch does) and floored at p = 1."""
        return max(math.log1p(-p), BCE_LOG_FLOOR) if p < 1.0 else BCE_LOG_FLOOR


    # -- the rows added for the breadth of the table (trigonometric, hyperbolic, piecewise) --
    tan = staticmethod(math.tan)
    atan = staticmethod(math.atan)
    atan2 = staticmethod(math.atan2)
    hypot = staticmethod(math.hypot)

    @staticmethod
    def sinh(x: float) -> float:
        try:
            return math.sinh(x)
        except OverflowError:  # IEEE (and PyTorch) give ±inf
            return math.copysign(math.inf, x)

    @staticmethod
    def cosh(x: float) -> float:
        try:
            return math.cosh(x)
        except OverflowError:
            return math.inf

    @staticmethod
    def expm1(x: float) -> float:
        try:
            return math.expm1(x)
        except OverflowError:
            return math.inf

    asin = staticmethod(math.asin)
    acos = staticmethod(math.acos)
    log1p = staticmethod(math.log1p)
    log2 = staticmethod(math.log2)
    log10 = staticmethod(math.log10)

    @staticmethod
    def maximum(a: float, b: float) -> float:
        """The larger of a and b; NaN if either is NaN (as torch.maximum)."""
        if a != a or b != b:
            return math.nan
        return a if a >= b else b

    @staticmethod
    def minimum(a: float, b: float) -> float:
        """The smaller of a and b; NaN if either is NaN (as torch.minimum)."""
        if a != a or b != b:
            return math.nan
        return a if a <= b else b

    @staticmethod
    def tie_step(d: float) -> float:
        """1 for d > 0, 0 for d < 0, ½ at d = 0 (and 1 for NaN): how PyTorch splits the
        gradient of maximum/minimum between a and b, evenly at a tie."""
        return 0.0 if d < 0.0 else (0.5 if d == 0.0 else 1.0)

    @staticmethod
    def reciprocal_or_zero(r: float) -> float:
        """1/r, and 0 where r = 0 (atan2's slopes at the origin, as PyTorch)."""
        return 0.0 if r == 0.0 else 1.0 / r

    @staticmethod
    def clamp(x: float, lo: float, hi: float) -> float:
        return x if x != x else min(max(x, lo), hi)

    @staticmethod
    def inside(x: float, lo: float, hi: float) -> float:
        """1 for lo <= x <= hi, else 0 (NaN too): the slope of clamp, as PyTorch."""
        return 1.0 if lo <= x <= hi else 0.0

class ValueMath:
    """The math namespace for Values: derivatives built from it are recorded.

    Used by ``grad(..., create_graph=True)``. Piecewise-constant derivatives
    (step, sign) return plain floats: their own derivative is zero.
    """

    @staticmethod
    def exp(x: Any) -> Any:
        return x.exp()

    @staticmethod
    def log(x: Any) -> Any:
        return x.log()

    @staticmethod
    def sqrt(x: Any) -> Any:
        return x.sqrt()

    @staticmethod
    def tanh(x: Any) -> Any:
        return x.tanh()

    @staticmethod
    def sin(x: Any) -> Any:
        return x.sin()

    @staticmethod
    def cos(x: Any) -> Any:
        return x.cos()

    @staticmethod
    def abs(x: Any) -> Any:
        return abs(x)

    @staticmethod
    def pow(x: Any, n: Any) -> Any:
        return x**n

    @staticmethod
    def sigmoid(x: Any) -> Any:
        return x.sigmoid()

    @staticmethod
    def softplus(x: Any) -> Any:
        return x.softplus()

    @staticmethod
    def relu(x: Any) -> Any:
        return x.relu()

    @staticmethod
    def step(x: Any) -> float:
        return FloatMath.step(x.data)

    @staticmethod
    def sign(x: Any) -> float:
        return FloatMath.sign(x.data)

    # The slopes of binary cross-entropy are rows of their own, so a derivative
    # taken with create_graph=True is the same number as in eager mode.
    @staticmethod
    def bce_slope(p: Any, t: Any) -> Any:
        from .value import apply

        return apply(BCE_SLOPE, (p, t))

    @staticmethod
    def bce_target_slope(p: Any) -> Any:
        from .value import apply

        return apply(BCE_TARGET_SLOPE, (p,))


    # -- the rows added for the breadth of the table --
    @staticmethod
    def tan(x: Any) -> Any:
        return x.tan()

    @staticmethod
    def sinh(x: Any) -> Any:
        return x.sinh()

    @staticmethod
    def cosh(x: Any) -> Any:
        return x.cosh()

    @staticmethod
    def asin(x: Any) -> Any:
        return x.asin()

    @staticmethod
    def acos(x: Any) -> Any:
        return x.acos()

    @staticmethod
    def atan(x: Any) -> Any:
        return x.atan()

    @staticmethod
    def log1p(x: Any) -> Any:
        return x.log1p()

    @staticmethod
    def expm1(x: Any) -> Any:
        return x.expm1()

    @staticmethod
    def log2(x: Any) -> Any:
        return x.log2()

    @staticmethod
    def log10(x: Any) -> Any:
        return x.log10()

    @staticmethod
    def atan2(a: Any, b: Any) -> Any:
        from .value import apply

        return apply(ATAN2, (a, b))

    @staticmethod
    def hypot(a: Any, b: Any) -> Any:
        from .value import apply

        return apply(HYPOT, (a, b))

    @staticmethod
    def maximum(a: Any, b: Any) -> Any:
        from .value import apply

        return apply(MAXIMUM, (a, b))

    @staticmethod
    def minimum(a: Any, b: Any) -> Any:
        from .value import apply

        return apply(MINIMUM, (a, b))

    @staticmethod
    def clamp(x: Any, lo: float, hi: float) -> Any:
        return x.clamp(lo, hi)

    # Piecewise-constant slopes: their own derivative is zero, so a number will do.
    @staticmethod
    def tie_step(d: Any) -> float:
        return FloatMath.tie_step(d.data)

    @staticmethod
    def inside(x: Any, lo: float, hi: float) -> float:
        return FloatMath.inside(x.data, lo, hi)

    @staticmethod
    def reciprocal_or_zero(r: Any) -> Any:
        return 0.0 if r.data == 0.0 else 1.0 / r

# fmt: off
# name              symbol  arity  forward                          d/d(inputs), given inputs and output y
ADD      = Rule("add",      "+",   2, lambda m, a, b: a + b,         lambda m, a, b, y: (1.0, 1.0),
                formula=("a + b", "1", "1"))
SUB      = Rule("sub",      "-",   2, lambda m, a, b: a - b,         lambda m, a, b, y: (1.0, -1.0),
                formula=("a - b", "1", "-1"))
MUL      = Rule("mul",      "*",   2, lambda m, a, b: a * b,         lambda m, a, b, y: (b, a),
                formula=("a·b", "b", "a"))
DIV      = Rule("div",      "/",   2, lambda m, a, b: a / b,         lambda m, a, b, y: (1.0 / b, -y / b),
                domain="the divisor must not be zero",
                formula=("a / b", "1/b", "-a/b²"))
POW      = Rule("pow",      "**",  2, lambda m, a, b: m.pow(a, b),
                lambda m, a, b, y: (b * m.pow(a, b - 1.0), y * m.log(a)),
                domain="with a Value exponent the base must be positive",
                formula=("a^b", "b·a^(b-1)", "a^b·log(a)"))
NEG      = Rule("neg",      "-",   1, lambda m, x: -x,               lambda m, x, y: (-1.0,),
                formula=("-x", "-1"))
ABS      = Rule("abs",      "abs", 1, lambda m, x: m.abs(x),         lambda m, x, y: (m.sign(x),),
                formula=("|x|", "sign(x) (1 for x > 0, -1 for x < 0, 0 at 0)"))
EXP      = Rule("exp",      "exp", 1, lambda m, x: m.exp(x),         lambda m, x, y: (y,),
                formula=("e^x", "e^x"))
LOG      = Rule("log",      "log", 1, lambda m, x: m.log(x),         lambda m, x, y: (1.0 / x,),
                domain="log is defined for x > 0",
                formula=("log(x)", "1/x"))
SQRT     = Rule("sqrt",     "√",   1, lambda m, x: m.sqrt(x),        lambda m, x, y: (0.5 / y,),
                domain="sqrt is defined for x >= 0 (its derivative for x > 0)",
                formula=("√x", "1/(2·√x)"))
TANH     = Rule("tanh",     "tanh", 1, lambda m, x: m.tanh(x),       lambda m, x, y: (1.0 - y * y,),
                formula=("tanh(x)", "1 - tanh(x)²"))
SIGMOID  = Rule("sigmoid",  "σ",   1, lambda m, x: m.sigmoid(x),     lambda m, x, y: (y * (1.0 - y),),
                formula=("σ(x) = 1/(1 + e^-x)", "σ(x)·(1 - σ(x))"))
RELU     = Rule("relu",     "relu", 1, lambda m, x: m.relu(x),       lambda m, x, y: (m.step(x),),
                formula=("max(x, 0)", "1 if x > 0, else 0"))
SOFTPLUS = Rule("softplus", "softplus", 1, lambda m, x: m.softplus(x), lambda m, x, y: (m.sigmoid(x),),
                formula=("log(1 + e^x)", "σ(x) = 1/(1 + e^-x)"))
SIN      = Rule("sin",      "sin", 1, lambda m, x: m.sin(x),         lambda m, x, y: (m.cos(x),),
                formula=("sin(x)", "cos(x)"))
COS      = Rule("cos",      "cos", 1, lambda m, x: m.cos(x),         lambda m, x, y: (-m.sin(x),),
                formula=("cos(x)", "-sin(x)"))
SUM      = Rule("sum",      "Σ",   0, lambda m, *xs: sum(xs[1:], xs[0]), lambda m, *xs: (1.0,) * (len(xs) - 1),
                formula=("x₁ + x₂ + …", "1"))
# fmt: on

# The breadth of the table: more elementary functions, and piecewise rows (max, min,
# clamp) so that code built from them stays traceable (no Python branch on .data).
# fmt: off
TAN      = Rule("tan",      "tan", 1, lambda m, x: m.tan(x),         lambda m, x, y: (1.0 + y * y,),
                formula=("tan(x)", "1 + tan(x)²"))
SINH     = Rule("sinh",     "sinh", 1, lambda m, x: m.sinh(x),       lambda m, x, y: (m.cosh(x),),
                formula=("sinh(x)", "cosh(x)"))
COSH     = Rule("cosh",     "cosh", 1, lambda m, x: m.cosh(x),       lambda m, x, y: (m.sinh(x),),
                formula=("cosh(x)", "sinh(x)"))
ASIN     = Rule("asin",     "asin", 1, lambda m, x: m.asin(x),       lambda m, x, y: (1.0 / m.sqrt(1.0 - x * x),),
                domain="asin is defined for -1 <= x <= 1 (its derivative for -1 < x < 1)",
                formula=("asin(x)", "1/√(1 - x²)"))
ACOS     = Rule("acos",     "acos", 1, lambda m, x: m.acos(x),       lambda m, x, y: (-1.0 / m.sqrt(1.0 - x * x),),
                domain="acos is defined for -1 <= x <= 1 (its derivative for -1 < x < 1)",
                formula=("acos(x)", "-1/√(1 - x²)"))
ATAN     = Rule("atan",     "atan", 1, lambda m, x: m.atan(x),       lambda m, x, y: (1.0 / (1.0 + x * x),),
                formula=("atan(x)", "1/(1 + x²)"))
LOG1P    = Rule("log1p",    "log1p", 1, lambda m, x: m.log1p(x),     lambda m, x, y: (1.0 / (1.0 + x),),
                domain="log1p is defined for x > -1",
                formula=("log(1 + x)", "1/(1 + x)"))
EXPM1    = Rule("expm1",    "expm1", 1, lambda m, x: m.expm1(x),     lambda m, x, y: (y + 1.0,),
                formula=("e^x - 1", "e^x"))
LOG2     = Rule("log2",     "log₂", 1, lambda m, x: m.log2(x),       lambda m, x, y: (1.0 / (x * LN2),),
                domain="log2 is defined for x > 0",
                formula=("log₂(x)", "1/(x·ln 2)"))
LOG10    = Rule("log10",    "log₁₀", 1, lambda m, x: m.log10(x),     lambda m, x, y: (1.0 / (x * LN10),),
                domain="log10 is defined for x > 0",
                formula=("log₁₀(x)", "1/(x·ln 10)"))
ATAN2    = Rule("atan2",    "atan2", 2, lambda m, a, b: m.atan2(a, b),
                lambda m, a, b, y: (b * m.reciprocal_or_zero(a * a + b * b), -a * m.reciprocal_or_zero(a * a + b * b)),
                formula=("atan2(a, b)", "b/(a² + b²) (0 at a = b = 0)", "-a/(a² + b²) (0 at a = b = 0)"))
HYPOT    = Rule("hypot",    "hypot", 2, lambda m, a, b: m.hypot(a, b), lambda m, a, b, y: (a / y, b / y),
                domain="the derivative of hypot needs (a, b) != (0, 0)",
                formula=("√(a² + b²)", "a/√(a² + b²)", "b/√(a² + b²)"))
MAXIMUM  = Rule("maximum",  "max", 2, lambda m, a, b: m.maximum(a, b),
                lambda m, a, b, y: (m.tie_step(a - b), m.tie_step(b - a)),
                formula=("max(a, b)", "1 if a > b, 0 if a < b, ½ at a tie", "1 if b > a, 0 if b < a, ½ at a tie"))
MINIMUM  = Rule("minimum",  "min", 2, lambda m, a, b: m.minimum(a, b),
                lambda m, a, b, y: (m.tie_step(b - a), m.tie_step(a - b)),
                formula=("min(a, b)", "1 if a < b, 0 if a > b, ½ at a tie", "1 if b < a, 0 if b > a, ½ at a tie"))
# fmt: on


@lru_cache(maxsize=256)
def power(n: float) -> Rule:
    """``x ** n`` for a constant number n: d/dx = n·x^(n-1)."""
    return Rule(
        f"pow{n:g}",
        f"**{n:g}",
        1,
        lambda m, x: m.pow(x, n),
        lambda m, x, y: (n * m.pow(x, n - 1.0),),
        domain=f"x ** {n:g} needs x != 0 for a negative power, x >= 0 for a fractional one",
        formula=(f"x^{n:g}", f"{n:g}·x^{n - 1:g}"),
    )


@lru_cache(maxsize=64)
def leaky_relu(slope: float) -> Rule:
    """``max(x, slope·x)``: d/dx = 1 for x > 0, slope otherwise."""
    return Rule(
        f"leaky_relu{slope:g}",
        "lrelu",
        1,
        lambda m, x: m.relu(x) - slope * m.relu(-x),
        lambda m, x, y: (slope + (1.0 - slope) * m.step(x),),
        formula=(f"max(x, {slope:g}·x)", f"1 if x > 0, else {slope:g}"),
    )


@lru_cache(maxsize=64)
def clamp(lo: float, hi: float) -> Rule:
    """``min(max(x, lo), hi)``: d/dx = 1 for lo <= x <= hi (bounds included, as PyTorch), else 0."""
    return Rule(
        f"clamp[{lo:g},{hi:g}]",
        "clamp",
        1,
        lambda m, x: m.clamp(x, lo, hi),
        lambda m, x, y: (m.inside(x, lo, hi),),
        formula=(f"min(max(x, {lo:g}), {hi:g})", f"1 if {lo:g} ≤ x ≤ {hi:g}, else 0"),
    )


BINARY_RULES: tuple[Rule, ...] = (ADD, SUB, MUL, DIV, POW, ATAN2, HYPOT, MAXIMUM, MINIMUM)
UNARY_RULES: tuple[Rule, ...] = (
    NEG, ABS, EXP, LOG, SQRT, TANH, SIGMOID, RELU, SOFTPLUS, SIN, COS,
    TAN, SINH, COSH, ASIN, ACOS, ATAN, LOG1P, EXPM1, LOG2, LOG10,
)


# -- binary cross-entropy, exactly as torch.nn.functional.binary_cross_entropy ----------
# PyTorch floors each logarithm at -100, so a saturated probability (p = 0 or 1) gives a
# finite loss, and divides its gradient by max(p·(1 - p), ε) with ε the float32 constant
# 1e-12 (9.999999960041972e-13 as a double), so the gradient stays finite: about ±1e12
# where p(1 - p) is below ε, and 0 at p = t = 0 or 1. That gradient is PyTorch's choice,
# not the derivative of the floored loss (which would be 0 wherever a floor is active):
# with it, a sigmoid saturated on the wrong side still gets pushed back.
BCE_LOG_FLOOR = -100.0
BCE_EPSILON = 9.999999960041972e-13

# fmt: off
BINARY_CROSS_ENTROPY = Rule(
    "binary_cross_entropy", "bce", 2,
    lambda m, p, t: m.bce(p, t),
    lambda m, p, t, y: (m.bce_slope(p, t), m.bce_target_slope(p)),
    domain="binary cross-entropy needs a probability 0 <= p <= 1 and a target 0 <= t <= 1",
    formula=("-(t·max(log p, -100) + (1 - t)·max(log(1 - p), -100))",
             "(p - t) / max(p·(1 - p), 1e-12)",
             "max(log(1 - p), -100) - max(log p, -100)"))
# ∂E/∂p as a row: its derivatives are those of (p - t)/d with d = max(p·(1 - p), ε),
# written with step and relu so that one formula serves floats, Values and arrays:
# d = ε + relu(p·(1 - p) - ε), and ∂d/∂p = (1 - 2p) where p·(1 - p) > ε, else 0.
BCE_SLOPE = Rule(
    "bce_slope", "∂bce/∂p", 2,
    lambda m, p, t: m.bce_slope(p, t),
    lambda m, p, t, y: (
        (1.0 - y * (1.0 - 2.0 * p) * m.step(p * (1.0 - p) - BCE_EPSILON))
        / (BCE_EPSILON + m.relu(p * (1.0 - p) - BCE_EPSILON)),
        -1.0 / (BCE_EPSILON + m.relu(p * (1.0 - p) - BCE_EPSILON)),
    ),
    formula=("(p - t) / max(p·(1 - p), 1e-12)",
             "(p² - 2pt + t) / (p·(1 - p))² where p·(1 - p) > 1e-12, else 1e12",
             "-1 / max(p·(1 - p), 1e-12)"))
# ∂E/∂t as a row; its derivative is PyTorch's, -1/(p·(1 - p)) (a pole at p = 0 and 1).
BCE_TARGET_SLOPE = Rule(
    "bce_target_slope", "∂bce/∂t", 1,
    lambda m, p: m.bce_target_slope(p),
    lambda m, p, y: (-1.0 / (p * (1.0 - p)),),
    domain="its derivative -1/(p·(1 - p)) needs 0 < p < 1",
    formula=("max(log(1 - p), -100) - max(log p, -100)", "-1 / (p·(1 - p))"))
# fmt: on

#: The rows that make `nn.losses.binary_cross_entropy`.
LOSS_RULES: tuple[Rule, ...] = (BINARY_CROSS_ENTROPY, BCE_SLOPE, BCE_TARGET_SLOPE)
