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
    (step, sign) return plain floats: their own derivative is zero. So do the
    special points of the pow rules (0 where PyTorch's derivative is 0 by
    convention): elsewhere their derivative is the recorded formula.
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
    def step(x: Any) -> float:
        return FloatMath.step(x.data)

    @staticmethod
    def positive(x: Any) -> float:
        return FloatMath.positive(x.data)

    @staticmethod
    def sign(x: Any) -> float:
        return FloatMath.sign(x.data)


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


BINARY_RULES: tuple[Rule, ...] = (ADD, SUB, MUL, DIV, POW)
UNARY_RULES: tuple[Rule, ...] = (NEG, ABS, EXP, LOG, SQRT, TANH, SIGMOID, RELU, SOFTPLUS, SIN, COS)
