"""Gradients as functions: `grad` (optionally recording the backward pass) and `no_grad`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .backward import cached_topological_order, derivative_error, local_derivatives
from .errors import InvalidTypeError, TraceError
from .mode import mode
from .ops import ValueMath
from .value import Value, constant

F = TypeVar("F", bound=Callable[..., Any])


def grad(
    output: Value, inputs: Sequence[Value], create_graph: bool = False
) -> list[Value | float]:
    """d(output)/d(input) for each input, without touching any ``.grad``.

    With ``create_graph=True`` the backward pass is recorded like any other
    computation: the gradients are Values that can be differentiated again,

    >>> x = Value(2.0)
    >>> (dy,) = grad(x ** 3, [x], create_graph=True)   # 3x² = 12
    >>> grad(dy, [x])                                   # 6x
    [12.0]

    An input that ``output`` does not depend on gets 0.
    """
    if type(output) is not Value:
        raise InvalidTypeError(f"grad: output must be a Value, got {type(output).__name__}")
    if not isinstance(inputs, Iterable):
        raise InvalidTypeError(f"grad: inputs must be a list of Values, got {type(inputs).__name__}")
    inputs = list(inputs)
    for i, x in enumerate(inputs):
        if type(x) is not Value:
            raise InvalidTypeError(f"grad: inputs[{i}] must be a Value, got {type(x).__name__}")
    if mode.tracing and not create_graph:
        raise TraceError(
            "grad() while tracing: without create_graph its gradients are floats worked out from the "
            "trace-time inputs, which the replay would reuse for every sample. Use "
            "grad(..., create_graph=True), whose gradients are Values the trace records"
        )
    order = cached_topological_order(output)
    if create_graph:
        return _recorded_gradients(output, order, inputs)
    return _float_gradients(output, order, inputs)


def _float_gradients(output: Value, order: list[Value], inputs: list[Value]) -> list[Value | float]:
    # The chain rule of `backward`, accumulated in a dict instead of the nodes' .grad.
    grads: dict[int, float] = {id(output): 1.0}
    for node in reversed(order):
        parents = node.parents
        g = grads.get(id(node))
        if not parents or g is None:
            continue
        local = local_derivatives(node._rule, [p.data for p in parents], node.data)  # type: ignore[arg-type]
        for parent, d in zip(parents, local):
            key = id(parent)
            grads[key] = grads.get(key, 0.0) + d * g
            if mode.anomaly:
                from .anomaly import check_gradient

                check_gradient(node, parent, grads[key], g)
    return [grads.get(id(x), 0.0) for x in inputs]


def _recorded_gradients(output: Value, order: list[Value], inputs: list[Value]) -> list[Value | float]:
    # The same rules, evaluated on Values (ValueMath), so every product is a node.
    grads: dict[int, Any] = {id(output): constant(1.0, "grad")}
    for node in reversed(order):
        parents = node.parents
        g = grads.get(id(node))
        if not parents or g is None:
            continue
        try:
            local = node._rule.derivative(ValueMath, *parents, node)  # type: ignore[union-attr]
        except (ArithmeticError, ValueError) as exc:  # e.g. 1/(2√x) at x = 0, recorded as a division
            raise derivative_error(node._rule, [p.data for p in parents], exc) from None  # type: ignore[arg-type]
        for parent, d in zip(parents, local):
            contribution = g if (type(d) is float and d == 1.0) else d * g
            key = id(parent)
            previous = grads.get(key)
            grads[key] = contribution if previous is None else previous + contribution
    return [grads[id(x)] if id(x) in grads else constant(0.0, "grad") for x in inputs]


class no_grad:
    """Context manager and decorator: operations inside record no graph.

    Results are plain leaves (no parents), which is what you want for
    evaluation and for parameter updates. Thread-local, nestable, and the
    previous state is restored even when the block raises.

    >>> with no_grad():
    ...     y = Value(2.0) * 3
    >>> y.parents
    ()
    """

    def __enter__(self) -> no_grad:
        mode.enter(grad_enabled=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        mode.leave()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
