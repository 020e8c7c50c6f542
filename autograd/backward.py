"""Reverse-mode accumulation: order the graph, then apply the chain rule backwards.

Both stages are loops over explicit lists (no recursion), so a chain a million
nodes deep is as easy as a shallow one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .ops import FloatMath

if TYPE_CHECKING:
    from .value import Value


def topological_order(root: Value) -> list[Value]:
    """Every node ``root`` depends on, each after all of its parents (root last).

    Depth-first search with an explicit stack; a node found again on another
    path (``b = a + a``) is listed once.
    """
    order: list[Value] = []
    entered: set[int] = set()
    finished: set[int] = set()
    stack = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in entered:
            stack.pop()
            if key not in finished:
                finished.add(key)
                order.append(node)
            continue
        entered.add(key)
        for parent in node._parents:
            if id(parent) not in entered:
                stack.append(parent)
    return order


def backward(root: Value, gradient: float = 1.0) -> None:
    """Fill ``.grad`` of every node below ``root`` with d(root)/d(node) · gradient.

    Interior nodes start from 0 (they hold this pass's gradient); leaves keep
    what they had, so gradients accumulate across calls as in PyTorch.
    """
    order = topological_order(root)
    for node in order:
        if node._parents:
            node.grad = 0.0
    root.grad += gradient
    accumulate_gradients(order)


def accumulate_gradients(order: list[Value]) -> None:
    """Chain rule, from the output back: parent.grad += d(node)/d(parent) · node.grad."""
    from .mode import mode

    check: Callable[[Value], None] | None = None
    if mode.anomaly:
        from .anomaly import check_backward

        check = check_backward
    node = None
    try:
        for node in reversed(order):
            parents = node._parents
            if not parents:
                continue
            g = node.grad
            rule = node._rule
            if len(parents) == 2:
                a, b = parents
                da, db = rule.derivative(FloatMath, a.data, b.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g
                b.grad += db * g
            elif len(parents) == 1:
                (a,) = parents
                (da,) = rule.derivative(FloatMath, a.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g
            else:
                local = rule.derivative(FloatMath, *[p.data for p in parents], node.data)  # type: ignore[union-attr]
                for parent, d in zip(parents, local):
                    parent.grad += d * g
            if check is not None:
                check(node)
    except (ArithmeticError, ValueError) as exc:
        raise _derivative_error(node, exc) from None


def _derivative_error(node: Any, exc: Exception) -> Exception:
    from .errors import AutogradError, DivisionByZeroError, DomainError, NumericOverflowError

    if isinstance(exc, AutogradError) or node is None:
        return exc
    rule = node._rule
    args = ", ".join(repr(p.data) for p in node._parents)
    message = (
        f"backward through {rule.name}({args}): the derivative is not finite here"
        f" ({exc}); {rule.domain or 'move the input away from this point'}"
    )
    if isinstance(exc, OverflowError):
        return NumericOverflowError(message)
    if isinstance(exc, ZeroDivisionError) or "domain" in str(exc):
        return DivisionByZeroError(message)
    return DomainError(message)
