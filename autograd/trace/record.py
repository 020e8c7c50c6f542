"""Recording: `trace` calls a function once on Values and hands its graph to `Trace`; `indices`
marks the arguments that hold integer indices; `traced` (`TracedByShape`) traces once per shape.

Integer inputs that pick (a token id, a class: an example wrapped in `indices`) are
traced inputs like any other; the nodes of the rule `ops.SELECT` that read them, y = v_i,
are replayed per level as one gather, each sample picking its own choice's row of ``S``,
and backward adds each sample's gradient into the row it picked (`_Select`). The layers
of one level with the same weights over different inputs (a sequence model applies each
matrix at every position) become one batched product (`_StackedLayer`). A node of the row
`ops.STOP_GRADIENT` passes its number on as a constant: nothing behind it needs a gradient
for it, so the replay computes none (softmax's shift, see `nn.functional`). A function whose
graph depends on the shape of its arguments (a name read token by token) is traced once per
shape by `traced` (`TracedByShape`), which keeps the traces by the arguments' shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

from ..errors import InvalidArgumentError, InvalidTypeError, ShapeError, TraceError
from ..mode import mode
from ..value import Value, as_float
from .kernels import _numpy
from .replay import Trace


class Indices:
    """An example of integer indices for `trace` (made by `indices`): its argument holds indices."""

    __slots__ = ("example",)

    def __init__(self, example: Sequence[int] | int) -> None:
        self.example = example

    def __repr__(self) -> str:
        return f"indices({self.example!r})"


def indices(example: Sequence[int] | int) -> Indices:
    """Mark an example of `trace` as integer indices (token ids, classes): a list of ints, or one int.

    The argument is traced like any other (a Value per index; `select` and what is built on
    it, `nn.Embedding`, `nn.functional.cross_entropy`, pick with it), and every replay checks
    that it holds integers >= 0 (and, where an index picks, below the number of choices).
    """
    return Indices(example)


Example = Union[Sequence[float], float, Indices]


def trace(fn: Callable[..., Any], example: Example, *more: Example) -> Trace:
    """Record ``fn``'s graph once; replay it over batches with `Trace.forward` / `Trace.backward`.

    Each example gives one positional argument of ``fn``: a list of numbers
    becomes a list of Values, a number a single Value. ``fn`` runs once on the
    examples (so they must be valid inputs) and returns a Value or a list of Values.
    An example wrapped in `indices` holds integer indices (token ids, classes).

    >>> w = Value(3.0)
    >>> step = trace(lambda x: w * x[0] + x[1], example=[0.0, 0.0])
    >>> step.forward([[1.0, 2.0], [2.0, 0.5]]).tolist()
    [5.0, 6.5]
    >>> step.backward()      # ∂/∂w of the sum over the batch: 1 + 2
    >>> w.grad
    3.0
    """
    np = _numpy()
    if not callable(fn):
        raise InvalidTypeError(f"trace: fn must be callable, got {type(fn).__name__}")
    shapes: list[int | None] = []
    arguments: list[Any] = []
    inputs: list[Value] = []
    index_arguments: list[bool] = []
    for a, spec in enumerate((example, *more)):
        is_index = isinstance(spec, Indices)
        if is_index:
            spec = spec.example  # type: ignore[union-attr]
        if isinstance(spec, np.ndarray):  # a numpy example is taken as its list (or number)
            spec = spec.tolist()
        number = _index_number if is_index else as_float
        prefix = "i" if is_index else "x"
        if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
            values = [Value(number(x, f"trace: example {a}[{i}]"), label=f"{prefix}{len(inputs) + i + 1}")
                      for i, x in enumerate(spec)]
            shapes.append(len(values))
            arguments.append(values)
            inputs.extend(values)
        else:
            value = Value(number(spec, f"trace: example {a}"), label=f"{prefix}{len(inputs) + 1}")
            shapes.append(None)
            arguments.append(value)
            inputs.append(value)
        index_arguments.append(is_index)
    mode.enter(grad_enabled=True, tracing=True)
    try:
        result = fn(*arguments)
    finally:
        mode.leave()
    single = type(result) is Value
    outputs = [result] if single else list(result) if isinstance(result, (list, tuple)) else None
    if not outputs or any(type(v) is not Value for v in outputs):
        raise TraceError(f"trace: fn must return a Value or a non-empty list of Values, got {result!r}")
    return Trace(fn, shapes, inputs, outputs, single, index_arguments)


def _index_number(x: object, what: str) -> float:
    """An index of an `indices` example: an integer >= 0 (an int, or a float such as 3.0; not a bool), as a float."""
    number = as_float(x, what)
    if number < 0.0 or not number.is_integer():
        raise InvalidArgumentError(f"{what}: an index must be an integer >= 0, got {x!r}")
    return number


class TracedByShape:
    """``fn`` traced once per shape of its arguments, each trace replayed from then on.

    ``forward(*batches)`` looks up the trace made for these arguments' shapes (the
    number of entries of each argument of one sample: a name of 7 tokens, of 9 tokens…);
    at the first batch of a shape it traces ``fn`` on that batch's first sample. A
    sequence model thus traces once per length and replays after that. ``backward(dout)``
    goes to the trace of the latest ``forward``. The arguments at positions ``indices``
    hold integer indices (see `indices`).

    The limit of `trace` holds per shape: Python control flow in ``fn`` runs once, when a
    shape is first seen, so it may depend on the lengths but not on the numbers.
    ``traces`` holds the traces made so far, keyed by the shapes.
    """

    def __init__(self, fn: Callable[..., Any], indices: Sequence[int] = ()) -> None:
        if not callable(fn):
            raise InvalidTypeError(f"traced: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.indices = frozenset(indices)
        self.traces: dict[tuple[tuple[int, ...], ...], Trace] = {}
        self._last: Trace | None = None

    def forward(self, *batches: Any) -> Any:
        """The outputs of ``fn`` for every sample, by the trace of these shapes (made now if new)."""
        np = _numpy()
        try:
            arrays = [np.asarray(batch) for batch in batches]
        except ValueError as exc:
            raise ShapeError(f"traced: a batch argument is not rectangular ({exc})") from None
        for a, array in enumerate(arrays):
            if array.ndim == 0 or len(array) == 0:
                raise ShapeError(f"traced: argument {a} must be a non-empty batch, got shape {array.shape}")
        key = tuple(array.shape[1:] for array in arrays)
        step = self.traces.get(key)
        if step is None:
            examples = [
                indices(array[0].tolist()) if a in self.indices else array[0].tolist() for a, array in enumerate(arrays)
            ]
            step = self.traces[key] = trace(self.fn, *examples)
        self._last = step
        return step.forward(*arrays)

    def backward(self, dout: Any = 1.0) -> None:
        """`Trace.backward` of the trace the latest ``forward`` used."""
        if self._last is None:
            raise TraceError("traced: call forward(batch) first")
        self._last.backward(dout)

    def __repr__(self) -> str:
        return f"traced({getattr(self.fn, '__name__', 'fn')}: {len(self.traces)} traces)"


def traced(fn: Callable[..., Any], indices: Sequence[int] = ()) -> TracedByShape:
    """``fn`` traced once per shape of its arguments (`TracedByShape`); ``indices``: the arguments holding indices.

    >>> from autograd import sum_values
    >>> w = Value(2.0)
    >>> total = traced(lambda x: w * sum_values(x))
    >>> total.forward([[1.0, 2.0]]).tolist(), total.forward([[1.0, 2.0, 3.0]]).tolist()
    ([6.0], [12.0])
    >>> len(total.traces)
    2
    """
    return TracedByShape(fn, indices)
