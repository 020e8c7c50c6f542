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
them. A 2-16-16-1 MLP with its loss is seven groups and a chain of three nodes,
whatever the batch size.

A deep graph has the opposite shape: a chain a million levels deep has one
node per level, and a group's gathers, scatters and bookkeeping would cost
many times its single numpy call. The nodes alone in their group (or two of
a kind: `SMALLEST_GROUP`) are therefore strung together, in level order, into
*chains* replayed node by node: the rule's forward on (1, batch) rows of
``S``, a few microseconds a node. Building the tape stays linear too: one
pass gives every node its level (a list per level, no sorting), one more
numbers the slots.

Backward walks the tape in reverse with a second array ``G`` of the same
shape, ∂(output)/∂(slot) per sample. For a group with outputs y and parents
x_j, the rule's derivatives (the same `ops` rows, evaluated with `NumpyMath`)
give the contributions ∂y/∂x_j · G[y], added into G[x_j]. When several nodes of
the group share a parent (a hidden unit feeds every neuron of the next layer)
the repeats are summed first, by a reshape when the pattern is one block read
again and again, else by ``np.add.reduceat`` over an order sorted once at trace
time. A chain sends gradients node by node only to parents that are operation
nodes; what flows to leaves (y ← y·r reads the weight r at every step) waits
until the chain's walk is over and goes in one call per rule and parent
position, like a group's. Only gradients that can reach a parameter are
computed. Finally each parameter's ``.grad`` receives its row of ``G`` summed
over the batch: ∂E/∂w = Σ_p ∂E_p/∂w.

Errors: the rules run with numpy's floating-point errors raised; when a group
(or a chain's node) fails, the offending entries are evaluated again with the
eager rules on plain floats, which raise the project's usual error (naming the
op and the inputs), here with the sample index added. What eager mode lets
through (an overflowing product gives inf) the replay lets through too, except
under `detect_anomaly`, where the first non-finite value or gradient raises
`NonFiniteError` as eagerly.

Limits (as in ``jax.jit``): Python control flow runs once, at trace time. A
comparison or ``float()`` on a Value while tracing raises `TraceError`, and so
does ``no_grad`` inside the traced function; reading ``.data`` directly cannot
be detected and is frozen silently.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from . import ops
from .backward import derivative_error, topological_order
from .errors import AutogradError, InvalidArgumentError, InvalidTypeError, NonFiniteError, ShapeError, TraceError
from .mode import mode
from .ops import FloatMath, Rule
from .value import CONSTANT, Value, as_float, evaluate

NUMPY_MISSING = "autograd.trace needs numpy: pip install 'textbook-autograd[fast]'"
# Replaying a group of two costs about as much as replaying its two nodes one
# by one (measured on parallel chains), and building the group far more: pairs
# join a chain. From three nodes on, the group's single numpy call wins.
SMALLEST_GROUP = 3


# numpy, imported on first use by `_numpy` (importing autograd never imports it).
np: Any = None


def _numpy() -> Any:
    global np
    if np is None:
        try:
            import numpy
        except ImportError:
            raise ImportError(NUMPY_MISSING) from None
        np = numpy
    return np


def _sigmoid(x: Any) -> Any:
    # 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise: e^-|x| never overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


