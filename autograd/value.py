"""`Value`: one float, its gradient, and the operation that produced it.

A Value made by an operation remembers its parents (in argument order) and the
`Rule` from `ops` that made it; nothing else. There is no per-node closure, so a
graph is freed by reference counting as soon as it is dropped.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from math import isfinite
from numbers import Real
from typing import Any, Union

from . import ops
from .errors import (
    DivisionByZeroError,
    DomainError,
    InvalidArgumentError,
    InvalidTypeError,
    NumericOverflowError,
    TraceError,
)
from .mode import mode, overrides
from .ops import FloatMath, Rule

Number = Union[int, float]
Operand = Union["Value", int, float]


def as_float(x: object, what: str) -> float:
    """Check that ``x`` is a real, finite, non-bool number and return it as a float."""
    if isinstance(x, bool) or not isinstance(x, Real):
        raise InvalidTypeError(
            f"{what}: expected an int or float, got {type(x).__name__} {x!r}"
        )
    try:
        value = float(x)
    except OverflowError:  # an int (or Fraction) beyond the float range, e.g. 10**400
        raise NumericOverflowError(f"{what}: {type(x).__name__} too large for a float") from None
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{what}: expected a finite number, got {value}")
    return value


def _binary_method(rule: Rule, reflected: bool) -> Callable[[Value, Operand], Value]:
    forward = rule.forward

    def method(self: Value, other: Operand) -> Value:
        if type(other) is not Value:
            other = constant(other, rule.name)
        if reflected:
            a, b = other, self
        else:
            a, b = self, other
        try:
            data = forward(FloatMath, a.data, b.data)
        except (ArithmeticError, ValueError) as exc:
            raise math_error(rule, (a.data, b.data), exc) from None
        if overrides.active and not mode.fast:
            return record(rule, data, (a, b))
        # The common case, written out: one node per operation is the hot path.
        node = _new_node(Value)
        node.data = data
        node.grad = 0.0
        node._rule = rule
        node._left = a
        node._right = b
        return node

    method.__name__ = f"__{'r' if reflected else ''}{rule.name}__"
    method.__doc__ = f"``{rule.symbol}``, the rule of `autograd.ops.{rule.name.upper()}`:\n\n{rule.explain()}"
    return method


def _unary_method(rule: Rule) -> Callable[[Value], Value]:
    forward = rule.forward

    def method(self: Value) -> Value:
        try:
            data = forward(FloatMath, self.data)
        except (ArithmeticError, ValueError) as exc:
            raise math_error(rule, (self.data,), exc) from None
        if overrides.active and not mode.fast:
            return record(rule, data, (self,))
        node = _new_node(Value)
        node.data = data
        node.grad = 0.0
        node._rule = rule
        node._left = self
        node._right = None
        return node

    method.__name__ = rule.name
    method.__doc__ = f"{rule.name}(x), the rule of `autograd.ops.{rule.name.upper()}`:\n\n{rule.explain()}"
    return method


class Value:
    """A scalar node of the computation graph.

    >>> x = Value(2.0, label="x")
    >>> y = x * x + 3
    >>> y.backward()
    >>> x.grad
    4.0
    """

    # A node is as small as it can be: Python's cyclic garbage collector walks
    # every live node again and again while a large graph grows, and its work
    # grows with each node's objects and members.
    # - The parents live in two slots rather than in one tuple of their own: the
    #   first, and the second (for a sum of more than two, a tuple of all after
    #   the first; only `sum_values` makes those). `parents` gives them back as one tuple.
    # - A label, which few nodes have, is kept in a table beside the graph.
    # __weakref__ lets the backward pass remember a graph's order without keeping
    # it alive, and the label table forget a label with its Value.
    __slots__ = ("data", "grad", "_rule", "_left", "_right", "__weakref__")

    data: float
    grad: float  # d(output)/d(self) after backward(); grad(..., create_graph=True) never writes it
    _rule: Rule | None
    _left: Value | None  # None for a leaf
    # None for a leaf or a one-input operation; a tuple for a sum of more than two
    _right: Value | tuple[Value, ...] | None

    def __init__(self, data: Number, label: str = "", requires_grad: bool = True) -> None:
        # A finite float is by far the common case; everything else takes the full check.
        self.data = data if type(data) is float and isfinite(data) else as_float(data, "Value")
        self.grad = 0.0
        self._rule = None if requires_grad else CONSTANT
        self._left = None
        self._right = None
        if label or type(label) is not str:  # most Values have none
            self.label = label  # the setter checks the type

    # -- introspection -------------------------------------------------------
    @property
    def parents(self) -> tuple[Value, ...]:
        """The inputs of the operation that made this Value, in order (empty for a leaf)."""
        left, right = self._left, self._right
        if left is None:
            return ()
        if right is None:
            return (left,)
        if isinstance(right, tuple):  # an n-ary sum
            return (left, *right)
        return (left, right)

    @property
    def label(self) -> str:
        """A name for drawings and messages ("" when none was given)."""
        return _labels.get(self, "")

    @label.setter
    def label(self, name: str) -> None:
        if not isinstance(name, str):
            raise InvalidTypeError(f"Value: label must be a str, got {type(name).__name__}")
        if name:
            _labels[self] = name
        else:
            _labels.pop(self, None)

    @property
    def op(self) -> str:
        """The name of the operation that made this Value ("" for a leaf)."""
        rule = self._rule
        return "" if rule is None or rule is CONSTANT else rule.name

    @property
    def rule(self) -> Rule | None:
        """The `ops.Rule` that made this Value, or None for a leaf."""
        rule = self._rule
        return None if rule is CONSTANT else rule

    @property
    def is_leaf(self) -> bool:
        return self._left is None

    @property
    def requires_grad(self) -> bool:
        """False only for constants (numbers mixed into expressions, or requires_grad=False)."""
        return self._rule is not CONSTANT

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = self.grad
        grad_text = f"{grad:.4g}" if isinstance(grad, float) else repr(grad)
        return f"Value(data={self.data:.4g}, grad={grad_text}{label})"

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """What `copy` (and `copy.deepcopy` of a whole model) copies: the slots, and the label."""
        members = {name: getattr(self, name) for name in Value.__slots__ if name != "__weakref__"}
        return None, {**members, "label": self.label}

    def __deepcopy__(self, memo: dict[int, Any]) -> Value:
        """A copy of the whole graph behind this Value, made without recursion.

        `copy.deepcopy`'s own walk recurses once per node (a chain of 5,000 ops
        exhausts Python's stack), so the graph is walked here with an explicit
        stack: first every node not yet copied gets an empty copy (registered in
        ``memo``, so nodes shared in the graph, or already copied with the rest
        of a model, stay shared), then each copy's members are filled in. A
        gradient that is itself a Value (``grad(..., create_graph=True)``) is part
        of the graph copied.
        """
        from copy import deepcopy  # only copying needs it

        originals: list[Value] = []
        stack: list[Any] = [self]
        while stack:
            node = stack.pop()
            if not isinstance(node, Value) or id(node) in memo:
                continue
            memo[id(node)] = _new_node(type(node))
            originals.append(node)
            stack.append(node.grad)
            stack.extend(node.parents)
        for node in originals:
            twin = memo[id(node)]
            state = node.__getstate__()[1]
            label = state.pop("label")
            for name, value in state.items():
                if isinstance(value, tuple):  # the parents after the first, of an n-ary sum
                    value = tuple(memo[id(parent)] for parent in value)
                elif isinstance(value, Value):
                    value = memo[id(value)]
                else:
                    value = deepcopy(value, memo)  # a float, None, or a Rule (shared, see Rule)
                setattr(twin, name, value)
            if label:
                twin.label = label
        # deepcopy's rule: keep the originals alive while the memo holds their ids
        memo.setdefault(id(memo), []).extend(originals)
        return memo[id(self)]

    def __float__(self) -> float:
        if mode.tracing:
            raise _frozen_by_tracing("float(v)")
        return self.data

    # -- gradients -----------------------------------------------------------
    def backward(self, gradient: float = 1.0) -> None:
        """Back-propagate from this node: every node's ``.grad`` gets d(self)/d(node).

        Leaves accumulate across calls (call `zero_grad` between steps);
        interior nodes hold the gradient of the latest pass.
        """
        from .backward import backward

        backward(self, as_float(gradient, "backward(gradient)"))

    def zero_grad(self) -> None:
        """Reset this node's gradient to 0."""
        self.grad = 0.0

    # -- comparisons compare .data and record nothing -------------------------
    def __lt__(self, other: Operand) -> bool:
        if mode.tracing:
            raise _frozen_by_tracing("v < ...")
        return self.data < _data_of(other, "<")

    def __le__(self, other: Operand) -> bool:
        if mode.tracing:
            raise _frozen_by_tracing("v <= ...")
        return self.data <= _data_of(other, "<=")

    def __gt__(self, other: Operand) -> bool:
        if mode.tracing:
            raise _frozen_by_tracing("v > ...")
        return self.data > _data_of(other, ">")

    def __ge__(self, other: Operand) -> bool:
        if mode.tracing:
            raise _frozen_by_tracing("v >= ...")
        return self.data >= _data_of(other, ">=")

    # -- arithmetic: one method per rule of the table, made by the factories above --
    __add__ = _binary_method(ops.ADD, reflected=False)
    __radd__ = _binary_method(ops.ADD, reflected=True)
    __sub__ = _binary_method(ops.SUB, reflected=False)
    __rsub__ = _binary_method(ops.SUB, reflected=True)
    __mul__ = _binary_method(ops.MUL, reflected=False)
    __rmul__ = _binary_method(ops.MUL, reflected=True)
    __truediv__ = _binary_method(ops.DIV, reflected=False)
    __rtruediv__ = _binary_method(ops.DIV, reflected=True)
    __neg__ = _unary_method(ops.NEG)
    __abs__ = _unary_method(ops.ABS)
    exp = _unary_method(ops.EXP)
    log = _unary_method(ops.LOG)
    sqrt = _unary_method(ops.SQRT)
    tanh = _unary_method(ops.TANH)
    sigmoid = _unary_method(ops.SIGMOID)
    relu = _unary_method(ops.RELU)
    softplus = _unary_method(ops.SOFTPLUS)
    sin = _unary_method(ops.SIN)
    cos = _unary_method(ops.COS)
    tan = _unary_method(ops.TAN)
    sinh = _unary_method(ops.SINH)
    cosh = _unary_method(ops.COSH)
    asin = _unary_method(ops.ASIN)
    acos = _unary_method(ops.ACOS)
    atan = _unary_method(ops.ATAN)
    log1p = _unary_method(ops.LOG1P)
    expm1 = _unary_method(ops.EXPM1)
    log2 = _unary_method(ops.LOG2)
    log10 = _unary_method(ops.LOG10)

    def clamp(self, lo: float, hi: float) -> Value:
        """``min(max(x, lo), hi)``; the gradient passes where lo <= x <= hi (bounds included, as PyTorch)."""
        low, high = as_float(lo, "clamp (lo)"), as_float(hi, "clamp (hi)")
        if low > high:
            raise InvalidArgumentError(f"clamp: lo must be <= hi, got lo={low}, hi={high}")
        return apply(ops.clamp(low, high), (self,))

    def __pow__(self, exponent: Operand) -> Value:
        """``x ** n`` with a number n, or ``x ** y`` with a Value y (then x must be > 0)."""
        if type(exponent) is Value:
            return apply(ops.POW, (self, exponent))
        return apply(ops.power(as_float(exponent, "pow (exponent)")), (self,))

    def __rpow__(self, base: Operand) -> Value:
        """``b ** x`` with a number b > 0: d/dx = b^x · log b."""
        return apply(ops.POW, (constant(base, "pow"), self))

    def leaky_relu(self, slope: float = 0.01) -> Value:
        """``x`` for x > 0, ``slope * x`` otherwise."""
        return apply(ops.leaky_relu(as_float(slope, "leaky_relu (slope)")), (self,))


