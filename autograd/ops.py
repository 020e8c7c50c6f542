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
        if self.arity:
            name = self.inputs[min(i, len(self.inputs) - 1)]
        else:  # variadic: the inputs named before the rest (select's index i), then the rest's (xᵢ, v_k)
            code = self.forward.__code__
            named = code.co_varnames[1 : code.co_argcount]
            rest = f"{code.co_varnames[code.co_argcount]}_k" if named else "xᵢ"
            name = named[i] if i < len(named) else rest
        return f"∂({self.expression})/∂{name} = {text}"

    def explain(self) -> str:
        """The whole row as text: what the rule computes and each local derivative."""
        lines = [f"{self.name}: y = {self.formula[0] if self.formula else self.name}"]
        count = self.arity or max(1, len(self.formula) - 1)
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


def _undefined(x: float, what: str) -> float:
    """What a math function gives where it is undefined: NaN for a NaN or infinite input
    (as IEEE 754 and PyTorch: log(-inf), sqrt(-inf), sin(inf)), else a ValueError naming it."""
    if math.isfinite(x):
        raise ValueError(what)
    return math.nan


class FloatMath:
    """The math namespace for plain Python floats (eager mode).

    The numeric policy of the whole engine lives here: a result too large for a
    float is ±inf and a NaN or infinite input gives IEEE's answer, as in PyTorch
    and numpy; only a pole or a point outside the domain, at finite inputs,
    raises: ZeroDivisionError at a pole of a division (0 ** -1), ValueError
    outside the domain (log(-1), (-8) ** (1/3)).
    """

    tanh = staticmethod(math.tanh)
    abs = staticmethod(abs)

    @staticmethod
    def exp(x: float) -> float:
        try:
            return math.exp(x)
        except OverflowError:  # e^x for x > 709.78: IEEE (and PyTorch) give inf
            return math.inf

    @staticmethod
    def log(x: float) -> float:
        try:
            return math.log(x)
        except ValueError:
            return _undefined(x, "log of zero" if x == 0.0 else "log of a negative number")

    @staticmethod
    def sqrt(x: float) -> float:
        try:
            return math.sqrt(x)
        except ValueError:
            return _undefined(x, "square root of a negative number")

    @staticmethod
    def sin(x: float) -> float:
        try:
            return math.sin(x)
        except ValueError:  # only ±inf
            return _undefined(x, "sin of an infinite number")

    @staticmethod
    def cos(x: float) -> float:
        try:
            return math.cos(x)
        except ValueError:  # only ±inf
            return _undefined(x, "cos of an infinite number")

    @staticmethod
    def pow(x: float, n: float) -> float:
        # math.pow raises instead of returning a complex number for (-8) ** (1/3).
        try:
            return math.pow(x, n)
        except OverflowError:  # ±inf: negative only for a negative base to an odd power
            return -math.inf if x < 0.0 and n % 2.0 == 1.0 else math.inf
        except ValueError:
            if x == 0.0:  # 0 ** n for n < 0 is 1/0
                raise ZeroDivisionError("zero to a negative power") from None
            raise ValueError("a negative number to a non-integer power") from None

    @classmethod
    def power_rule(cls, x: float, n: float) -> float:
        """d(xⁿ)/dx = n·xⁿ⁻¹, and 0 for n = 0 (x⁰ = 1 for every x, 0 included), as PyTorch."""
        return 0.0 if n == 0.0 else n * cls.pow(x, n - 1.0)

    @classmethod
    def exponential_rule(cls, a: float, n: float, y: float) -> float:
        """d(aⁿ)/dn = aⁿ·log(a) with y = aⁿ, and 0 at a = 0 for n ≥ 0 (where 0ⁿ is 0 or 1), as PyTorch."""
        return 0.0 if a == 0.0 and n >= 0.0 else y * cls.log(a)

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
        # Written so that NaN stays NaN, as in PyTorch (x > 0 would turn it into 0).
        return 0.0 if x <= 0.0 else x

    @staticmethod
    def step(x: float) -> float:
        """Heaviside step with step(0) = 0, the derivative of relu: 1 unless x <= 0.

        NaN gives 1, as PyTorch's relu backward (it lets the gradient through
        where the output is not <= 0).
        """
        return 0.0 if x <= 0.0 else 1.0

    @staticmethod
    def positive(x: float) -> float:
        """1 for x > 0, else 0 (NaN gives 0): the switch of leaky_relu's derivative, as in PyTorch."""
        return 1.0 if x > 0.0 else 0.0

    @staticmethod
    def sign(x: float) -> float:
        # sign(NaN) is 0 here, as PyTorch's abs backward (sgn) gives.
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
    atan = staticmethod(math.atan)
    atan2 = staticmethod(math.atan2)
    hypot = staticmethod(math.hypot)

    @staticmethod
    def tan(x: float) -> float:
        try:
            return math.tan(x)
        except ValueError:  # only ±inf
            return _undefined(x, "tan of an infinite number")

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

    @staticmethod
    def asin(x: float) -> float:
        try:
            return math.asin(x)
        except ValueError:
            return _undefined(x, "asin of a number outside [-1, 1]")

    @staticmethod
    def acos(x: float) -> float:
        try:
            return math.acos(x)
        except ValueError:
            return _undefined(x, "acos of a number outside [-1, 1]")

    @staticmethod
    def log1p(x: float) -> float:
        try:
            return math.log1p(x)
        except ValueError:
            return _undefined(x, "log1p of a number <= -1")

    @staticmethod
    def log2(x: float) -> float:
        try:
            return math.log2(x)
        except ValueError:
            return _undefined(x, "log2 of a number <= 0")

    @staticmethod
    def log10(x: float) -> float:
        try:
            return math.log10(x)
        except ValueError:
            return _undefined(x, "log10 of a number <= 0")

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

    @staticmethod
    def amax(xs: tuple[float, ...]) -> float:
        """The largest of xs; NaN if any is NaN (as torch.amax)."""
        for x in xs:
            if x != x:
                return math.nan
        return max(xs)

    @staticmethod
    def select(i: float, choices: tuple[float, ...]) -> float:
        """choices[i] for an integer 0 <= i < len(choices) (the row `SELECT`); any other i is outside the domain."""
        if not (0.0 <= i < len(choices) and i == int(i)):  # NaN fails the first test
            raise ValueError(f"select: index {i!r} is not an integer in [0, {len(choices)})")
        return choices[int(i)]


