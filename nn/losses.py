"""Loss functions: E(o, t) for predictions o and targets t, as one Value to back-propagate.

Each takes predictions (a Value, or a list of Values or numbers) and targets of
the same length (numbers or Values) and returns one Value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

from autograd import Value, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from autograd.value import as_float

Operand = Union[Value, int, float]
Outputs = Union[Operand, Sequence[Operand]]
Loss = Callable[[Outputs, Outputs], Value]

# PyTorch clamps log(p) at -100 in binary_cross_entropy; the same bound here makes
# the losses agree everywhere and keeps a saturated output (p = 0.0 or 1.0) finite.
LOG_FLOOR = -100.0
_SMALLEST_LOGGED = math.exp(LOG_FLOOR)


def pairs(predictions: Outputs, targets: Outputs, loss: str) -> list[tuple[Value, Operand]]:
    """(o_k, t_k) for each output; a lone Value or number counts as a list of one."""
    outputs = _as_list(predictions, f"{loss} (predictions)")
    wanted = _as_list(targets, f"{loss} (targets)")
    if len(outputs) != len(wanted):
        raise ShapeError(f"{loss}: {len(outputs)} predictions but {len(wanted)} targets")
    if not outputs:
        raise ShapeError(f"{loss}: needs at least one prediction, got none")
    return [(o if type(o) is Value else Value(float(o), requires_grad=False), t) for o, t in zip(outputs, wanted)]


def _as_list(x: Outputs, what: str) -> list[Operand]:
    if type(x) is Value:
        return [x]  # type: ignore[list-item]
    if isinstance(x, (str, bytes)) or not isinstance(x, (Sequence, int, float)):
        raise InvalidTypeError(f"{what}: expected a Value, a number or a list of them, got {type(x).__name__}")
    items = list(x) if isinstance(x, Sequence) else [x]
    return [v if type(v) is Value else as_float(v, f"{what}[{k}]") for k, v in enumerate(items)]


def mse(predictions: Outputs, targets: Outputs) -> Value:
    """Mean squared error: E = (1/n)·Σ_k (o_k - t_k)²; ∂E/∂o_k = (2/n)(o_k - t_k)."""
    terms = [(o - t) ** 2 for o, t in pairs(predictions, targets, "mse")]
    return _mean(terms)


def sse_half(predictions: Outputs, targets: Outputs) -> Value:
    """The textbook error E = ½·Σ_k (t_k - o_k)², whose derivative is ∂E/∂o_k = o_k - t_k."""
    terms = [(t - o) ** 2 for o, t in pairs(predictions, targets, "sse_half")]
    return 0.5 * sum_values(terms)


def binary_cross_entropy(predictions: Outputs, targets: Outputs) -> Value:
    """E = -(1/n)·Σ_k [t_k·log p_k + (1 - t_k)·log(1 - p_k)] for probabilities p_k in [0, 1].

    ∂E/∂p_k = (p_k - t_k) / (n·p_k·(1 - p_k)). As in PyTorch's
    ``binary_cross_entropy``, each logarithm is clamped below at -100: when
    p_k (or 1 - p_k) is below e^-100 — in floats, a sigmoid saturated to
    exactly 0.0 or 1.0 — that log term is the constant -100 and passes no
    gradient, so the loss stays finite instead of raising on log(0).
    """
    terms = []
    for p, t in pairs(predictions, targets, "binary_cross_entropy"):
        if not 0.0 <= p.data <= 1.0:
            raise InvalidArgumentError(f"binary_cross_entropy: predictions must be in [0, 1], got {p.data}")
        t_value = float(t)
        if not 0.0 <= t_value <= 1.0:
            raise InvalidArgumentError(f"binary_cross_entropy: targets must be in [0, 1], got {t_value}")
        terms.append(t * _clamped_log(p) + (1 - t) * _clamped_log(1 - p))
    return -_mean(terms)


def _clamped_log(p: Value) -> Value:
    # A branch on the data: the constant has no parents, so no gradient flows there.
    return p.log() if p.data > _SMALLEST_LOGGED else Value(LOG_FLOOR, requires_grad=False)


def hinge(predictions: Outputs, targets: Outputs) -> Value:
    """E = (1/n)·Σ_k max(0, 1 - t_k·o_k) for targets t_k ∈ {-1, +1};
    ∂E/∂o_k = -t_k/n where t_k·o_k < 1, else 0."""
    terms = []
    for o, t in pairs(predictions, targets, "hinge"):
        t_value = float(t)
        if t_value not in (-1.0, 1.0):
            raise InvalidArgumentError(f"hinge: targets must be -1 or +1, got {t_value}")
        terms.append((1 - t * o).relu())
    return _mean(terms)


def _mean(terms: list[Value]) -> Value:
    """(1/n)·Σ terms; for one term, the term itself (no "/ 1" node in the graph of one sample)."""
    return terms[0] if len(terms) == 1 else sum_values(terms) / len(terms)


#: The losses by name (used by the command line).
LOSSES: dict[str, Loss] = {
    "mse": mse,
    "sse_half": sse_half,
    "binary_cross_entropy": binary_cross_entropy,
    "hinge": hinge,
}
