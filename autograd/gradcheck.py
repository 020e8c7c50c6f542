"""`gradcheck`: compare analytic partial derivatives with central finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .errors import GradcheckError, InvalidArgumentError, InvalidTypeError
from .functional import grad
from .value import Value, as_float


def gradcheck(
    fn: Callable[..., Value],
    inputs: Sequence[float],
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-4,
) -> bool:
    """Check every ∂fn/∂x_i against ``(fn(x + eps·e_i) - fn(x - eps·e_i)) / (2·eps)``.

    Like ``torch.autograd.gradcheck``: ``fn`` is called with one fresh Value
    per input, positionally (``fn(a, b)``), and must return one Value.
    Input ``i`` passes when ``|analytic - numerical| <= atol + rtol·|numerical|``
    and both are finite: a NaN or infinite derivative fails (a comparison with
    NaN is always false, so it would otherwise pass unseen).

    Returns:
        True when every partial derivative agrees.

    Raises:
        GradcheckError: naming the first input index that disagrees or whose
            derivative is not finite, with the analytic and numerical values.

    >>> gradcheck(lambda a, b: a * b.sin(), [1.5, 0.3])
    True
    """
    point = [as_float(x, f"gradcheck: inputs[{i}]") for i, x in enumerate(inputs)]
    if not callable(fn):
        raise InvalidTypeError(f"gradcheck: fn must be callable, got {type(fn).__name__}")
    if not eps > 0:
        raise InvalidArgumentError(f"gradcheck: eps must be positive, got {eps}")
    variables = [Value(x, label=f"x{i}") for i, x in enumerate(point)]
    output = fn(*variables)
    if type(output) is not Value:
        raise InvalidTypeError(
            f"gradcheck: fn must return a Value, got {type(output).__name__}"
        )
    analytic = [float(g) for g in grad(output, variables)]

    def evaluate(at: list[float]) -> float:
        # Recorded, not under no_grad: fn may itself call grad() (a derivative
        # checked as a function), which needs the graph of its argument.
        return fn(*[Value(x) for x in at]).data

    for i, a in enumerate(analytic):
        plus, minus = list(point), list(point)
        plus[i] += eps
        minus[i] -= eps
        numerical = (evaluate(plus) - evaluate(minus)) / (2.0 * eps)
        if not (math.isfinite(a) and math.isfinite(numerical)):
            raise GradcheckError(
                f"gradcheck: d(output)/d(inputs[{i}]) at {point} is not finite: analytic {a!r}, "
                f"numerical {numerical!r} (eps={eps})"
            )
        if abs(a - numerical) > atol + rtol * abs(numerical):
            raise GradcheckError(
                f"gradcheck: d(output)/d(inputs[{i}]) at {point}: analytic {a!r} "
                f"but numerical {numerical!r} (eps={eps}, atol={atol}, rtol={rtol})"
            )
    return True