class NumpyMath:
    """The math namespace for numpy arrays (traced replay): one entry per sample.

    Same formulas as `ops.FloatMath`, including its overflow-free branches,
    evaluated elementwise. (Each entry looks numpy up when called: it is
    imported only once a trace is made.)
    """

    exp = staticmethod(lambda x: np.exp(x))
    log = staticmethod(lambda x: np.log(x))
    sqrt = staticmethod(lambda x: np.sqrt(x))
    tanh = staticmethod(lambda x: np.tanh(x))
    sin = staticmethod(lambda x: np.sin(x))
    cos = staticmethod(lambda x: np.cos(x))
    abs = staticmethod(lambda x: np.abs(x))
    pow = staticmethod(lambda x, n: np.power(x, n))
    sigmoid = staticmethod(_sigmoid)
    softplus = staticmethod(lambda x: np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))))
    relu = staticmethod(lambda x: np.where(x > 0.0, x, 0.0))
    step = staticmethod(lambda x: np.where(x > 0.0, 1.0, 0.0))
    sign = staticmethod(lambda x: np.sign(x))
    tan = staticmethod(lambda x: np.tan(x))
    sinh = staticmethod(lambda x: np.sinh(x))
    cosh = staticmethod(lambda x: np.cosh(x))
    asin = staticmethod(lambda x: np.arcsin(x))
    acos = staticmethod(lambda x: np.arccos(x))
    atan = staticmethod(lambda x: np.arctan(x))
    log1p = staticmethod(lambda x: np.log1p(x))
    expm1 = staticmethod(lambda x: np.expm1(x))
    log2 = staticmethod(lambda x: np.log2(x))
    log10 = staticmethod(lambda x: np.log10(x))
    atan2 = staticmethod(lambda a, b: np.arctan2(a, b))
    hypot = staticmethod(lambda a, b: np.hypot(a, b))
    maximum = staticmethod(lambda a, b: np.maximum(a, b))
    minimum = staticmethod(lambda a, b: np.minimum(a, b))
    clamp = staticmethod(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi))
    inside = staticmethod(lambda x, lo, hi: np.where((x >= lo) & (x <= hi), 1.0, 0.0))
    tie_step = staticmethod(lambda d: np.where(d < 0.0, 0.0, np.where(d == 0.0, 0.5, 1.0)))

    @staticmethod
    def reciprocal_or_zero(r: Any) -> Any:
        zero = r == 0.0
        return np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, r))

    # binary cross-entropy (ops.BINARY_CROSS_ENTROPY), as `FloatMath`: logs floored at -100
    # without numpy's divide warning at log 0; a p or t outside [0, 1] gives NaN with numpy's
    # "invalid" flag (the square root of -1), so the replay reports it with the eager DomainError.
    @staticmethod
    def bce(p: Any, t: Any) -> Any:
        outside = ~((p >= 0.0) & (p <= 1.0) & (t >= 0.0) & (t <= 1.0))
        loss = (t - 1.0) * NumpyMath.floored_log1m(p) - t * NumpyMath.floored_log(p)
        return loss + np.sqrt(np.where(outside, -1.0, 0.0))

    @staticmethod
    def bce_slope(p: Any, t: Any) -> Any:
        return (p - t) / np.maximum((1.0 - p) * p, ops.BCE_EPSILON)

    @staticmethod
    def bce_target_slope(p: Any) -> Any:
        return NumpyMath.floored_log1m(p) - NumpyMath.floored_log(p)

    @staticmethod
    def floored_log(p: Any) -> Any:
        return np.maximum(np.log(np.where(p > 0.0, p, 1e-300)), ops.BCE_LOG_FLOOR)

    @staticmethod
    def floored_log1m(p: Any) -> Any:
        below_one = p < 1.0
        floored = np.maximum(np.log1p(-np.where(below_one, p, 0.0)), ops.BCE_LOG_FLOOR)
        return np.where(below_one, floored, ops.BCE_LOG_FLOOR)


class _Group:
    """Nodes with one rule, in slots ``outputs``, replayed as one numpy call.

    ``sources[j]`` selects parent j of every node, ``outputs`` the nodes
    themselves (a slice or an index array); ``scatters`` lists (j, scatter)
    for the parents whose gradient can reach a parameter: the only ones worth
    computing.
    """

    __slots__ = ("rule", "outputs", "parents", "sources", "scatters")

    def __init__(self, rule: Rule, outputs: Any, parents: Any) -> None:
        self.rule = rule
        self.outputs = _slice_or_index(outputs)
        self.parents = parents  # (arity, size) slot numbers
        self.sources = [_slice_or_index(row) for row in parents]
        self.scatters: list[tuple[int, _Scatter]] = []


