"""`trace`: record a function's graph once, then replay it over whole batches with numpy.

The graph of a model is the same for every sample; only the numbers change.
``trace(fn, example)`` calls ``fn`` once on Values and keeps the graph as a
flat tape of *slots*: the traced inputs, the parameters (leaves that require a
gradient: the replay re-reads their ``.data`` every time and adds the batch's
gradient to their ``.grad``), the constants (frozen at trace time) and one slot
per operation. A replay holds every slot as a row of a 2-D array ``S`` of shape
(slots, batch): row ``s`` has one entry per sample.

Replaying the tape one scalar at a time would cost one numpy call per node
(hundreds per pass, each slower than the float it replaces). Instead the tape
is cut into *groups*: the operations with the same rule at the same depth
(level = 1 + the deepest parent's level, leaves at 0). Nodes of one level never
depend on each other, so a whole group is one call of the rule's forward on
(m, batch) blocks: parent j of every node in the group is gathered from ``S``
and the group's outputs are written to consecutive rows. Slots are numbered so
that these gathers are mostly strided slices (views, no copy): a group's
outputs are consecutive, and leaves are numbered in the order the groups read
them. A 2-16-16-1 MLP with its loss is ten groups, whatever the batch size.

Backward walks the groups in reverse with a second array ``G`` of the same
shape, ∂(output)/∂(slot) per sample. For a group with outputs y and parents
x_j, the rule's derivatives (the same `ops` rows, evaluated with `NumpyMath`)
give the contributions ∂y/∂x_j · G[y], added into G[x_j]. When several nodes of
the group share a parent (a hidden unit feeds every neuron of the next layer)
the repeats are summed first, by a reshape when the pattern is one block read
again and again, else by ``np.add.reduceat`` over an order sorted once at trace
time. Only gradients that can reach a parameter are computed. Finally each
parameter's ``.grad`` receives its row of ``G`` summed over the batch:
∂E/∂w = Σ_p ∂E_p/∂w.

Errors: the rules run with numpy's floating-point errors raised; when a group
fails, the offending entries are evaluated again with the eager rules on plain
floats, which raise the project's usual error (naming the op and the inputs),
here with the sample index added. What eager mode lets through (an overflowing
product gives inf) the replay lets through too, except under `detect_anomaly`,
where the first non-finite value or gradient raises `NonFiniteError` as eagerly.

Limits (as in ``jax.jit``): Python control flow runs once, at trace time. A
comparison or ``float()`` on a Value while tracing raises `TraceError`, and so
does ``no_grad`` inside the traced function; reading ``.data`` directly cannot
be detected and is frozen silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import ops
from .backward import derivative_error, topological_order
from .errors import AutogradError, InvalidArgumentError, InvalidTypeError, NonFiniteError, ShapeError, TraceError
from .mode import mode
from .ops import FloatMath, Rule
from .value import CONSTANT, Value, as_float, evaluate

NUMPY_MISSING = "autograd.trace needs numpy: pip install 'textbook-autograd[fast]'"


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise ImportError(NUMPY_MISSING) from None
    return numpy


class NumpyMath:
    """The math namespace for numpy arrays (traced replay): one entry per sample.

    Same formulas as `ops.FloatMath`, including its overflow-free branches,
    evaluated elementwise.
    """

    @staticmethod
    def exp(x: Any) -> Any:
        import numpy as np

        return np.exp(x)

    @staticmethod
    def log(x: Any) -> Any:
        import numpy as np

        return np.log(x)

    @staticmethod
    def sqrt(x: Any) -> Any:
        import numpy as np

        return np.sqrt(x)

    @staticmethod
    def tanh(x: Any) -> Any:
        import numpy as np

        return np.tanh(x)

    @staticmethod
    def sin(x: Any) -> Any:
        import numpy as np

        return np.sin(x)

    @staticmethod
    def cos(x: Any) -> Any:
        import numpy as np

        return np.cos(x)

    @staticmethod
    def abs(x: Any) -> Any:
        import numpy as np

        return np.abs(x)

    @staticmethod
    def pow(x: Any, n: Any) -> Any:
        import numpy as np

        return np.power(x, n)

    @staticmethod
    def sigmoid(x: Any) -> Any:
        # 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise: e^-|x| never overflows.
        import numpy as np

        e = np.exp(-np.abs(x))
        return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))

    @staticmethod
    def softplus(x: Any) -> Any:
        import numpy as np

        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def relu(x: Any) -> Any:
        import numpy as np

        return np.where(x > 0.0, x, 0.0)

    @staticmethod
    def step(x: Any) -> Any:
        import numpy as np

        return np.where(x > 0.0, 1.0, 0.0)

    @staticmethod
    def sign(x: Any) -> Any:
        import numpy as np

        return np.sign(x)


class _Group:
    """Nodes with one rule at one level, in slots ``start .. start+size-1``.

    ``sources[j]`` selects parent j of every node (a slice or an index array);
    ``scatters`` lists (j, scatter) for the parents whose gradient can reach a
    parameter: the only ones worth computing.
    """

    __slots__ = ("rule", "start", "size", "parents", "sources", "scatters")

    def __init__(self, rule: Rule, start: int, parents: Any) -> None:
        self.rule = rule
        self.start = start
        self.size = parents.shape[1]
        self.parents = parents  # (arity, size) slot numbers
        self.sources = [_slice_or_index(row) for row in parents]
        self.scatters: list[tuple[int, _Scatter]] = []


class _Scatter:
    """Add an (m, batch) block of contributions into rows ``targets`` of G; a target may repeat.

    Repeats are summed first: by a reshape when the targets are one block of
    slots read again and again (a dense layer: every neuron reads every unit
    of the layer below), else by sorting once and ``np.add.reduceat``.
    """

    __slots__ = ("targets", "tiles", "order", "starts")

    def __init__(self, targets: Any) -> None:
        np = _numpy()
        self.tiles = 0
        self.order: Any = None
        self.starts: Any = None
        width = len(np.unique(targets))
        tiles = len(targets) // width
        if width == len(targets):
            self.targets = _slice_or_index(targets)
        elif tiles * width == len(targets) and (targets.reshape(tiles, width) == targets[:width]).all():
            self.tiles = tiles
            self.targets = _slice_or_index(targets[:width])
        else:
            self.order = np.argsort(targets, kind="stable")
            ordered = targets[self.order]
            self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            self.targets = _slice_or_index(ordered[self.starts])

    def add(self, G: Any, block: Any) -> None:
        if self.tiles:
            block = block.reshape(self.tiles, -1, block.shape[-1]).sum(axis=0)
        elif self.order is not None:
            np = _numpy()
            block = np.add.reduceat(block[self.order], self.starts, axis=0)
        G[self.targets] += block


def _slice_or_index(slots: Any) -> Any:
    """A slice when ``slots`` are evenly spaced and increasing (a view, no copy), else the array."""
    n = len(slots)
    first = int(slots[0])
    if n == 1:
        return slice(first, first + 1)
    step = int(slots[1]) - first
    if step > 0 and (slots == range(first, first + step * n, step)).all():
        return slice(first, first + step * n, step)
    return slots


class Trace:
    """A function's graph recorded by `trace`, replayed over batches with numpy.

    ``forward(*batches)`` returns the outputs for every sample: shape (n,) when
    the function returns one Value, (n, outputs) for a list. ``backward(dout)``
    adds Σ_p dout_p·∂out_p/∂w into ``w.grad`` for every parameter w.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        shapes: list[int | None],
        inputs: list[Value],
        outputs: list[Value],
        single_output: bool,
    ) -> None:
        np = _numpy()
        self.fn = fn
        self.shapes = shapes
        self.single_output = single_output
        order = _union_order(outputs)
        level: dict[Value, int] = {}
        members: dict[tuple[int, Rule, int], list[Value]] = {}
        for v in order:
            if v._parents:
                level[v] = 1 + max(level.get(p, 0) for p in v._parents)
                members.setdefault((level[v], v._rule, len(v._parents)), []).append(v)  # type: ignore[arg-type]
        keys = sorted(members, key=lambda k: k[0])
        self.inputs = inputs
        # Leaves are numbered in the order the groups read them (parent j of every
        # node of a group side by side), so a group mostly reads a slice of S.
        leaves: dict[Value, None] = {}
        for key in keys:
            for j in range(key[2]):
                leaves.update((v._parents[j], None) for v in members[key] if not v._parents[j]._parents)
        leaves.update((v, None) for v in order if not v._parents)
        traced_inputs = set(inputs)
        self.parameters = [v for v in leaves if v._rule is None and v not in traced_inputs]
        constants = [v for v in leaves if v._rule is CONSTANT]
        slot = {v: i for i, v in enumerate([*inputs, *self.parameters, *constants])}
        self._constants = np.array([c.data for c in constants], dtype=float)
        self.groups: list[_Group] = []
        for key in keys:
            start = len(slot)
            for v in members[key]:
                slot[v] = len(slot)
            parents = np.array([[slot[p] for p in v._parents] for v in members[key]], dtype=np.intp).T
            self.groups.append(_Group(key[1], start, parents))
        self.size = len(slot)
        self._outputs = np.array([slot[v] for v in outputs], dtype=np.intp)
        self._plan_scatters()
        self._last: tuple[Any, list[list[Any]]] | None = None

    def _plan_scatters(self) -> None:
        # Only gradients that reach a parameter are worth computing.
        np = _numpy()
        first_parameter = len(self.inputs)
        needed = np.zeros(self.size, dtype=bool)
        needed[first_parameter : first_parameter + len(self.parameters)] = True
        for group in self.groups:
            reaches = needed[group.parents].any(axis=0)
            needed[group.start : group.start + group.size] = reaches
        for group in self.groups:
            group.scatters = [(j, _Scatter(row)) for j, row in enumerate(group.parents) if needed[row].any()]

    # -- replay ----------------------------------------------------------------
    def forward(self, *batches: Any) -> Any:
        """The traced function's outputs for every sample of the batch."""
        np = _numpy()
        X = self._batch_inputs(batches)
        n = X.shape[1]
        S = np.empty((self.size, n))
        S[: len(X)] = X
        p0 = len(X)
        p1 = p0 + len(self.parameters)
        S[p0:p1] = np.fromiter((p.data for p in self.parameters), float, len(self.parameters))[:, None]
        S[p1 : p1 + len(self._constants)] = self._constants[:, None]
        gathered: list[list[Any]] = []
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            for group in self.groups:
                inputs = [S[source] for source in group.sources]
                S[group.start : group.start + group.size] = self._run_forward(group, inputs)
                gathered.append(inputs)
        self._last = (S, gathered)
        out = S[self._outputs]
        return out[0].copy() if self.single_output else out.T.copy()

    def backward(self, dout: Any = 1.0) -> None:
        """Add Σ_p dout_p·∂out_p/∂w to ``w.grad`` for every parameter w (p runs over the batch).

        ``dout`` has the shape `forward` returned, or is one number for every
        sample and output: 1.0 (the default) gives the gradient of the sum of
        the outputs over the batch, 1/n of their mean.
        """
        np = _numpy()
        if self._last is None:
            raise TraceError("Trace.backward: call forward(batch) first")
        S, gathered = self._last
        n = S.shape[1]
        G = np.zeros_like(S)
        np.add.at(G, self._outputs, self._output_gradient(dout, n))
        with np.errstate(all="ignore"):
            for group, inputs in zip(reversed(self.groups), reversed(gathered)):
                self._run_backward(group, inputs, S, G)
        p0 = len(self.inputs)
        totals = G[p0 : p0 + len(self.parameters)].sum(axis=1)
        for p, total in zip(self.parameters, totals.tolist()):
            p.grad += total

    def _run_forward(self, group: _Group, inputs: list[Any]) -> Any:
        np = _numpy()
        rule = group.rule
        try:
            if rule is ops.POW and (inputs[0] <= 0.0).any():
                raise FloatingPointError("pow with a Value exponent needs a positive base")
            return rule.forward(NumpyMath, *inputs)
        except FloatingPointError:
            with np.errstate(all="ignore"):
                y = rule.forward(NumpyMath, *inputs)
            suspects = ~np.isfinite(y)
            if rule is ops.POW:
                suspects |= inputs[0] <= 0.0
            for i, s in _entries(suspects):
                try:
                    evaluate(rule, [float(x[i, s]) for x in inputs])
                except AutogradError as exc:
                    raise type(exc)(f"{exc} (traced replay, sample {s})") from None
                if mode.anomaly:
                    args = ", ".join(repr(float(x[i, s])) for x in inputs)
                    raise NonFiniteError(
                        f"anomaly in forward: {rule.name}({args}) = {float(y[i, s])} (traced replay, sample {s}); "
                        "check the inputs or guard the operation"
                    ) from None
            return y  # eager mode lets these through too (e.g. an overflowing product)

    def _run_backward(self, group: _Group, inputs: list[Any], S: Any, G: Any) -> None:
        np = _numpy()
        if not group.scatters:
            return
        rule = group.rule
        y = S[group.start : group.start + group.size]
        g = G[group.start : group.start + group.size]
        # Only the derivatives can fail as in eager mode; products and sums of
        # gradients overflow to inf silently there, and so they do here.
        with np.errstate(divide="raise", over="raise", invalid="raise"):
            try:
                local = rule.derivative(NumpyMath, *inputs, y)
            except FloatingPointError:
                local = _diagnose_derivative(rule, inputs, y)
        for j, scatter in group.scatters:
            d = local[j]
            block = g if type(d) is float and d == 1.0 else d * g
            if mode.anomaly and not np.isfinite(block).all():
                i, s = _entries(~np.isfinite(block))[0]
                xs = ", ".join(repr(float(x[i, s])) for x in inputs)
                raise NonFiniteError(
                    f"anomaly in backward: a non-finite gradient flowing through {rule.name}({xs}) "
                    f"(traced replay, sample {s}, output grad {float(g[i, s])!r}); "
                    "check the inputs or guard the operation"
                )
            scatter.add(G, block)

    # -- argument checks ---------------------------------------------------------
    def _batch_inputs(self, batches: tuple[Any, ...]) -> Any:
        """The batch as an (inputs, n) array: row i holds traced input i for every sample."""
        np = _numpy()
        if len(batches) != len(self.shapes):
            raise ShapeError(f"Trace.forward: expected {len(self.shapes)} batch argument(s), got {len(batches)}")
        columns = []
        n = None
        for a, (batch, width) in enumerate(zip(batches, self.shapes)):
            try:
                array = np.asarray(batch)
            except ValueError as exc:
                raise ShapeError(f"Trace.forward: argument {a} is not a rectangular batch ({exc})") from None
            if array.dtype.kind not in "iuf":
                raise InvalidTypeError(f"Trace.forward: argument {a} must hold numbers, got dtype {array.dtype}")
            expected = "(n,)" if width is None else f"(n, {width})"
            if (width is None and array.ndim != 1) or (
                width is not None and (array.ndim != 2 or array.shape[1] != width)
            ):
                raise ShapeError(f"Trace.forward: argument {a} must have shape {expected}, got {array.shape}")
            if n is not None and len(array) != n:
                raise ShapeError(f"Trace.forward: argument {a} has {len(array)} samples, argument 0 has {n}")
            n = len(array)
            if n == 0:
                raise ShapeError("Trace.forward: the batch is empty")
            columns.append(array.reshape(n, width or 1).astype(float))
        X = np.concatenate(columns, axis=1).T
        finite = np.isfinite(X)
        if not finite.all():
            row, sample = np.argwhere(~finite)[0]
            raise InvalidArgumentError(
                f"Trace.forward: input {row} of sample {sample} is {X[row, sample]}; expected a finite number"
            )
        return X

    def _output_gradient(self, dout: Any, n: int) -> Any:
        np = _numpy()
        shape = (n,) if self.single_output else (n, len(self._outputs))
        try:
            d = np.broadcast_to(np.asarray(dout, dtype=float), shape)
        except (TypeError, ValueError):
            raise ShapeError(
                f"Trace.backward: dout must be a number or have the shape of forward's result {shape}, "
                f"got {np.shape(dout)}"
            ) from None
        return d[None, :] if self.single_output else d.T

    def __repr__(self) -> str:
        return (
            f"Trace({getattr(self.fn, '__name__', 'fn')}: {len(self.inputs)} inputs, "
            f"{len(self.parameters)} parameters, {self.size} slots in {len(self.groups)} groups)"
        )