class IEEEMath(FloatMath):
    """`FloatMath` where nothing raises: IEEE 754's answers at poles and outside domains.

    Used only to finish an operation one of whose inputs is already NaN or
    infinite, where the numbers in its formula may meet a pole (the derivative
    of 0 ** x at x = nan is nan·log(0) = nan·-inf), as PyTorch computes them.
    """

    @staticmethod
    def log(x: float) -> float:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)

    @staticmethod
    def sqrt(x: float) -> float:
        return math.sqrt(x) if x >= 0.0 else math.nan

    @staticmethod
    def pow(x: float, n: float) -> float:
        try:
            return FloatMath.pow(x, n)
        except ZeroDivisionError:  # 0 ** n for n < 0
            return math.inf
        except ValueError:  # a negative base to a non-integer power
            return math.nan


class IEEEFloat(float):
    """A float whose division by zero gives ±inf or NaN as IEEE 754 (numpy, PyTorch) do.

    Python's floats raise ZeroDivisionError instead. Used only to finish an
    operation one of whose inputs is already NaN or infinite (``nan / 0`` is
    nan, ``inf / 0`` is inf), so that such values propagate as in PyTorch.
    """

    def __truediv__(self, other: float) -> float:  # type: ignore[override]
        return _ieee_divide(float(self), float(other))

    def __rtruediv__(self, other: float) -> float:  # type: ignore[override]
        return _ieee_divide(float(other), float(self))


def _ieee_divide(a: float, b: float) -> float:
    if b != 0.0:
        return a / b
    if a == 0.0 or a != a:  # 0/0 and nan/0
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