class _Chain:
    """Consecutive levels of one node each (a deep chain), replayed node by node.

    Node i sits in slot ``start + i`` and has rule ``rules[i]`` and parent
    slots ``parents[i]`` (topological order). Each node costs a few numpy
    calls on (1, batch) rows, far less than a group's gathers and scatters,
    which pay only when a level holds many nodes.

    Backward walks the nodes in reverse but sends gradients node by node only
    to parents that are operation nodes. Gradients for leaves (the weights a
    chain reads again and again) wait until the walk is over, when every
    node's gradient is known: then the ``leaf_groups`` (the chain's nodes
    sorted by rule and by which parent is a parameter) send them with one
    numpy call each.
    """

    __slots__ = ("start", "rules", "parents", "leaf_groups")

    def __init__(self, start: int, rules: list[Rule], parents: list[tuple[int, ...]]) -> None:
        self.start = start
        self.rules = rules
        self.parents = parents
        self.leaf_groups: list[_Group] = []

    @property
    def slots(self) -> range:
        return range(self.start, self.start + len(self.rules))


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
    if step > 0 and (slots == _numpy().arange(first, first + step * n, step)).all():
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
        self.inputs = inputs
        all_leaves, levels = _nodes_by_level(_union_order(outputs))
        blocks = _blocks(levels)
        # Leaves are numbered in the order the groups read them (parent j of every
        # node of a group side by side), so a group mostly reads a slice of S;
        # a chain reads one row at a time, from anywhere.
        leaves: dict[Value, None] = {}
        for members, is_group in blocks:
            if is_group:
                for column in zip(*[v.parents for v in members]):  # the j-th parent of each member
                    leaves.update((p, None) for p in column if p.is_leaf)
        leaves.update(dict.fromkeys(all_leaves))
        traced_inputs = set(inputs)
        self.parameters = [v for v in leaves if v._rule is None and v not in traced_inputs]
        constants = [v for v in leaves if v._rule is CONSTANT]
        slot = {v: i for i, v in enumerate([*inputs, *self.parameters, *constants])}
        self._constants = np.array([c.data for c in constants], dtype=float)
        # The tape: groups and chains in topological order.
        self.steps: list[_Group | _Chain] = []
        for members, is_group in blocks:
            start = len(slot)
            if is_group:
                slot.update((v, i) for i, v in enumerate(members, start))
                parents = np.array([[slot[p] for p in v.parents] for v in members], dtype=np.intp).T
                self.steps.append(_Group(members[0]._rule, np.arange(start, len(slot)), parents))  # type: ignore[arg-type]
            else:
                parent_slots = []
                for k, v in enumerate(members, start):
                    parent_slots.append(tuple([slot[p] for p in v.parents]))
                    slot[v] = k
                self.steps.append(_Chain(start, [v._rule for v in members], parent_slots))  # type: ignore[misc]
        self.size = len(slot)
        self._outputs = np.array([slot[v] for v in outputs], dtype=np.intp)
        self._plan_gradients()
        self._last: tuple[Any, list[list[Any]]] | None = None

    @property
    def groups(self) -> list[_Group]:
        """The steps of the tape replayed as one numpy call per rule and level."""
        return [step for step in self.steps if isinstance(step, _Group)]

    @property
    def chains(self) -> list[_Chain]:
        """The steps of the tape replayed node by node (levels of a single node)."""
        return [step for step in self.steps if isinstance(step, _Chain)]

    def _plan_gradients(self) -> None:
        """Mark the nodes whose gradient can reach a parameter (the only ones worth computing) and plan the scatters.

        ``_needed`` ends with the operation nodes marked, the leaves not: a
        chain's walk sends gradients to the nodes it marks, and leaves get
        theirs from the groups' scatters and the chains' leaf groups.
        """
        np = _numpy()
        first_parameter = len(self.inputs)
        leaf_count = first_parameter + len(self.parameters) + len(self._constants)
        # One byte per slot, seen by numpy as booleans: fast to read one at a
        # time in a chain, and whole rows at a time in a group.
        needed = bytearray(self.size)
        needed[first_parameter : first_parameter + len(self.parameters)] = b"\x01" * len(self.parameters)
        reaches = np.frombuffer(needed, dtype=bool)
        for step in self.steps:
            if isinstance(step, _Group):
                reaches[step.outputs] = reaches[step.parents].any(axis=0)
                step.scatters = [(j, _Scatter(row)) for j, row in enumerate(step.parents) if reaches[row].any()]
            else:
                step.leaf_groups = _leaf_groups(step, needed, leaf_count)
        needed[:leaf_count] = bytes(leaf_count)
        self._needed = needed

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
        # S[k] as a (1, batch) view, the shape of a group's block (and of its
        # error reports), at half the cost of the slice S[k : k + 1].
        rows = S.reshape(self.size, 1, n)
        gathered: list[list[Any]] = []
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            for step in self.steps:
                if isinstance(step, _Group):
                    inputs = [S[source] for source in step.sources]
                    S[step.outputs] = _run_forward(step.rule, inputs)
                    gathered.append(inputs)
                else:
                    for rule, k, parents in zip(step.rules, step.slots, step.parents):
                        rows[k] = _run_forward(rule, [rows[p] for p in parents])
                    gathered.append([])
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
        rows, grad_rows = S.reshape(self.size, 1, n), G.reshape(self.size, 1, n)
        with np.errstate(all="ignore"):
            for step, inputs in zip(reversed(self.steps), reversed(gathered)):
                if isinstance(step, _Group):
                    _group_backward(step, inputs, S, G)
                else:
                    self._chain_backward(step, rows, grad_rows)
                    for group in step.leaf_groups:
                        _group_backward(group, [S[source] for source in group.sources], S, G)
        p0 = len(self.inputs)
        totals = G[p0 : p0 + len(self.parameters)].sum(axis=1)
        for p, total in zip(self.parameters, totals.tolist()):
            p.grad += total

    def _chain_backward(self, chain: _Chain, rows: Any, grad_rows: Any) -> None:
        """Send each node's gradient to its parents that are operation nodes, last node first.

        ``rows`` and ``grad_rows`` are S and G viewed as (slots, 1, batch).
        """
        np = _numpy()
        needed = self._needed
        anomaly = mode.anomaly
        # Entering np.errstate costs more than a node's arithmetic: once per chain,
        # with the rare failures sorted out per node below.
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            for rule, k, parents in zip(reversed(chain.rules), reversed(chain.slots), reversed(chain.parents)):
                if not needed[k]:
                    continue
                inputs = [rows[p] for p in parents]
                y, g = rows[k], grad_rows[k]
                try:
                    blocks = _contributions(rule.derivative(NumpyMath, *inputs, y), g, parents, needed)
                except FloatingPointError:
                    # A derivative outside its domain raises the eager error; an
                    # overflowing product is inf, as in eager mode.
                    with np.errstate(all="ignore"):
                        blocks = _contributions(_diagnose_derivative(rule, inputs, y), g, parents, needed)
                for p, block in blocks:
                    if anomaly:
                        _check_gradient(rule, inputs, g, block)
                    target = grad_rows[p]
                    try:
                        target += block  # in place: the view writes through to G
                    except FloatingPointError:
                        pass  # the sum is already written, ±inf or nan: eager mode lets it through too

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
            f"{len(self.parameters)} parameters, {self.size} slots in {len(self.groups)} groups "
            f"and {len(self.chains)} chains)"
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
        if isinstance(spec, np.ndarray):  # a numpy example is taken as its list (or number)
            spec = spec.tolist()
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
    mode.enter(grad_enabled=True, tracing=True)
    try:
        result = fn(*arguments)
    finally:
        mode.leave()
    single = type(result) is Value
    outputs = [result] if single else list(result) if isinstance(result, (list, tuple)) else None
    if not outputs or any(type(v) is not Value for v in outputs):
        raise TraceError(f"trace: fn must return a Value or a non-empty list of Values, got {result!r}")
    return Trace(fn, shapes, inputs, outputs, single)


