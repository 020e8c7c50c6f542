"""The exception family of the project.

Every error raised on purpose by `autograd` (and by `nn`, which builds on it)
derives from `AutogradError` *and* from the matching built-in exception, so
callers may catch either ``autograd.errors.DomainError`` or plain ``ValueError``.
Each message names the operation, the offending value and what to do about it.
"""

from __future__ import annotations


class AutogradError(Exception):
    """Base class of every error this project raises on purpose."""


class InvalidTypeError(AutogradError, TypeError):
    """An argument has the wrong type, e.g. ``Value("3")`` or ``x * "a"``."""


class InvalidArgumentError(AutogradError, ValueError):
    """An argument has the right type but an unusable value (NaN, negative size...)."""


class DomainError(AutogradError, ValueError):
    """A math function was asked for a value outside its domain, e.g. ``log(-1)``."""


class DivisionByZeroError(AutogradError, ZeroDivisionError):
    """Division by zero, or zero raised to a negative power."""


class NumericOverflowError(AutogradError, OverflowError):
    """A result is too large to be represented as a float, e.g. ``exp(1000)``."""


class NonFiniteError(AutogradError, FloatingPointError):
    """A NaN or infinity appeared while anomaly detection (or a trainer) watched."""


class ShapeError(AutogradError, ValueError):
    """Lengths do not match: wrong input size for a layer, mismatched targets..."""


class ModelFileError(AutogradError, ValueError):
    """A saved model or state dict is malformed: truncated, wrong shapes, non-numbers."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """There is no file to load at the path given (catch it as either parent)."""


class SavePathError(AutogradError, OSError):
    """A file cannot be written at this path: it is empty, a directory, a FIFO, a device or a socket."""


class TraceError(AutogradError, RuntimeError):
    """A function cannot be traced faithfully, e.g. it branches on a traced value."""


class GradcheckError(AutogradError, RuntimeError):
    """An analytic gradient disagrees with its finite-difference estimate."""


__all__ = [
    "AutogradError",
    "InvalidTypeError",
    "InvalidArgumentError",
    "DomainError",
    "DivisionByZeroError",
    "NumericOverflowError",
    "NonFiniteError",
    "ShapeError",
    "ModelFileError",
    "ModelFileNotFoundError",
    "SavePathError",
    "TraceError",
    "GradcheckError",
]