def trace(fn: Callable[..., Any], example: Sequence[float] | float, *more: Sequence[float] | float) -> Trace:
    """Record ``fn``'s graph once; replay it over batches with `Trace.forward` / `Trace.backward`.

    Each example gives one positional argument of ``fn``: a list of numbers
    becomes a list of Values, a number a single Value. ``fn`` runs once on the
    examples (so they must be valid inputs) and returns a Value or a list of Values.

    >>> w = Value(3.0)
    >>> step = trace(lambda x: w * x[0] + x[1], example=[0.0, 0.0])
    >>> step.forward([[1.0, 2.0], [2.0, 0.5]]).tolist()
    [5.0, 6.5]
    >>> step.backward()      # ∂/∂w of the sum over the batch: 1 + 2
    >>> w.grad
    3.0
    """
    _numpy()
    if not callable(fn):
        raise InvalidTypeError(f"trace: fn must be callable, got {type(fn).__name__}")
    shapes: list[int | None] = []
    arguments: list[Any] = []
    inputs: list[Value] = []
    for a, spec in enumerate((example, *more)):
        if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
            values = [Value(as_float(x, f"trace: example {a}[{i}]"), label=f"x{len(inputs) + i + 1}")
                      for i, x in enumerate(spec)]
            shapes.append(len(values))
            arguments.append(values)
            inputs.extend(values)
        else:
            value = Value(as_float(spec, f"trace: example {a}"), label=f"x{len(inputs) + 1}")
            shapes.append(None)
            arguments.append(value)
            inputs.append(value)
    saved = (mode.grad_enabled, mode.tracing)
    mode.grad_enabled, mode.tracing = True, True
    mode.update()
    try:
        result = fn(*arguments)
    finally:
        mode.grad_enabled, mode.tracing = saved
        mode.update()
    single = type(result) is Value
    outputs = [result] if single else list(result) if isinstance(result, (list, tuple)) else None
    if not outputs or any(type(v) is not Value for v in outputs):
        raise TraceError(f"trace: fn must return a Value or a non-empty list of Values, got {result!r}")
    return Trace(fn, shapes, inputs, outputs, single)


