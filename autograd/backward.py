"""Reverse-mode accumulation: order the graph, then apply the chain rule backwards.

Both stages are loops over explicit lists (no recursion), so a chain a million
nodes deep is as easy as a shallow one.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import TYPE_CHECKING

from .errors import TraceError
from .mode import mode, overrides
from .ops import FloatMath, IEEEFloat, IEEEMath, Rule

if TYPE_CHECKING:
    from .value import Value


def topological_order(root: Value, leaves: bool = True) -> list[Value]:
    """Every node ``root`` depends on, each after all of its parents (root last).

    With ``leaves=False`` only the nodes made by an operation are listed: all
    the backward pass needs, and much shorter when most nodes are inputs.

    Depth-first search with an explicit stack. Expanding a node pushes it
    back under a ``None`` marker, then its parents on top; when the marker
    comes off the stack, everything above it (the parents and all they depend
    on) is listed, so the node is listed next. A node met again on another
    path (``b = a + a``) is already expanded, and is skipped: in a graph built
    by operations it is then listed too, since a node that is expanded but not
    yet listed is one the current node depends on, never one of its parents.
    Value keeps identity hashing (it does not define ``__eq__``), so the nodes
    themselves key the ``expanded`` set.

    A parent already expanded, or a leaf when leaves are not listed, is not
    pushed at all, and a node with no parent left to push is listed at once,
    without the marker: an input read by many operations (a weight, an
    activation read by every row of a layer) would otherwise be pushed and
    popped once per reader, which is most of the stack's work in a large graph.
    """
    order: list[Value] = []
    expanded: set[Value] = set()
    stack: list[Value | None] = [root]
    # Bound methods: this loop runs once per node and edge of the graph.
    push, pop, extend, expand, emit = stack.append, stack.pop, stack.extend, expanded.add, order.append
    while stack:
        node = pop()
        if node is None:
            emit(pop())  # type: ignore[arg-type]
            continue
        if node in expanded:
            continue
        expand(node)
        left = node._left
        if left is None:  # a leaf: the root, an n-ary sum's parent, or one pushed to be listed
            if leaves:
                emit(node)
            continue
        # The parents, written out from their slots (see Value.__slots__).
        right = node._right
        if isinstance(right, tuple):  # an n-ary sum: all its parents, sorted out when popped
            push(node)
            push(None)
            push(left)
            extend(right)
            continue
        push_left = (leaves or left._left is not None) and left not in expanded
        push_right = right is not None and (leaves or right._left is not None) and right not in expanded
        if not (push_left or push_right):
            emit(node)
            continue
        push(node)
        push(None)
        if push_left:
            push(left)
        if push_right:
            push(right)
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
    if root.is_leaf:
        return topological_order(root, leaves)
    cache = _orders[leaves]
    below = cache.get(root)
    if below is not None:
        return [*below, root]
    order = topological_order(root, leaves)
    cache[root] = order[:-1]
    return order


#: Held by a backward pass while it writes ``.grad``: passes take turns.
gradient_lock = threading.RLock()


def backward(root: Value, gradient: float = 1.0) -> None:
    """Fill ``.grad`` of every node below ``root`` with d(root)/d(node) · gradient.

    Interior nodes start from 0 (they hold this pass's gradient); leaves keep
    what they had, so gradients accumulate across calls as in PyTorch.

    The interior nodes' ``.grad`` is the pass's working space: two passes
    through a shared node at the same time (threads) would reset and add into
    each other's sums. So passes take turns, holding `gradient_lock` while they
    write (sorting the graph, the slow part of a first pass, runs outside it).
    A dict per pass instead (as `grad` keeps) would let passes overlap, but
    made the pass several times slower (measured on benchmarks/engine.py's tree).
    """
    if overrides.active and mode.tracing:
        raise TraceError(
            "backward() while tracing: the gradients it writes into .grad are numbers of the trace-time "
            "inputs, which the replay would reuse for every sample. Use grad(..., create_graph=True), "
            "whose gradients are Values the trace records"
        )
    order = cached_topological_order(root, leaves=False)
    with gradient_lock:
        for node in order:
            node.grad = 0.0
        root.grad += gradient
        accumulate_gradients(order)


def accumulate_gradients(order: list[Value]) -> None:
    """Chain rule, from the output back: parent.grad += d(node)/d(parent) · node.grad.

    ``order`` lists the nodes made by operations, each after its parents.
    """
    if mode.anomaly:
        _accumulate_checked(order)
        return
    node = None
    m = FloatMath  # a local name: this loop runs once per node
    try:
        # Specialised by arity: unpacking a known number of parents and
        # derivatives is what makes this loop fast.
        for node in reversed(order):
            rule = node._rule
            arity = rule.arity  # type: ignore[union-attr]
            a = node._left
            g = node.grad
            if arity == 2:
                b = node._right
                da, db = rule.derivative(m, a.data, b.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g  # type: ignore[union-attr]
                b.grad += db * g  # type: ignore[union-attr]
            elif arity == 1:
                (da,) = rule.derivative(m, a.data, node.data)  # type: ignore[union-attr]
                a.grad += da * g  # type: ignore[union-attr]
            else:
                _accumulate_node(node)
    except (ArithmeticError, ValueError):
        # Rare: a derivative Python's floats refuse (a pole, or a NaN or inf
        # input). This node added nothing yet: it and the rest go node by node,
        # where `local_derivatives` raises the project's error or gives IEEE's answer.
        for rest in reversed(order[: order.index(node) + 1]):  # type: ignore[arg-type]
            _accumulate_node(rest)


def _accumulate_node(node: Value) -> None:
    g = node.grad
    parents = node.parents
    local = local_derivatives(node._rule, [p.data for p in parents], node.data)  # type: ignore[arg-type]
    for parent, d in zip(parents, local):
        parent.grad += d * g


def _accumulate_checked(order: list[Value]) -> None:
    # Under detect_anomaly: one node at a time, each contribution checked.
    from .anomaly import check_backward

    for node in reversed(order):
        _accumulate_node(node)
        check_backward(node)


def local_derivatives(rule: Rule, inputs: list[float], y: float) -> tuple[float, ...]:
    """``rule``'s local derivatives at ``inputs`` (output ``y``), by the numeric policy of `ops.FloatMath`.

    Where Python's floats raise: with every input finite, a derivative that is
    infinite or undefined there (√x at 0, aⁿ·log(a) for a < 0) is the project's
    error naming the op; once an input is NaN or infinite, IEEE's answer (so
    ``nan / 0`` is nan), which propagates as in PyTorch.
    """
    try:
        return rule.derivative(FloatMath, *inputs, y)  # type: ignore[no-any-return]
    except (ArithmeticError, ValueError) as exc:
        if all(math.isfinite(x) for x in inputs):
            raise derivative_error(rule, inputs, exc) from None
        return rule.derivative(IEEEMath, *[IEEEFloat(x) for x in inputs], IEEEFloat(y))  # type: ignore[no-any-return]


def derivative_error(rule: Rule, inputs: list[float], exc: Exception) -> Exception:
    """Turn a float error met while differentiating ``rule`` at ``inputs`` into one of the project's.

    A pole of a division (ZeroDivisionError: 1/(2√x) at 0) is a
    DivisionByZeroError, a point outside the domain (ValueError: log(a) for
    a < 0) a DomainError; a project error met in a recorded derivative keeps its class.
    """
    from .errors import AutogradError, DivisionByZeroError, DomainError

    args = ", ".join(repr(x) for x in inputs)
    message = (
        f"backward through {rule.name}({args}): the derivative is not finite here"
        f" ({exc}); {rule.domain or 'move the input away from this point'}"
    )
    if isinstance(exc, AutogradError):
        return type(exc)(message)
    if isinstance(exc, ZeroDivisionError):
        return DivisionByZeroError(message)
    return DomainError(message)
