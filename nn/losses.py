"""Loss functions: E(o, t) for predictions o and targets t, as one Value to back-propagate.

Each takes predictions (a Value, or a list of Values or numbers) and targets of
the same length (numbers or Values; a numpy array of numbers for either) and
returns one Value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

from autograd import Value, ops, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from autograd.mode import mode
from autograd.value import apply, as_float

from . import functional
from .modules import plain

Operand = Union[Value, int, float]
Outputs = Union[Operand, Sequence[Operand]]
Loss = Callable[[Outputs, Outputs], Value]

# PyTorch floors log(p) at -100 in binary_cross_entropy (see `binary_cross_entropy`).
LOG_FLOOR = ops.BCE_LOG_FLOOR


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
    x = plain(x, what)
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

    Value and gradient are those of ``torch.nn.functional.binary_cross_entropy``
    (one row of the op table, `autograd.ops.BINARY_CROSS_ENTROPY`, so eager mode,
    ``grad(..., create_graph=True)`` and traced replay agree):

    - each logarithm is floored at -100, so a saturated prediction (a sigmoid
      rounded to exactly 0.0 or 1.0) gives a finite loss instead of log(0);
    - ∂E/∂p_k = (p_k - t_k) / (n·max(p_k·(1 - p_k), ε)) with PyTorch's ε = 1e-12
      (as a float32): 0 at p = t = 0 or 1, about ±1e12/n where p(1 - p) < ε,
      so a prediction saturated on the wrong side is still pushed back;
    - ∂E/∂t_k = (max(log(1 - p_k), -100) - max(log p_k, -100))/n, the derivative of
      the floored loss. Here alone PyTorch differs: it leaves these logs unfloored,
      so its target gradient is ±inf at p = 0 or 1 and beyond ±100 for p < e^-100.
      Targets are constants in training; this matters only if you differentiate
      with respect to them.
    """
    terms = []
    for p, t in pairs(predictions, targets, "binary_cross_entropy"):
        if not 0.0 <= p.data <= 1.0:
            raise InvalidArgumentError(f"binary_cross_entropy: predictions must be in [0, 1], got {p.data}")
        # .data, not float(): float() of a Value is refused while tracing, and the rule checks replays.
        target = t if type(t) is Value else Value(float(t), requires_grad=False)
        if not 0.0 <= target.data <= 1.0:
            raise InvalidArgumentError(f"binary_cross_entropy: targets must be in [0, 1], got {target.data}")
        terms.append(apply(ops.BINARY_CROSS_ENTROPY, (p, target)))
    return _mean(terms)


def hinge(predictions: Outputs, targets: Outputs) -> Value:
    """E = (1/n)·Σ_k max(0, 1 - t_k·o_k) for targets t_k ∈ {-1, +1};
    ∂E/∂o_k = -t_k/n where t_k·o_k < 1, else 0.

    max(0, ·) is the relu row of the table, so the loss can be traced (`autograd.trace`)
    with the targets as traced inputs. Targets are checked where they are numbers: plain
    numbers always, Values in eager mode. While tracing, a target Value stands for every
    sample's target and its number is not read (that would freeze the example's); the
    replay computes the formula for whatever targets it is given.
    """
    terms = []
    for o, t in pairs(predictions, targets, "hinge"):
        if isinstance(t, Value):
            number = None if mode.tracing else t.data
        else:
            number = t
        if number is not None and number not in (-1.0, 1.0):
            raise InvalidArgumentError(f"hinge: targets must be -1 or +1, got {number}")
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


def cross_entropy(
    logits: Sequence[Sequence[Operand]] | Sequence[Operand], targets: int | Value | Sequence[int | Value]
) -> Value:
    """Softmax cross-entropy, E = −log softmax(z)[t], for K-class problems.

    One sample: ``logits`` a list of K logits, ``targets`` its class. A batch: a
    list of such lists and a list of classes; E is then the mean over the batch,
    as ``torch.nn.functional.cross_entropy`` (reduction="mean").
    ∂E/∂z_i = softmax(z)_i − [i = t] (divided by the batch size for a batch).
    A class may be a Value holding it (a traced input: see `nn.functional.cross_entropy`).
    """
    one_sample = functional.cross_entropy
    targets = plain(targets, "cross_entropy (targets)")
    if (isinstance(targets, int) and not isinstance(targets, bool)) or type(targets) is Value:
        return one_sample(logits, targets)  # type: ignore[arg-type]
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
        raise InvalidTypeError(
            f"cross_entropy: targets must be a class index or a list of them, got {type(targets).__name__}"
        )
    if len(logits) != len(targets):
        raise ShapeError(f"cross_entropy: {len(logits)} samples of logits but {len(targets)} targets")
    if not targets:
        raise ShapeError("cross_entropy: needs at least one sample, got none")
    losses = [one_sample(z, t) for z, t in zip(logits, targets)]  # type: ignore[arg-type]
    return sum_values(losses) * (1.0 / len(losses))


#: Losses that take a class index 0..K-1 as the target of K logits (PyTorch's convention).
CLASS_INDEX_LOSSES: tuple[Callable[..., Any], ...] = (cross_entropy, functional.cross_entropy)