def _union_order(outputs: list[Value]) -> list[Value]:
    """A topological order of everything the outputs depend on (each node once)."""
    order: list[Value] = []
    seen: set[Value] = set()
    for out in outputs:
        for v in topological_order(out):
            if v not in seen:
                seen.add(v)
                order.append(v)
    return order


def _diagnose_derivative(rule: Rule, inputs: list[Any], y: Any) -> Any:
    """Raise the eager error for the first sample where a derivative of ``rule`` fails, if eager mode would."""
    np = _numpy()
    with np.errstate(all="ignore"):
        local = rule.derivative(NumpyMath, *inputs, y)
    suspects = np.zeros(y.shape, dtype=bool)
    for d in local:
        suspects |= ~np.isfinite(d)
    for i, s in _entries(suspects):
        xs = [float(x[i, s]) for x in inputs]
        try:
            rule.derivative(FloatMath, *xs, float(y[i, s]))
        except (ArithmeticError, ValueError) as exc:
            error = derivative_error(rule, xs, exc)
            raise type(error)(f"{error} (traced replay, sample {s})") from None
    return local


def _entries(suspects: Any) -> list[tuple[int, int]]:
    """(node, sample) of the flagged entries of a group, lowest sample first."""
    np = _numpy()
    return [(int(i), int(s)) for s, i in np.argwhere(suspects.T)]
