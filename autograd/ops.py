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


class ValueMath:
    """The math namespace for Values: derivatives built from it are recorded.

    Used by ``grad(..., create_graph=True)``. Piecewise-constant derivatives
    (step, sign) are nodes too, of the rows `STEP` and `SIGN`, whose own
    derivative is zero: a number read from ``.data`` here would be frozen by `trace`.
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
    def step(x: Any) -> Any:
        from .value import apply

        return apply(STEP, (x,))

    @staticmethod
    def sign(x: Any) -> Any:
        from .value import apply

        return apply(SIGN, (x,))


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


BINARY_RULES: tuple[Rule, ...] = (ADD, SUB, MUL, DIV, POW)
UNARY_RULES: tuple[Rule, ...] = (NEG, ABS, EXP, LOG, SQRT, TANH, SIGMOID, RELU, SOFTPLUS, SIN, COS)


# The derivatives of relu, leaky_relu and abs, as rows of their own: what
# ``grad(..., create_graph=True)`` records through those ops (see `ValueMath`),
# so that a traced replay evaluates them per sample. Piecewise constant, so
# their own derivative is 0 (as in PyTorch's double backward of relu and abs).
# fmt: off
STEP     = Rule("step",     "step", 1, lambda m, x: m.step(x),       lambda m, x, y: (0.0,),
                formula=("step(x) (1 for x > 0, else 0)", "0"))
SIGN     = Rule("sign",     "sign", 1, lambda m, x: m.sign(x),       lambda m, x, y: (0.0,),
                formula=("sign(x) (1 for x > 0, -1 for x < 0, 0 at 0)", "0"))
# fmt: on
