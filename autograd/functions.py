"""Functions of several Values that are not operators (atan2, hypot, maximum, minimum, amax,
select, stop_gradient), and `define_op`, the public way to add a row to the rule table.

Each function here is one row of `autograd.ops` applied to its arguments, made by
the same `operation` helper that `define_op` returns: a user's operation and a
built-in one go through the same code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from . import ops
from .errors import DomainError, InvalidArgumentError, InvalidTypeError
from .ops import Rule
from .value import Value, apply, constant

#: The rows added by `define_op`, by name (the built-in rows are the module constants of `ops`).
USER_RULES: dict[str, Rule] = {}


def operation(rule: Rule) -> Callable[..., Value]:
    """A function applying ``rule`` to Values and numbers (numbers become constants)."""

    def apply_rule(*args: Value | float) -> Value:
        if len(args) != rule.arity:
            raise InvalidArgumentError(f"{rule.name}: expected {rule.arity} arguments, got {len(args)}")
        parents = tuple(a if type(a) is Value else constant(a, rule.name) for a in args)
        return apply(rule, parents)

    apply_rule.__name__ = rule.name
    apply_rule.__doc__ = f"{rule.name}, the rule of the table:\n\n{rule.explain()}"
    return apply_rule


atan2 = operation(ops.ATAN2)
hypot = operation(ops.HYPOT)
maximum = operation(ops.MAXIMUM)
minimum = operation(ops.MINIMUM)


stop_gradient = operation(ops.STOP_GRADIENT)


def amax(values: Sequence[Value | float]) -> Value:
    """max(x₁, …, xₙ) as one node of the row `ops.AMAX` (as ``torch.amax``): ∂/∂xᵢ = 1/t if xᵢ is
    the maximum (t: how many inputs equal it, so ties share the gradient evenly), else 0.

    >>> x = [Value(1.0), Value(3.0), Value(3.0)]
    >>> y = amax(x)
    >>> y.backward()
    >>> y.data, [v.grad for v in x]
    (3.0, [0.0, 0.5, 0.5])
    """
    if isinstance(values, (str, bytes, Value)) or not isinstance(values, Sequence):
        raise InvalidTypeError(f"amax: expected a list of Values or numbers, got {type(values).__name__}")
    if not values:
        raise InvalidArgumentError("amax: needs at least one value")
    return apply(ops.AMAX, tuple(v if type(v) is Value else constant(v, "amax") for v in values))


def select(index: Value | int, *choices: Value | float) -> Value:
    """choices[index], as a node of the row `ops.SELECT`: y = v_i, ∂y/∂v_k = [k = i], ∂y/∂i = 0.

    The index may be a Value (a traced input: the replay then picks each sample's own
    choice, as a gather) or a number; either way it must hold an integer 0 <= i < n.
    Numbers among the choices become constants.

    >>> v = [Value(1.0), Value(2.0), Value(3.0)]
    >>> y = select(Value(2), *v)
    >>> y.backward()
    >>> y.data, [x.grad for x in v]
    (3.0, [0.0, 0.0, 1.0])
    """
    if not choices:
        raise InvalidArgumentError("select: needs at least one choice after the index")
    i = index if type(index) is Value else constant(index, "select (index)")
    if not (0.0 <= i.data < len(choices) and i.data == int(i.data)):
        raise DomainError(f"select: index {i.data!r} is not an integer in [0, {len(choices)})")
    return apply(ops.SELECT, (i, *[c if type(c) is Value else constant(c, "select") for c in choices]))


def define_op(
    name: str,
    forward: Callable[..., Any],
    derivative: Callable[..., Any],
    *,
    symbol: str | None = None,
    domain: str | None = None,
    formula: tuple[str, ...] | None = None,
) -> Callable[..., Value]:
    """Add an operation to the rule table and return the function that applies it.

    ``forward(m, x1, ..., xn)`` computes the value and ``derivative(m, x1, ..., xn, y)``
    the local derivatives ∂y/∂x_i (a tuple, or one value for n = 1), both written with
    the math namespace ``m`` (``m.exp``, ``m.log``, ``m.tanh``, … and plain arithmetic),
    never with ``math``: the same two functions then run on floats (eager, backward), on
    Values (``grad(create_graph=True)``) and on numpy arrays (traced replay). Drawing,
    the walkthrough and gradcheck read the new row like any other.

    >>> smoothstep = define_op("smoothstep", lambda m, x: x * x * (3 - 2 * x),
    ...                        lambda m, x, y: 6 * x * (1 - x), formula=("x²(3 - 2x)", "6x(1 - x)"))
    >>> x = Value(0.25)
    >>> smoothstep(x).backward()
    >>> x.grad
    1.125
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidArgumentError(f"define_op: name must be an identifier, got {name!r}")
    if name in USER_RULES or isinstance(getattr(ops, name.upper(), None), Rule):
        raise InvalidArgumentError(f"define_op: an operation named {name!r} is already in the table")
    for role, fn in (("forward", forward), ("derivative", derivative)):
        if not callable(fn):
            raise InvalidTypeError(f"define_op({name!r}): {role} must be callable, got {type(fn).__name__}")
    arity = _arity(forward, name)
    if _arity(derivative, name) != arity + 1:
        raise InvalidArgumentError(
            f"define_op({name!r}): derivative must take (m, {_names(arity)}, y): the namespace, "
            f"the {arity} inputs and the output"
        )
    if formula is not None and (not isinstance(formula, tuple) or len(formula) != arity + 1):
        raise InvalidArgumentError(
            f"define_op({name!r}): formula must be a tuple of {arity + 1} texts: the forward "
            "expression, then one local derivative per input"
        )

    def local(m: Any, *xs: Any) -> tuple[Any, ...]:
        slopes = derivative(m, *xs)
        return slopes if isinstance(slopes, tuple) else (slopes,)

    inputs = list(inspect.signature(forward).parameters)[1:]
    rule = Rule(
        name,
        symbol or name,
        arity,
        forward,
        local,
        domain=domain or "",
        formula=formula or (f"{name}({', '.join(inputs)})", *[f"∂{name}/∂{x} (user-defined)" for x in inputs]),
    )
    USER_RULES[name] = rule
    return operation(rule)


def _arity(fn: Callable[..., Any], name: str) -> int:
    """The number of inputs after the namespace ``m``."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise InvalidTypeError(f"define_op({name!r}): cannot read the parameters of {fn!r}") from None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters) or len(parameters) < 2:
        raise InvalidArgumentError(
            f"define_op({name!r}): write forward(m, x1, ..., xn) and derivative(m, x1, ..., xn, y) "
            "with the math namespace m first and a fixed number of inputs"
        )
    return len(parameters) - 1


def _names(arity: int) -> str:
    return "x" if arity == 1 else ", ".join(f"x{i + 1}" for i in range(arity))