def _union_order(outputs: list[Value]) -> list[Value]:
    """A topological order of everything the outputs depend on (each node once)."""
    if len(outputs) == 1:
        return topological_order(outputs[0])
    order: list[Value] = []
    seen: set[Value] = set()
    for out in outputs:
        for v in topological_order(out):
            if v not in seen:
                seen.add(v)
                order.append(v)
    return order


def _nodes_by_level(order: list[Value]) -> tuple[list[Value], list[list[Value]]]:
    """The leaves, and the operation nodes of each level 1, 2, ...: level = 1 + the deepest parent's level.

    Nodes of one level never depend on each other; every list keeps the topological order.
    """
    level: dict[Value, int] = {}
    leaves: list[Value] = []
    by_level: list[list[Value]] = [leaves]
    for v in order:
        depth = 0
        # A loop rather than max(): this runs once per node of graphs a million deep.
        for p in v.parents:
            if level[p] >= depth:
                depth = level[p] + 1
        level[v] = depth
        if depth < len(by_level):
            by_level[depth].append(v)
        else:
            by_level.append([v])
    return leaves, by_level[1:]


def _blocks(levels: list[list[Value]]) -> list[tuple[list[Value], bool]]:
    """Cut the levels into (nodes, is_group): groups of one rule and arity, and chains.

    A group holds at least `SMALLEST_GROUP` nodes of one level; the nodes in
    between (a level of one node, two parallel chains, the few nodes of a rule
    in a level) are strung together, in level order, into one chain.
    """
    blocks: list[tuple[list[Value], bool]] = []
    chain: list[Value] = []
    for nodes in levels:
        if len(nodes) < SMALLEST_GROUP:
            chain.extend(nodes)
            continue
        members: dict[tuple[Rule, int], list[Value]] = {}
        for v in nodes:
            members.setdefault((v._rule, len(v.parents)), []).append(v)  # type: ignore[arg-type]
        for group in members.values():
            if len(group) < SMALLEST_GROUP:
                chain.extend(group)
            else:
                if chain:
                    blocks.append((chain, False))
                    chain = []
                blocks.append((group, True))
    if chain:
        blocks.append((chain, False))
    return blocks


