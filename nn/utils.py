"""Gradient clipping: keep one bad batch from throwing the weights far away.

Names, arguments and return values follow ``torch.nn.utils``. Both functions
change the parameters' ``.grad`` in place, between ``backward()`` and
``optimizer.step()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from autograd.value import as_float


def clip_grad_norm_(
    parameters: Iterable[Value] | Value,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale every gradient by c = min(1, max_norm / (‖g‖ + 10⁻⁶)) and return ‖g‖.

    ‖g‖ is the p-norm of all the gradients taken together, (Σᵢ |gᵢ|ᵖ)^(1/p)
    (p = ``norm_type``; ``math.inf`` gives maxᵢ |gᵢ|). The direction of the
    gradient is kept, only its length is capped at ``max_norm``. The 10⁻⁶ is
    PyTorch's, so the result equals ``torch.nn.utils.clip_grad_norm_``'s.
    """
    params = _parameters(parameters, "clip_grad_norm_")
    max_norm = as_float(max_norm, "clip_grad_norm_ (max_norm)")
    if max_norm < 0.0:
        raise InvalidArgumentError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    p = float(norm_type) if norm_type == math.inf else as_float(norm_type, "clip_grad_norm_ (norm_type)")
    if not p > 0.0:
        raise InvalidArgumentError(f"clip_grad_norm_: norm_type must be > 0, got {p}")
    grads = [abs(float(v.grad)) for v in params]
    if not grads:
        return 0.0
    if p == math.inf:
        total = max(grads)
    elif p == 2.0:
        total = math.hypot(*grads)
    else:
        total = math.fsum(g**p for g in grads) ** (1.0 / p)
    if error_if_nonfinite and not math.isfinite(total):
        raise NonFiniteError(
            f"clip_grad_norm_: the total norm of the gradients is {total}; they cannot be clipped"
        )
    scale = clip_coefficient(total, max_norm)
    for v in params:
        v.grad = float(v.grad) * scale
    return total


def clip_coefficient(total: float, max_norm: float) -> float:
    """c = min(1, max_norm / (‖g‖ + 10⁻⁶)): the factor `clip_grad_norm_` scales the gradients by."""
    return min(1.0, max_norm / (total + 1e-6))


def clip_grad_value_(parameters: Iterable[Value] | Value, clip_value: float) -> None:
    """Clamp every gradient into [-clip_value, clip_value] (each one on its own, unlike `clip_grad_norm_`)."""
    params = _parameters(parameters, "clip_grad_value_")
    limit = as_float(clip_value, "clip_grad_value_ (clip_value)")
    if limit < 0.0:
        raise InvalidArgumentError(f"clip_grad_value_: clip_value must be >= 0, got {limit}")
    for v in params:
        v.grad = min(max(float(v.grad), -limit), limit)


def _parameters(parameters: Iterable[Value] | Value, where: str) -> list[Value]:
    if isinstance(parameters, Value):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise InvalidTypeError(
            f"{where}: expected a Value or an iterable of Values, got {type(parameters).__name__}"
        ) from None
    for i, v in enumerate(params):
        if not isinstance(v, Value):
            raise InvalidTypeError(f"{where}: parameters[{i}] must be a Value, got {type(v).__name__}")
    return params