#: The rule of constants: leaves that never need a gradient (numbers in expressions).
CONSTANT = Rule("constant", "const", 0, lambda m: 0.0, lambda m, y: ())

_new_node = object.__new__

# The labels of the Values that have one (see Value.__slots__); an entry goes with its Value.
_labels: weakref.WeakKeyDictionary[Value, str] = weakref.WeakKeyDictionary()


def constant(x: object, op: str) -> Value:
    """Wrap a plain number met by operation ``op`` as a constant leaf."""
    kind = type(x)
    if kind is not float and kind is not int and (isinstance(x, bool) or not isinstance(x, Real)):
        raise InvalidTypeError(
            f"{op}: cannot combine a Value with {type(x).__name__} {x!r}; "
            "use a Value, int or float"
        )
    node = _new_node(Value)
    node.data = x if type(x) is float and isfinite(x) else as_float(x, op)
    node.grad = 0.0
    node._rule = CONSTANT
    node._left = None
    node._right = None
    return node


def _data_of(x: object, op: str) -> float:
    if type(x) is Value:
        return x.data  # type: ignore[union-attr, attr-defined]
    return constant(x, op).data


def _frozen_by_tracing(what: str) -> TraceError:
    return TraceError(
        f"{what} on a Value while tracing: the replay would reuse the number seen at trace time "
        "(a Python branch on .data is frozen when traced). Express the branch with an op "
        "(relu, abs, leaky_relu...) or run this function eagerly"
    )


