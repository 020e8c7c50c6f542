"""`detect_anomaly`: stop at the first operation that produces a NaN or infinity.

Off by default. When on, the engine leaves its fast path and checks every
forward value and every gradient contribution, naming the op, its inputs and
the labels of the nodes involved (like ``torch.autograd.detect_anomaly``).

Off, the engine follows its numeric policy (`ops.FloatMath`), that of IEEE 754
and PyTorch: an overflow gives ±inf and NaN and inf propagate through every op,
so ``Value(1000).exp()`` is inf and ``relu(nan)`` is nan; only a pole or a point
outside a domain at finite inputs raises. This block is how to stop at the
first of them instead.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import NonFiniteError
from .mode import mode

if TYPE_CHECKING:
    from .ops import Rule
    from .value import Value


class detect_anomaly:
    """Context manager: raise `NonFiniteError` at the first non-finite value or gradient."""

    def __enter__(self) -> detect_anomaly:
        mode.enter(anomaly=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        mode.leave()


def label_path(node: Value, limit: int = 6, budget: int = 10_000) -> str:
    """A short description of where a node sits: its label or its nearest labelled ancestors.

    Breadth-first, visiting at most ``budget`` nodes: the message of an error in a graph
    of a million unlabelled nodes must not take longer than the computation did.
    """
    if node.label:
        return node.label
    if node.is_leaf:
        return "input" if node.requires_grad else "constant"
    found: list[str] = []
    seen: set[int] = set()
    frontier = deque(node.parents)
    while frontier and len(found) < limit and len(seen) < budget:
        parent = frontier.popleft()
        if id(parent) in seen:
            continue
        seen.add(id(parent))
        if parent.label:
            found.append(parent.label)
        else:
            frontier.extend(parent.parents)
    return f"computed from {', '.join(found)}" if found else "unlabelled"


def _describe_inputs(parents: tuple[Any, ...]) -> str:
    return ", ".join(f"{p.label or ('input' if p.requires_grad else 'const')}={p.data!r}" for p in parents)


def check_forward(rule: Rule, data: float, parents: tuple[Value, ...]) -> None:
    if not math.isfinite(data):
        where = ", ".join(label_path(p) for p in parents)
        raise NonFiniteError(
            f"anomaly in forward: {rule.name}({_describe_inputs(parents)}) = {data} "
            f"[inputs: {where}]; check the inputs or guard the operation"
        )


def check_backward(node: Value) -> None:
    for parent in node.parents:
        check_gradient(node, parent, parent.grad, node.grad)


def check_gradient(node: Value, parent: Value, gradient: Any, upstream: Any) -> None:
    """Raise if ``gradient`` (accumulated into ``parent`` through ``node``) is not finite."""
    if isinstance(gradient, float) and not math.isfinite(gradient):
        raise NonFiniteError(
            f"anomaly in backward: gradient {gradient} flowing through "
            f"{node.op}({_describe_inputs(node.parents)}) into {label_path(parent)}"
            f" (output grad {upstream!r}); check the inputs or guard the operation"
        )