class ValueMath:
    """The math namespace for Values: derivatives built from it are recorded.

    Used by ``grad(..., create_graph=True)``. Piecewise-constant derivatives
    (step, positive, sign) are nodes too, of the rows `STEP`, `POSITIVE` and
    `SIGN`, whose own derivative is zero: a number read from ``.data`` here would
    be frozen by `trace`. The special points of the pow rules (0 where PyTorch's
    derivative is 0 by convention) are plain floats; elsewhere their derivative
    is the recorded formula.
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
    def power_rule(x: Any, n: Any) -> Any:
        if _number(n) == 0.0:
            _check_not_tracing(n, "x ** y at y = 0")
            return 0.0
        return n * x ** (n - 1.0)

    @staticmethod
    def exponential_rule(a: Any, n: Any, y: Any) -> Any:
        if _number(a) == 0.0 and _number(n) >= 0.0:
            _check_not_tracing(n, "0 ** y")
            return 0.0
        if not isinstance(a, float):
            return y * a.log()
        if math.isfinite(_number(n)):
            return y * FloatMath.log(a)  # a constant base: log(a) raises for a < 0
        # n is NaN or ±inf: IEEE's log(0) = -inf or log(a < 0) = nan, as in `IEEEMath`
        return y * _ieee_constant(IEEEMath.log(a))

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
    def step(x: Any) -> Any:
        from .value import apply

        return apply(STEP, (x,))

    @staticmethod
    def positive(x: Any) -> Any:
        from .value import apply

        return apply(POSITIVE, (x,))

    @staticmethod
    def sign(x: Any) -> Any:
        from .value import apply

        return apply(SIGN, (x,))

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

    @staticmethod
    def tie_step(d: Any) -> Any:
        from .value import apply

        return apply(TIE_STEP, (d,))

    @staticmethod
    def inside(x: Any, lo: float, hi: float) -> Any:
        from .value import apply

        return apply(inside(lo, hi), (x,))

    @staticmethod
    def reciprocal_or_zero(r: Any) -> Any:
        from .value import apply

        return apply(RECIPROCAL_OR_ZERO, (r,))

def _number(x: Any) -> float:
    return x if isinstance(x, (int, float)) else x.data  # type: ignore[no-any-return]


def _ieee_constant(x: float) -> Any:
    """A constant Value holding ``x``, NaN or ±inf included (IEEE's answer, not a user's number)."""
    from .value import Value

    node = Value(0.0, requires_grad=False)
    node.data = x
    return node


def _check_not_tracing(x: Any, what: str) -> None:
    """A derivative chosen by the number in a Value (PyTorch's torch.where) would be frozen by tracing."""
    from .mode import mode

    if mode.tracing and not isinstance(x, (int, float)):
        from .errors import TraceError

        raise TraceError(
            f"the derivative of {what} is chosen by the value of y while tracing: the replay would reuse "
            "the choice made at trace time; differentiate this function eagerly"
        )


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
                lambda m, a, b, y: (m.power_rule(a, b), m.exponential_rule(a, b, y)),
                domain="a ** b needs a > 0, or a = 0 with b >= 0 (and b = 0 or b >= 1 for its derivative "
                       "in a), or a < 0 with an integer b (and then has no derivative in b)",
                formula=("a^b", "b·a^(b-1) (0 for b = 0)", "a^b·log(a) (0 for a = 0, b ≥ 0)"))
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

# The largest of n numbers, as torch.amax: the gradient goes to the inputs equal to the
# maximum, split evenly among them (t of them: 1/t each; a NaN maximum sends none). One node
# whatever n (a chain or tree of `MAXIMUM` would be as deep as log₂ n or n), so softmax's shift
# keeps every position of a traced sequence model at the same depth. The slopes are written
# with `inside` (1 at xᵢ − y = 0) and `reciprocal_or_zero` (1/t, 0 for t = 0), rows of their own.
# fmt: off
AMAX     = Rule("amax",     "max", 0, lambda m, *x: m.amax(x),
                lambda m, *x_and_y: _amax_slopes(m, x_and_y[:-1], x_and_y[-1]),
                formula=("max(x₁, x₂, …)", "1/t if xᵢ = max(x₁, x₂, …), else 0 (t: how many xⱼ equal it)"))
# fmt: on


def _amax_slopes(m: Any, xs: tuple[Any, ...], y: Any) -> tuple[Any, ...]:
    """∂max/∂xᵢ = [xᵢ = y] / #{j: xⱼ = y}, and 0 for all when y is NaN (no xᵢ equals it)."""
    ties = [m.inside(x - y, 0.0, 0.0) for x in xs]
    share = m.reciprocal_or_zero(sum(ties[1:], ties[0]))
    return tuple(tie * share for tie in ties)


# A number passed on as a constant: what eager code means by reading ``.data`` (softmax's
# shift), written as a node so that a trace replays it per sample. Its slope is 0 by
# definition, as jax.lax.stop_gradient and torch's detach(): no gradient flows back through
# it, and a traced replay computes none for what lies behind it.
# fmt: off
STOP_GRADIENT = Rule("stop_gradient", "sg", 1, lambda m, x: x, lambda m, x, y: (0.0,),
                     formula=("sg(x) = x, passed on as a constant", "0 (no gradient flows back)"))
# fmt: on

# Picking one of n numbers by an integer index: an embedding lookup (row i of a table, one
# column at a time) or the logit of a class. The index is an input like any other (a traced
# input replays as each sample's own index), so the graph is the same for every index. The
# slopes are one-hot: ∂y/∂v_k = [k = i], written with `inside` (1 on [k, k], else 0) so that
# floats, Values (create_graph) and arrays share them; the index gets none (y is a step
# function of it). Variadic: (i, v₀, …, v_{n-1}), parents in that order.
# fmt: off
SELECT   = Rule("select",   "select", 0, lambda m, i, *v: m.select(i, v),
                lambda m, i, *v_and_y: (0.0, *[m.inside(i, float(k), float(k)) for k in range(len(v_and_y) - 1)]),
                domain="select needs an integer index 0 <= i < n, the number of choices",
                formula=("v_i = the choice i of v₀, v₁, …", "0", "1 if k = i, else 0"))
