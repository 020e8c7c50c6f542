"""Per-thread switches of the engine: gradient recording and anomaly detection.

Kept in one thread-local object, `mode`. Reading a thread-local attribute is
slow next to the rest of an operation, so `overrides` also counts, across all
threads, the `enter` calls not yet left: while there are none, every thread has
the defaults (recording, no anomaly checks, not tracing), and the hot path of
an operation reads that one plain attribute instead.
"""

from __future__ import annotations

import threading
from typing import Any


class _Overrides:
    """How many `mode.enter` calls, in all threads, are not yet left."""

    # An instance attribute in a slot: the quickest kind to read.
    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = 0


overrides = _Overrides()
_overrides_lock = threading.Lock()


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

    def enter(self, **switches: bool) -> None:
        """Set switches for this thread until the matching `leave`; nestable."""
        with _overrides_lock:
            overrides.active += 1
        saved: list[dict[str, Any]] = self.__dict__.setdefault("saved", [])
        saved.append({name: getattr(self, name) for name in switches})
        for name, value in switches.items():
            setattr(self, name, value)
        self.update()

    def leave(self) -> None:
        """Restore the switches as they were before the latest `enter`."""
        for name, value in self.__dict__["saved"].pop().items():
            setattr(self, name, value)
        self.update()
        with _overrides_lock:
            overrides.active -= 1


mode = _ThreadMode()


def is_grad_enabled() -> bool:
    """Whether operations on Values are currently recorded (in this thread)."""
    return mode.grad_enabled