def math_error(rule: Rule, inputs: Iterable[float], exc: Exception) -> Exception:
    """Turn a float error from a rule into one of the project's, naming op and values."""
    args = ", ".join(repr(x) for x in inputs)
    detail = f"{rule.domain}" if rule.domain else str(exc)
    message = f"{rule.name}({args}): {detail}"
    if isinstance(exc, OverflowError):
        return NumericOverflowError(f"{rule.name}({args}): result too large for a float")
    if isinstance(exc, ZeroDivisionError) or (
        rule.name.startswith("pow") and any(x == 0.0 for x in inputs)
    ):
        return DivisionByZeroError(message)
    return DomainError(message)


def evaluate(rule: Rule, inputs: list[float]) -> float:
    """``rule`` on plain floats, raising the project's error (naming op and inputs) on bad input."""
    if rule is ops.POW and inputs[0] <= 0.0:
        # d(a^b)/db = a^b·log(a) exists only for a > 0.
        raise DomainError(f"pow({inputs[0]!r}, {inputs[1]!r}): {rule.domain}")
    try:
        return rule.forward(FloatMath, *inputs)  # type: ignore[no-any-return]
    except (ArithmeticError, ValueError) as exc:
        raise math_error(rule, inputs, exc) from None


def apply(rule: Rule, parents: tuple[Value, ...]) -> Value:
    """Compute ``rule`` on the parents' data and record the result as a new node."""
    return record(rule, evaluate(rule, [p.data for p in parents]), parents)


