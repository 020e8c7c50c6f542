"""Reverse-mode accumulation: order the graph, then apply the chain rule backwards.

Both stages are loops over explicit lists (no recursion), so a chain a million
nodes deep is as easy as a shallow one.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from .ops import FloatMath, Rule

if TYPE_CHECKING:
    from .value import Value


def topological_order(root: Value, leaves: bool = True) -> list[Value]:
    """Every node ``root`` depends on, each after all of its parents (root last).

    With ``leaves=False`` only the nodes made by an operation are listed: all
    the backward pass needs, and much shorter when most nodes are inputs.

    Depth-first search with an explicit stack. Expanding a node whose parents
    are not all listed yet pushes the node back under a ``None`` marker, then
    those parents on top; when the marker comes off the stack all the parents
    are listed, so the node is listed next. A node found again on another path
    (``b = a + a``) is skipped.
    Value keeps identity hashing (it does not define ``__eq__``), so the nodes
    themselves key the ``expanded`` set.
    """
    if not root._parents:
        return [root] if leaves else []
    order: list[Value] = []
    expanded: set[Value] = set()
    stack: list[Value | None] = [root]
    # Bound methods: this loop runs once per node and edge of the graph.
    push, pop, expand, emit = stack.append, stack.pop, expanded.add, order.append
    while stack:
        node = pop()
        if node is None:
            emit(pop())  # type: ignore[arg-type]
            continue
        if node in expanded:
            continue
        expand(node)
        waiting = False
        for parent in node._parents:
            if (leaves or parent._parents) and parent not in expanded:
                if not waiting:
                    push(node)
                    push(None)
                    waiting = True
                push(parent)
        if not waiting:  # a leaf, or every parent is listed already
            emit(node)
    return order


# Orders already computed, per output, for as long as that output lives. A graph
# never changes once built, so a second backward() or grad() through the same
# output reuses its order. The cached list leaves the output itself out: holding
# it would keep the weak key alive.
_orders: dict[bool, weakref.WeakKeyDictionary[Value, list[Value]]] = {
    True: weakref.WeakKeyDictionary(),
    False: weakref.WeakKeyDictionary(),
}


def cached_topological_order(root: Value, leaves: bool = True) -> list[Value]:
    """`topological_order`, remembered while ``root`` is alive."""
    if not root._parents:
        return topological_order(root, leaves)
    cache = _orders[leaves]
    below = cache.get(root)
    if below is not None:
        return [*below, root]
    order = topological_order(root, leaves)
    cache[root] = order[:-1]
    return order


def backward(root: Value, gradient: float = 1.0) -> None:
    """Fill ``.grad`` of every node below ``root`` with d(root)/d(node) · gradient.

    Interior nodes start from 0 (they hold this pass's gradient); leaves keep
    what they had, so gradients accumulate across calls as in PyTorch.
    """
    order = cached_topological_order(root, leaves=False)
    for node in order:
        node.grad = 0.0
    root.grad += gradient
    accumulate_gradients(order)


def accumulate_gradients(order: list[Value]) -> None:
    """Chain rule, from the output back: parent.grad += d(node)/d(parent) · node.grad.

    ``order`` lists the nodes made by operations, each after its parents.
    """
    from .mode import mode

    if mode.anomaly:
        _accumulate_checked(order)
        return
    node = None
    m = FloatMath  # a local name: this loop runs once per node
    try:
        # Specialised by arity: unpacking a known number of parents and
        # derivatives is what makes this loop fast.
        for node in reversed(order):
            parents = node._parents
            g = node.grad
            arity = len(parents)
            if arity == 2:
                a, b = parents
                da, db = node._rule.derivative(m, a.data, b.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g
                b.grad += db * g
            elif arity == 1:
                (a,) = parents
                (da,) = node._rule.derivative(m, a.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g
            else:
                _accumulate_node(node)
    except (ArithmeticError, ValueError) as exc:
        raise derivative_error_at(node, exc) from None


def _accumulate_node(node: Value) -> None:
    g = node.grad
    parents = node._parents
    local = node._rule.derivative(FloatMath, *[p.data for p in parents], node.data)  # type: ignore[union-attr]
    for parent, d in zip(parents, local):
        parent.grad += d * g


def _accumulate_checked(order: list[Value]) -> None:
    # Under detect_anomaly: one node at a time, each contribution checked.
    from .anomaly import check_backward

    node = None
    try:
        for node in reversed(order):
            _accumulate_node(node)
            check_backward(node)
    except (ArithmeticError, ValueError) as exc:
        raise derivative_error_at(node, exc) from None


def derivative_error_at(node: Any, exc: Exception) -> Exception:
    """The project's error for a float error met while differentiating ``node``."""
    from .errors import AutogradError

    if isinstance(exc, AutogradError) or node is None:
        return exc
    return derivative_error(node._rule, [p.data for p in node._parents], exc)


def derivative_error(rule: Rule, inputs: list[float], exc: Exception) -> Exception:
    """Turn a float error met while differentiating ``rule`` at ``inputs`` into one of the project's."""
    from .errors import DivisionByZeroError, DomainError, NumericOverflowError

    args = ", ".join(repr(x) for x in inputs)
    message = (
        f"backward through {rule.name}({args}): the derivative is not finite here"
        f" ({exc}); {rule.domain or 'move the input away from this point'}"
    )
    if isinstance(exc, OverflowError):
        return NumericOverflowError(message)
    if isinstance(exc, ZeroDivisionError) or "domain" in str(exc):
        return DivisionByZeroError(message)
    return DomainError(message)
