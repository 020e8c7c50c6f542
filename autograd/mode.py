"""Per-thread switches of the engine: gradient recording and anomaly detection.

Kept in one thread-local object so that the hot path of every operation reads a
single attribute (`fast`) to know whether it may record the plain way.
"""

from __future__ import annotations

import threading


class _ThreadMode(threading.local):
    grad_enabled: bool = True
    anomaly: bool = False
    # True when recording without anomaly checks: the common, fast case.
    fast: bool = True
    # True while `autograd.trace` records a function: reading a Value's number
    # (a comparison, float()) would freeze a branch, so those raise TraceError.
    tracing: bool = False

    def update(self) -> None:
        self.fast = self.grad_enabled and not self.anomaly


mode = _ThreadMode()


def is_grad_enabled() -> bool:
    """Whether operations on Values are currently recorded (in this thread)."""
    return mode.grad_enabled