def record(rule: Rule, data: float, parents: tuple[Value, ...]) -> Value:
    """Make the node for ``data = rule(parents)``; a plain leaf under no_grad."""
    node = _new_node(Value)
    node.data = data
    node.grad = 0.0
    if overrides.active and not mode.fast:
        if mode.anomaly:
            from .anomaly import check_forward

            check_forward(rule, data, parents)
        if not mode.grad_enabled:
            if mode.tracing:
                raise TraceError(
                    f"{rule.name} under no_grad while tracing: the traced graph would be cut here"
                )
            rule, parents = None, ()  # type: ignore[assignment]
    node._rule = rule
    node._left = parents[0] if parents else None
    if len(parents) > 2:
        node._right = parents[1:]  # a sum of more than two: the parents after the first
    else:
        node._right = parents[1] if len(parents) == 2 else None
    return node


def sum_values(values: Iterable[Operand]) -> Value:
    """Σ values as one node (instead of the chain of additions builtin ``sum`` makes).

    d(Σ x_i)/dx_i = 1. Numbers among the values are treated as constants.
    """
    try:
        items = iter(values)
    except TypeError:
        raise InvalidTypeError(
            f"sum_values: expected an iterable of Values or numbers, got {type(values).__name__}"
        ) from None
    parents: tuple[Value, ...] = tuple(items)  # type: ignore[arg-type]
    for v in parents:
        if type(v) is not Value:  # numbers among the values: wrap them (rare, so not first)
            parents = tuple(v if type(v) is Value else constant(v, "sum") for v in parents)
            break
    if not parents:
        raise InvalidArgumentError("sum_values: needs at least one value, got none")
    if len(parents) == 1:
        return parents[0]
    return apply(ops.SUM, parents)
