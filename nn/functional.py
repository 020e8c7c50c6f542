"""Functions of a vector of Values that models share: softmax, log_softmax, cross-entropy, embedding.

Names and conventions follow ``torch.nn.functional``. Each is written with the
ops of the rule table, so its gradient is the engine's chain rule, not a formula
of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from autograd import Value, amax, select, stop_gradient, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from autograd.mode import mode
from autograd.value import constant

from .modules import plain

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
    finite numbers. m is a constant (see `_max_shift`): its gradient would be zero anyway.
    """
    logits = _logits(z, "log_softmax")
    m = _max_shift(logits)
    shifted = [v - m for v in logits]
    log_total = sum_values([s.exp() for s in shifted]).log()
    return [s - log_total for s in shifted]


def softmax(z: Sequence[Operand]) -> list[Value]:
    """e^(z_i) / Σ_j e^(z_j), computed as e^(z_i − m) / Σ_j e^(z_j − m) (see `log_softmax`).

    ∂softmax_i/∂z_j = softmax_i·(δ_ij − softmax_j).
    """
    logits = _logits(z, "softmax")
    m = _max_shift(logits)
    exps = [(v - m).exp() for v in logits]
    total = sum_values(exps)
    return [e / total for e in exps]


def _max_shift(logits: list[Value]) -> Value:
    """m = max_j z_j, the shift of softmax, passed on as a constant: a constant leaf named m in eager mode,
    a node while tracing.

    A number read from ``.data`` would be frozen by `autograd.trace`: a replay on other
    logits would subtract the trace-time maximum (and e^(z − m) could overflow). While
    tracing, m is therefore the max row of the table (`autograd.amax`, one node whatever
    the number of logits, one logit included: every softmax of a traced sequence model is
    then equally deep, and its positions are replayed side by side) over the logits passed
    on as constants (`autograd.stop_gradient`), so that every sample subtracts its own
    maximum and, as in eager mode, no gradient flows through m (it would cancel:
    ∂E/∂m = −Σ_j ∂E/∂(z_j − m) = 0) and the replay computes none.
    """
    if not mode.tracing:
        # One constant node, named: a drawing shows m once, read by every z_j − m, not a copy per use.
        m = constant(max(v.data for v in logits), "softmax")
        m.label = "m"
        return m
    return amax([stop_gradient(z) for z in logits])


def embedding(index: int | Value, weight: Sequence[Sequence[Value]]) -> list[Value]:
    """Row ``index`` of the table ``weight`` (as ``torch.nn.functional.embedding`` for one index).

    An int picks the row by plain indexing. A Value (a token id that is a traced input,
    see `autograd.indices`) picks it with the select row of the table, one column at a
    time: y_j = select(i, w_0j, …, w_(K-1)j), so the graph is the same for every index and
    a replay gathers each sample's own row; ∂y_j/∂w_kj = [k = i].
    """
    if type(index) is Value:
        return [select(index, *column) for column in zip(*weight)]
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidTypeError(f"embedding: index must be an int or a Value, got {type(index).__name__} {index!r}")
    if not 0 <= index < len(weight):
        raise InvalidArgumentError(f"embedding: index {index} is not a row of a table of {len(weight)}")
    return list(weight[index])


def cross_entropy(logits: Sequence[Operand], target: int | Value) -> Value:
    """E = −log softmax(z)[target] for one sample's K logits and its class (0 ≤ target < K).

    ∂E/∂z_i = softmax(z)_i − [i = target]: the predicted probabilities minus the
    one-hot target. As ``torch.nn.functional.cross_entropy`` for one sample.

    Computed as E = log Σ_j e^(z_j − m) − (z_target − m) with m = max_j z_j (`_max_shift`:
    a node while tracing, so a replay subtracts each sample's own maximum and large
    logits stay finite there too; m's gradient cancels, ∂E/∂m = 1 − Σ_j softmax(z)_j = 0).

    ``target`` may also be a Value holding the class, e.g. a traced input when
    `autograd.trace` records the loss of samples of different classes (see
    `autograd.indices`). z_target is then select(t, z_0, …, z_(K-1)), the select row of
    the table, so the graph is the same for every class. Its number is checked in eager
    mode; while tracing it stands for every sample's class and is checked by the replay.
    """
    scores = _logits(logits, "cross_entropy")
    if type(target) is Value:
        if not mode.tracing:
            number = target.data
            _class_index(int(number) if number.is_integer() else number, len(scores))
        chosen = select(target, *scores)
    else:
        chosen = scores[_class_index(target, len(scores))]
    m = _max_shift(scores)
    log_total = sum_values([(v - m).exp() for v in scores]).log()
    return log_total - (chosen - m)


def _class_index(target: object, classes: int) -> int:
    """``target`` checked to be a class: an int in [0, classes)."""
    if isinstance(target, bool) or not isinstance(target, int):
        raise InvalidTypeError(
            f"cross_entropy: target must be an int class index, got {type(target).__name__} {target!r}"
        )
    if not 0 <= target < classes:
        raise InvalidArgumentError(f"cross_entropy: target {target} is not a class of {classes} logits")
    return target