def _run_forward(rule: Rule, inputs: list[Any]) -> Any:
    """``rule``'s forward on (m, batch) blocks, raising the eager error (with the sample) where eager mode would."""
    try:
        if rule is ops.POW and (inputs[0] <= 0.0).any():
            raise FloatingPointError("pow with a Value exponent needs a positive base")
        return rule.forward(NumpyMath, *inputs)
    except FloatingPointError:
        np = _numpy()
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


def _group_backward(group: _Group, inputs: list[Any], S: Any, G: Any) -> None:
    """Add ∂y/∂x_j · G[y] into G[x_j] for the group's outputs y and every parent row j worth it."""
    np = _numpy()
    if not group.scatters:
        return
    rule = group.rule
    y = S[group.outputs]
    g = G[group.outputs]
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
        if mode.anomaly:
            _check_gradient(rule, inputs, g, block)
        scatter.add(G, block)


def _contributions(local: tuple[Any, ...], g: Any, parents: tuple[int, ...], needed: bytearray) -> list[Any]:
    """(x_j, ∂y/∂x_j · G[y]) for the parents x_j of a chain node that are marked ``needed``."""
    return [(p, g if type(d) is float and d == 1.0 else d * g) for p, d in zip(parents, local) if needed[p]]


def _leaf_groups(chain: _Chain, needed: bytearray, leaf_count: int) -> list[_Group]:
    """Mark the chain's nodes that reach a parameter in ``needed``; group them by rule and parameter parent.

    One group per rule, arity and parent position j, holding the nodes whose
    parent j is a parameter (a leaf, slot below ``leaf_count``, marked needed),
    with that row as its only scatter.
    """
    np = _numpy()
    for k, parents in zip(chain.slots, chain.parents):
        for p in parents:
            if needed[p]:
                needed[k] = 1
                break
    reaches = np.frombuffer(needed, dtype=bool)
    slots = np.arange(chain.start, chain.start + len(chain.rules))
    # All parent slots side by side: node i's are flat[first[i] : first[i] + arity[i]].
    arity = np.fromiter(map(len, chain.parents), np.intp, len(chain.parents))
    first = np.cumsum(arity) - arity
    flat = np.fromiter(itertools.chain.from_iterable(chain.parents), np.intp, int(arity.sum()))
    rule_ids = {rule: i for i, rule in enumerate(dict.fromkeys(chain.rules))}
    rule_of = np.fromiter(map(rule_ids.__getitem__, chain.rules), np.intp, len(chain.rules))
    groups = []
    for rule, i in rule_ids.items():
        for n_parents in np.unique(arity[rule_of == i]).tolist():
            members = np.flatnonzero((rule_of == i) & (arity == n_parents) & reaches[slots])
            parents = flat[first[members] + np.arange(n_parents)[:, None]]  # (arity, members)
            for j, row in enumerate(parents):
                sends = (row < leaf_count) & reaches[row]
                if sends.any():
                    group = _Group(rule, slots[members[sends]], parents[:, sends])
                    group.scatters = [(j, _Scatter(row[sends]))]
                    groups.append(group)
    return groups


def _check_gradient(rule: Rule, inputs: list[Any], g: Any, block: Any) -> None:
    """Under `detect_anomaly`: raise `NonFiniteError` for the first non-finite gradient flowing through ``rule``."""
    np = _numpy()
    if np.isfinite(block).all():
        return
    i, s = _entries(~np.isfinite(block))[0]
    xs = ", ".join(repr(float(x[i, s])) for x in inputs)
    raise NonFiniteError(
        f"anomaly in backward: a non-finite gradient flowing through {rule.name}({xs}) "
        f"(traced replay, sample {s}, output grad {float(g[i, s])!r}); "
        "check the inputs or guard the operation"
    )


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
