"""A scalar reverse-mode automatic differentiation engine.

>>> from autograd import Value
>>> x = Value(2.0, label="x")
>>> y = (x * x + 3).sigmoid()
>>> y.backward()
"""

from __future__ import annotations

from .anomaly import detect_anomaly
from .backward import topological_order
from .draw import draw_graph
from .errors import AutogradError, GradcheckError
from .exercises import check_derivative
from .functional import grad, no_grad
from .functions import amax, atan2, define_op, hypot, maximum, minimum, select, stop_gradient
from .gradcheck import gradcheck
from .mode import is_grad_enabled
from .trace import Trace, TracedByShape, indices, trace, traced
from .value import Value, sum_values
from .viz import walkthrough

__all__ = [
    "Value",
    "grad",
    "no_grad",
    "gradcheck",
    "GradcheckError",
    "AutogradError",
    "detect_anomaly",
    "is_grad_enabled",
    "sum_values",
    "topological_order",
    "draw_graph",
    "trace",
    "Trace",
    "check_derivative",
    "walkthrough",
    "define_op",
    "atan2",
    "hypot",
    "maximum",
    "minimum",
    "amax",
    "select",
    "stop_gradient",
    "indices",
    "traced",
    "TracedByShape",
]
__version__ = "0.1.0"
