"""Functions of a vector of Values that models share: softmax, log_softmax, cross-entropy.

Names and conventions follow ``torch.nn.functional``. Each is written with the
ops of the rule table, so its gradient is the engine's chain rule, not a formula
of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from autograd import Value, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from autograd.value import constant

from .module import plain

Operand = Union[Value, int, float]


def _logits(z: Sequence[Operand], where: str) -> list[Value]:
    z = plain(z, where)  # a numpy array of numbers is taken as its list
    if isinstance(z, (str, bytes, Value)) or not isinstance(z, Sequence):
        raise InvalidTypeError(f"{where}: expected a list of logits, got {type(z).__name__}")
    if not z:
        raise ShapeError(f"{where}: needs at least one logit, got none")
    return [v if type(v) is Value else constant(v, where) for v in z]


def log_softmax(z: Sequence[Operand]) -> list[Value]:
    """log(e^(z_i) / Σ_j e^(z_j)) = (z_i − m) − log Σ_j e^(z_j − m), with m = max z.

    Subtracting the same m from every logit changes neither the result nor its
    gradient (it cancels), and keeps every exponent ≤ 0, so logits of ±1,000 give
    finite numbers. m is read as a number: its gradient would be zero anyway.
    """
    logits = _logits(z, "log_softmax")
    m = max(v.data for v in logits)
    shifted = [v - m for v in logits]
    log_total = sum_values([s.exp() for s in shifted]).log()
    return [s - log_total for s in shifted]


def softmax(z: Sequence[Operand]) -> list[Value]:
    """e^(z_i) / Σ_j e^(z_j), computed as e^(z_i − m) / Σ_j e^(z_j − m) (see `log_softmax`).

    ∂softmax_i/∂z_j = softmax_i·(δ_ij − softmax_j).
    """
    logits = _logits(z, "softmax")
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    total = sum_values(exps)
    return [e / total for e in exps]


def cross_entropy(logits: Sequence[Operand], target: int) -> Value:
    """E = −log softmax(z)[target] for one sample's K logits and its class (0 ≤ target < K).

    ∂E/∂z_i = softmax(z)_i − [i = target]: the predicted probabilities minus the
    one-hot target. As ``torch.nn.functional.cross_entropy`` for one sample.
    """
    scores = _logits(logits, "cross_entropy")
    if isinstance(target, bool) or not isinstance(target, int):
        raise InvalidTypeError(
            f"cross_entropy: target must be an int class index, got {type(target).__name__} {target!r}"
        )
    if not 0 <= target < len(scores):
        raise InvalidArgumentError(f"cross_entropy: target {target} is not a class of {len(scores)} logits")
    m = max(v.data for v in scores)
    log_total = sum_values([(v - m).exp() for v in scores]).log()
    return log_total - (scores[target] - m)