# fmt: on


@lru_cache(maxsize=256)
def power(n: float) -> Rule:
    """``x ** n`` for a constant number n: d/dx = n·x^(n-1) (0 for n = 0)."""
    return Rule(
        f"pow{n:g}",
        f"**{n:g}",
        1,
        lambda m, x: m.pow(x, n),
        lambda m, x, y: (m.power_rule(x, n),),
        domain=_power_domain(n),
        formula=(f"x^{n:g}", "0" if n == 0.0 else f"{n:g}·x^{n - 1:g}"),
    )


def _power_domain(n: float) -> str:
    """Where x ** n and its derivative n·x^(n-1) are finite, for finite x."""
    if n.is_integer():
        return "" if n >= 0.0 else f"x ** {n:g} needs x != 0"
    if n > 1.0:
        return f"x ** {n:g} needs x >= 0"
    if n > 0.0:
        return f"x ** {n:g} needs x >= 0, and x > 0 for its derivative"
    return f"x ** {n:g} needs x > 0"


@lru_cache(maxsize=256)
def exponential(c: float) -> Rule:
    """``c ** x`` for a constant number c: d/dx = c^x·log(c) (0 for c = 0, x >= 0)."""
    if c > 0.0:
        domain = ""
    elif c == 0.0:
        domain = "0 ** x needs x >= 0"
    else:
        domain = f"{c:g} ** x needs an integer x, and has no derivative (log({c:g}) is not real)"
    return Rule(
        f"rpow{c:g}",
        f"{c:g}**",
        1,
        lambda m, x: m.pow(c, x),
        lambda m, x, y: (m.exponential_rule(c, x, y),),
        domain=domain,
        formula=(f"{c:g}^x", "0" if c == 0.0 else f"{c:g}^x·log({c:g})"),
    )


@lru_cache(maxsize=64)
def leaky_relu(slope: float) -> Rule:
    """``max(x, slope·x)``: d/dx = 1 for x > 0, slope otherwise (NaN included, as PyTorch)."""
    return Rule(
        f"leaky_relu{slope:g}",
        "lrelu",
        1,
        lambda m, x: m.relu(x) - slope * m.relu(-x),
        lambda m, x, y: (slope + (1.0 - slope) * m.positive(x),),
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
# The derivatives of relu, leaky_relu and abs, as rows of their own: what
# ``grad(..., create_graph=True)`` records through those ops (see `ValueMath`),
# so that a traced replay evaluates them per sample. Piecewise constant, so
# their own derivative is 0 (as in PyTorch's double backward of relu and abs).
# fmt: off
STEP     = Rule("step",     "step", 1, lambda m, x: m.step(x),       lambda m, x, y: (0.0,),
                formula=("step(x) (1 for x > 0, else 0)", "0"))
SIGN     = Rule("sign",     "sign", 1, lambda m, x: m.sign(x),       lambda m, x, y: (0.0,),
                formula=("sign(x) (1 for x > 0, -1 for x < 0, 0 at 0)", "0"))
POSITIVE = Rule("positive", "pos", 1, lambda m, x: m.positive(x),   lambda m, x, y: (0.0,),
                formula=("1 for x > 0, else 0 (NaN too)", "0"))
# fmt: on


# The piecewise-constant slopes of maximum/minimum and clamp, and atan2's guarded
# reciprocal, as rows too: create_graph records them as nodes, so a replay evaluates them
# per sample instead of freezing the number seen at trace time.
# fmt: off
TIE_STEP = Rule("tie_step", "tie", 1, lambda m, d: m.tie_step(d),     lambda m, d, y: (0.0,),
                formula=("1 for d > 0, 0 for d < 0, ½ at d = 0", "0"))
RECIPROCAL_OR_ZERO = Rule("reciprocal_or_zero", "1/r", 1, lambda m, r: m.reciprocal_or_zero(r),
                          lambda m, r, y: (-(y * y),),
                          formula=("1/r (0 at r = 0)", "-1/r² (0 at r = 0)"))
# fmt: on


@lru_cache(maxsize=64)
def inside(lo: float, hi: float) -> Rule:
    """1 for lo <= x <= hi, else 0: the slope of `clamp`, piecewise constant."""
    return Rule(
        f"inside[{lo:g},{hi:g}]",
        "inside",
        1,
        lambda m, x: m.inside(x, lo, hi),
        lambda m, x, y: (0.0,),
        formula=(f"1 if {lo:g} ≤ x ≤ {hi:g}, else 0", "0"),
    )
