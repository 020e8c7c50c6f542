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
whatever the batch size (or, with its two hidden layers found as dense layers, see
below, two matrix products, three groups and the chain).

A deep graph has the opposite shape: a chain a million levels deep has one
node per level, and a group's gathers, scatters and bookkeeping would cost
many times its single numpy call. The nodes alone in their group (or two of
a kind: `SMALLEST_GROUP`) are therefore strung together, in level order, into
*chains* replayed node by node: the rule's forward on (1, batch) rows of
``S``, a few microseconds a node. Building the tape stays linear too: one
pass gives every node its level (a list per level, no sorting), one more
numbers the slots.

A dense layer is cut out of the tape before that: K sums of n products, each
product a parameter times one of the same n inputs x_1 … x_n read by every
sum (plus, optionally, one parameter per sum: the bias) are found on the tape,
whoever built them (`nn` or hand-written scalar code), and replayed as one
matrix product Y = W·X + b over the (inputs, batch) block, with Wᵀ·G and G·Xᵀ
backward (`_find_layers`, `_Layer`). Their weights are gathered into W from the
vector of parameters once per replay; a parameter read nowhere else gets no row
of ``S``. Anything that does not fit the pattern exactly keeps the grouped replay.

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

A training loop can keep the parameters in an array instead (`nn.Trainer`
does, with the traced engine): ``forward(batch, theta=θ)`` replays with the
vector θ (in the order of `Trace.parameters`) rather than each ``.data``, and
`Trace.gradient` returns the vector of Σ_p ∂E_p/∂w instead of adding it to the
``.grad``s: no Python loop over the parameters on either side. A loop that replays
the same samples at every step (full-batch training) has them checked and laid out
once, `Trace.batch`, and passes that `Batch` to ``forward`` instead.

Errors follow the numeric policy of eager mode (`ops.FloatMath`): overflow
gives ±inf and NaN or inf inputs propagate, while a pole or a point outside
the domain at finite inputs raises. The rules run with numpy's division and
invalid-operation errors raised (overflow passes as inf); when a group (or a
chain's node) fails, its non-finite entries are evaluated again with the eager
rules on plain floats, which raise the project's usual error (naming the op
and the inputs), here with the sample index added, or let the NaN or inf
through as eager mode does. Under `detect_anomaly` the first non-finite value
or gradient raises `NonFiniteError` as eagerly. Checking every step costs
more than a small model's arithmetic, so each pass first runs the whole tape
at once with no checks, under one `np.errstate`; only where numpy raises a
flag or a result is not finite is the pass run again step by step as above
(its numbers are the same; only the diagnosis differs). The fast pass writes a
relu group's max(x, 0) straight into its rows, and after a fused layer (whose
outputs it has checked finite) takes relu's slope 1 - [x <= 0] as [x > 0], one
numpy call less: the two differ only at x = NaN.

Limits (as in ``jax.jit``): Python control flow runs once, at trace time. A
comparison or ``float()`` on a Value while tracing raises `TraceError`, and so
do ``no_grad``, ``backward()`` and ``grad()`` without ``create_graph`` inside
the traced function (their float gradients would be frozen; ``grad(...,
create_graph=True)`` is recorded, derivatives of relu and abs included);
reading ``.data`` directly cannot be detected and is frozen silently.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any, Union

from . import ops
from .backward import gradient_lock, local_derivatives, topological_order
from .errors import (
    AutogradError,
    DomainError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeError,
    TraceError,
)
from .mode import mode
from .ops import Rule
from .value import CONSTANT, Value, as_float, evaluate

NUMPY_MISSING = "autograd.trace needs numpy: pip install 'textbook-autograd[fast]'"
# Replaying a group of two costs about as much as replaying its two nodes one
# by one (measured on parallel chains), and building the group far more: pairs
# join a chain. From three nodes on, the group's single numpy call wins.
SMALLEST_GROUP = 3


# numpy, imported on first use by `_numpy` (importing autograd never imports it).
np: Any = None


def _numpy() -> Any:
    global np, _one_blas_thread
    if np is None:
        try:
            import numpy
        except ImportError:
            raise ImportError(NUMPY_MISSING) from None
        np = numpy
        _one_blas_thread = _blas_limited_to_one_thread()
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
    # PyTorch's conventions (see FloatMath): where they give 0, the base is replaced by 1
    # first, so that no masked entry raises: n·1^(n-1) = 0 for n = 0, y·log(1) = 0.
    power_rule = staticmethod(lambda x, n: n * np.power(np.where(n == 0.0, 1.0, x), n - 1.0))
    exponential_rule = staticmethod(lambda a, n, y: y * np.log(np.where((a == 0.0) & (n >= 0.0), 1.0, a)))
    sigmoid = staticmethod(_sigmoid)
    softplus = staticmethod(lambda x: np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))))
    # Written so that NaN stays NaN (relu), gives FloatMath's 1 (step) or its 0 (positive,
    # sign), without np.where: with scalar branches and mixed signs it costs six times
    # np.maximum (a branch per entry). np.maximum keeps NaN; + 0.0 turns its -0.0 into
    # FloatMath's 0.0; a comparison's booleans are 0 and 1.
    relu = staticmethod(lambda x: np.maximum(x, 0.0) + 0.0)
    step = staticmethod(lambda x: 1.0 - (x <= 0.0))
    positive = staticmethod(lambda x: (x > 0.0).astype(float))
    sign = staticmethod(lambda x: (x > 0.0).astype(float) - (x < 0.0))
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
    amax = staticmethod(lambda xs: functools.reduce(np.maximum, xs))
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

    A relu group is replayed in place by the fast pass (``relu``): max(x, 0) written
    straight into its rows; ``after_layer`` says that it reads a fused layer's outputs,
    which the fast pass has checked finite, so that its slope 1 - [x <= 0] is [x > 0].
    """

    __slots__ = ("rule", "outputs", "parents", "sources", "scatters", "relu", "after_layer")

    def __init__(self, rule: Rule, outputs: Any, parents: Any) -> None:
        self.rule = rule
        self.outputs = _slice_or_index(outputs)
        self.parents = parents  # (arity, size) slot numbers
        self.sources = [_slice_or_index(row) for row in parents]
        self.scatters: list[tuple[int, _Scatter]] = []
        self.relu = rule is ops.RELU and isinstance(self.outputs, slice)
        self.after_layer = False  # set by `Trace` (`_mark_relus_after_layers`)


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

    __slots__ = ("targets", "tiles", "order", "starts", "assign")

    def __init__(self, targets: Any) -> None:
        np = _numpy()
        self.assign = False  # the first contribution to these rows: written, not added (`_plan_first_writes`)
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
        if self.assign:
            G[self.targets] = block
        else:
            G[self.targets] += block

    def direct(self) -> bool:
        """True when the rows may receive a product straight from numpy (``out=``): written, not added,
        with nothing to sum first and the rows a slice of G."""
        return self.assign and not self.tiles and self.order is None and isinstance(self.targets, slice)


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
        index_arguments: Sequence[bool] = (),
    ) -> None:
        np = _numpy()
        self.fn = fn
        self.shapes = shapes
        # Which arguments hold integer indices (`indices`): checked to be integers at replay.
        self.index_arguments = list(index_arguments) or [False] * len(shapes)
        self.single_output = single_output
        self.inputs = inputs
        traced_inputs = set(inputs)
        all_leaves, levels = _nodes_by_level(_union_order(outputs))
        # Dense layers found on the tape (their products leave the levels; see _find_layers).
        patterns = _find_layers(levels, outputs, traced_inputs) if FUSE_LAYERS else {}
        blocks = _blocks(levels, patterns)
        # Leaves are numbered in the order the groups read them (parent j of every
        # node of a group side by side), so a group mostly reads a slice of S;
        # a chain reads one row at a time, from anywhere.
        leaves: dict[Value, None] = {}
        for members, kind in blocks:
            if kind is True:
                for column in zip(*[v.parents for v in members]):  # the j-th parent of each member
                    leaves.update((p, None) for p in column if p.is_leaf)
        leaves.update(dict.fromkeys(all_leaves))
        # Parameters read only as a fused layer's weights or biases need no row of S
        # (a row is the parameter repeated batch times): they are read from the vector
        # of all parameters, each layer's weights side by side, row by row, so that
        # gathering its matrix is mostly a reshaped slice.
        read = _read_from_rows(blocks, outputs)
        row_parameters = [v for v in leaves if v._rule is None and v not in traced_inputs and v in read]
        matrix_only: dict[Value, None] = {}
        for _, kind in blocks:
            if isinstance(kind, _Pattern):
                matrix_only.update((w, None) for w in (*kind.weights, *kind.biases) if w not in read)
        self.parameters = [*row_parameters, *matrix_only]
        self._row_parameters = len(row_parameters)
        index = {p: i for i, p in enumerate(self.parameters)}
        constants = [v for v in leaves if v._rule is CONSTANT]
        slot = {v: i for i, v in enumerate([*inputs, *row_parameters, *constants])}
        self._constants = np.array([c.data for c in constants], dtype=float)
        # The tape: groups, layers and chains in topological order.
        self.steps: list[_Group | _Chain | _Layer | _StackedLayer | _Select] = []
        for members, kind in blocks:
            start = len(slot)
            if isinstance(kind, _Stack):
                slot.update((v, i) for i, v in enumerate(members, start))
                self.steps.append(_StackedLayer(kind, np.arange(start, len(slot)), slot, index))
            elif isinstance(kind, _Pattern):
                slot.update((v, i) for i, v in enumerate(members, start))
                self.steps.append(_Layer(kind, np.arange(start, len(slot)), slot, index))
            elif kind == SELECT_STEP:
                picks = [[slot[p] for p in v.parents] for v in members]
                slot.update((v, i) for i, v in enumerate(members, start))
                self.steps.append(_Select(np.arange(start, len(slot)), picks))
            elif kind:
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
        self._mark_relus_after_layers()
        self._last: tuple[Any, list[list[Any]]] | None = None
        self._last_fast = False  # `_last` made by the fast forward (every fused layer's outputs finite)

    @property
    def groups(self) -> list[_Group]:
        """The steps of the tape replayed as one numpy call per rule and level."""
        return [step for step in self.steps if isinstance(step, _Group)]

    @property
    def chains(self) -> list[_Chain]:
        """The steps of the tape replayed node by node (levels of a single node)."""
        return [step for step in self.steps if isinstance(step, _Chain)]

    @property
    def fused_layers(self) -> list[_Layer | _StackedLayer]:
        """The dense layers found on the tape, replayed as matrix products (see `_find_layers`)."""
        return [step for step in self.steps if isinstance(step, (_Layer, _StackedLayer))]

    def _plan_gradients(self) -> None:
        """Mark the nodes whose gradient can reach a parameter (the only ones worth computing) and plan the scatters.

        ``_needed`` ends with the operation nodes marked, the leaves not: a
        chain's walk sends gradients to the nodes it marks, and leaves get
        theirs from the groups' scatters and the chains' leaf groups.
        """
        np = _numpy()
        first_parameter = len(self.inputs)
        rows = self._row_parameters
        leaf_count = first_parameter + rows + len(self._constants)
        # One byte per slot, seen by numpy as booleans: fast to read one at a
        # time in a chain, and whole rows at a time in a group.
        needed = bytearray(self.size)
        needed[first_parameter : first_parameter + rows] = b"\x01" * rows
        reaches = np.frombuffer(needed, dtype=bool)
        for step in self.steps:
            if isinstance(step, _Group):
                if step.rule is ops.STOP_GRADIENT:  # passes no gradient back: leads to no parameter
                    continue
                reaches[step.outputs] = reaches[step.parents].any(axis=0)
                step.scatters = [(j, _Scatter(row)) for j, row in enumerate(step.parents) if reaches[row].any()]
            elif isinstance(step, _Layer):
                reaches[step.outputs] = True  # every output reads its weights, which are parameters
                if reaches[step.xs].any():
                    step.x_scatter = _Scatter(np.arange(self.size)[step.xs])
            elif isinstance(step, (_Select, _StackedLayer)):
                step.plan_gradients(reaches)
            else:
                step.leaf_groups = _leaf_groups(step, needed, leaf_count)
        needed[:leaf_count] = bytes(leaf_count)
        self._needed = needed
        self._distinct_outputs = len(np.unique(self._outputs)) == len(self._outputs)
        self._plan_first_writes()

    def _mark_relus_after_layers(self) -> None:
        """Mark the relu groups that read exactly the outputs of a fused layer (`_Group.after_layer`)."""
        size = self.size
        layer_rows = {
            step.outputs.indices(size)
            for step in self.steps
            if isinstance(step, _Layer) and isinstance(step.outputs, slice)
        }
        for step in self.groups:
            source = step.sources[0]
            step.after_layer = step.relu and isinstance(source, slice) and source.indices(size) in layer_rows

    def _plan_first_writes(self) -> None:
        """Let each scatter that is the first to reach all of its rows of G write them rather than add.

        G starts at zero, so the first contribution to a row may be written instead of
        added (one pass over the block fewer, the same numbers). Walked in the order of
        the backward pass: the outputs' seeds first, a chain's walk adds into its nodes'
        parents (all of them marked, to be safe), its leaf groups come after it.
        """
        np = _numpy()
        written = np.zeros(self.size, dtype=bool)
        written[self._outputs] = True
        slots = np.arange(self.size)

        def first(scatter: _Scatter) -> None:
            rows = slots[scatter.targets]
            scatter.assign = not written[rows].any()
            written[rows] = True

        for step in reversed(self.steps):
            if isinstance(step, _Group):
                for _, scatter in step.scatters:
                    first(scatter)
            elif isinstance(step, _Layer):
                if step.x_scatter is not None:
                    first(step.x_scatter)
            elif isinstance(step, _StackedLayer):
                # The stack or its layers (when they take over) add into the inputs' rows.
                written[slots[step.xs.ravel()]] = True
            elif isinstance(step, _Select):
                written[step.choices.ravel()] = True  # np.add.at into the chosen rows
            else:
                for parents in step.parents:
                    written[list(parents)] = True
                for group in step.leaf_groups:
                    for _, scatter in group.scatters:
                        first(scatter)

    # -- replay ----------------------------------------------------------------
    def forward(self, *batches: Any, theta: Any = None) -> Any:
        """The traced function's outputs for every sample of the batch.

        ``batches``: one array (or list) per argument of the traced function, or one `Batch`
        made by `batch` (checked once, for replaying the same samples again and again).
        ``theta``: the parameters' values, an array in the order of `parameters`
        (a training loop that keeps its weights in an array); by default each
        parameter's ``.data``, read now.
        """
        np = _numpy()
        if len(batches) == 1 and type(batches[0]) is Batch:
            X = batches[0].block_for(self)
        else:
            X = self._batch_inputs(batches)
        if theta is None:
            theta = np.fromiter((p.data for p in self.parameters), float, len(self.parameters))
        elif np.shape(theta) != (len(self.parameters),):
            raise ShapeError(
                f"Trace.forward: theta must hold the {len(self.parameters)} parameters, got shape {np.shape(theta)}"
            )
        else:
            theta = np.asarray(theta, dtype=float)
        n = X.shape[1]
        S = np.empty((self.size, n))
        S[: len(X)] = X
        p0 = len(X)
        p1 = p0 + self._row_parameters
        if self._row_parameters:  # (a model whose weights are all in fused layers has none)
            S[p0:p1] = theta[: self._row_parameters, None]
        if len(self._constants):
            S[p1 : p1 + len(self._constants)] = self._constants[:, None]
        gathered = None if mode.anomaly else self._fast_forward(S, theta)
        self._last_fast = gathered is not None
        if gathered is None:
            gathered = self._careful_forward(S, theta)
        self._last = (S, gathered)
        out = S[self._outputs]
        return out[0].copy() if self.single_output else out.T.copy()

    def batch(self, *batches: Any) -> Batch:
        """The batch as `forward` takes it, checked and laid out once: ``forward(trace.batch(X, T))``
        equals ``forward(X, T)``, without checking X and T again at every replay (a full-batch
        training loop replays the same samples at every step)."""
        block = _numpy().ascontiguousarray(self._batch_inputs(batches))
        block.setflags(write=False)  # what was checked cannot change
        return Batch(self, block)

    def _fast_forward(self, S: Any, theta: Any) -> list[list[Any]] | None:
        """The tape's forward with no diagnostics, or None where `_careful_forward` must look closer.

        One `np.errstate` for the whole tape: a pole or a domain error anywhere (numpy's
        divide or invalid flag) or a non-finite output gives None, and the careful replay
        runs from the start (the leaves' rows of S are never written by a step): it raises
        eager mode's error, or gives the non-finite values eager mode gives.
        """
        np = _numpy()
        n = S.shape[1]
        rows = S.reshape(self.size, 1, n)  # S[k] as a (1, batch) view, as in `_careful_forward`
        gathered: list[list[Any]] = []
        try:
            with np.errstate(divide="raise", over="ignore", invalid="raise", under="ignore"):
                for step in self.steps:
                    if isinstance(step, _Group):
                        inputs = [S[source] for source in step.sources]
                        if step.relu:  # NumpyMath.relu, max(x, 0) + 0, written in place
                            y = S[step.outputs]
                            np.maximum(inputs[0], 0.0, out=y)
                            y += 0.0
                        else:
                            S[step.outputs] = step.rule.forward(NumpyMath, *inputs)
                        gathered.append(inputs)
                    elif isinstance(step, _Layer):
                        W, X, Y = step.products(S, theta)
                        if not np.isfinite(Y).all():
                            return None
                        gathered.append([W, X])
                    elif isinstance(step, _Select):
                        gathered.append(step.forward(S, False, self._slot_name))
                    elif isinstance(step, _StackedLayer):
                        gathered.append(step.forward(S, theta, False, self._slot_name, self._parameter_name))
                    else:
                        for rule, k, parents in zip(step.rules, step.slots, step.parents):
                            rows[k] = rule.forward(NumpyMath, *[rows[p] for p in parents])
                        gathered.append([])
        except FloatingPointError:
            return None
        return gathered if np.isfinite(S[self._outputs]).all() else None

    def _careful_forward(self, S: Any, theta: Any) -> list[list[Any]]:
        """The tape's forward step by step, raising eager mode's errors with the sample (see the module docstring)."""
        np = _numpy()
        n = S.shape[1]
        # S[k] as a (1, batch) view, the shape of a group's block (and of its
        # error reports), at half the cost of the slice S[k : k + 1].
        rows = S.reshape(self.size, 1, n)
        gathered: list[list[Any]] = []
        anomaly = mode.anomaly
        # Overflow is inf, as in eager mode; under detect_anomaly it is raised,
        # so that `_run_forward` reports it.
        overflow = "raise" if anomaly else "ignore"
        with np.errstate(divide="raise", over=overflow, invalid="raise", under="ignore"):
            for step in self.steps:
                if isinstance(step, _Group):
                    inputs = [S[source] for source in step.sources]
                    S[step.outputs] = _run_forward(step.rule, inputs)
                    gathered.append(inputs)
                elif isinstance(step, _Layer):
                    gathered.append(step.forward(S, theta, anomaly, self._slot_name, self._parameter_name))
                    continue
                elif isinstance(step, _Select):
                    gathered.append(step.forward(S, anomaly, self._slot_name))
                    continue
                elif isinstance(step, _StackedLayer):
                    gathered.append(step.forward(S, theta, anomaly, self._slot_name, self._parameter_name))
                    continue
                else:
                    for rule, k, parents in zip(step.rules, step.slots, step.parents):
                        rows[k] = _run_forward(rule, [rows[p] for p in parents])
                    gathered.append([])
                if anomaly:
                    self._check_forward(step, S)
        return gathered

    def backward(self, dout: Any = 1.0) -> None:
        """Add Σ_p dout_p·∂out_p/∂w to ``w.grad`` for every parameter w (p runs over the batch).

        ``dout`` is one finite number for every sample and output (1.0, the
        default, gives the gradient of the sum of the outputs over the batch,
        1/n of their mean), or an array of finite numbers of exactly the shape
        `forward` returned: (n,) for one output, (n, outputs) for several (no
        other broadcasting: with several outputs an (n,) array is refused).
        """
        totals = self.gradient(dout)
        with gradient_lock:  # parameters may be shared with passes in other threads
            for p, total in zip(self.parameters, totals.tolist()):
                p.grad += total

    def gradient(self, dout: Any = 1.0) -> Any:
        """Σ_p dout_p·∂out_p/∂w for every parameter w, as an array in the order of `parameters`.

        What `backward` adds to the ``.grad``s, returned instead (no Value is touched):
        for a training loop that keeps its weights in arrays (`forward`'s ``theta``).
        """
        if self._last is None:
            raise TraceError("Trace.backward: call forward(batch) first")
        S, gathered = self._last
        n = S.shape[1]
        dout = self._output_gradient(dout, n)
        totals = None if mode.anomaly else self._fast_backward(S, gathered, dout)
        if totals is None:
            totals = self._careful_backward(S, gathered, dout)
        return totals

    def _seeded(self, S: Any, dout: Any) -> tuple[Any, Any]:
        """G (zero but for the outputs' rows, which hold ``dout``) and the totals ∂/∂w, zero."""
        np = _numpy()
        G = np.zeros(S.shape)  # (zeros_like writes every zero; zeros gets zeroed pages from the system)
        if self._distinct_outputs:
            G[self._outputs] = dout
        else:  # an output returned twice gets both seeds (np.add.at is slow: only then)
            np.add.at(G, self._outputs, dout)
        return G, np.zeros(len(self.parameters))  # ∂/∂w summed over the batch, for the fused layers

    def _parameter_totals(self, G: Any, totals: Any) -> Any:
        """``totals`` plus the row parameters' gradients, their rows of G summed over the batch."""
        if self._row_parameters:
            p0 = len(self.inputs)
            totals[: self._row_parameters] += G[p0 : p0 + self._row_parameters].sum(axis=1)
        return totals

    def _fast_backward(self, S: Any, gathered: list[list[Any]], dout: Any) -> Any:
        """The backward pass with no diagnostics, or None where `_careful_backward` must look closer.

        As `_fast_forward`: one `np.errstate` for the tape; a derivative's pole or domain
        error, inf - inf or 0·inf anywhere, or a non-finite total gives None.
        """
        np = _numpy()
        n = S.shape[1]
        G, totals = self._seeded(S, dout)
        rows, grad_rows = S.reshape(self.size, 1, n), G.reshape(self.size, 1, n)
        needed = self._needed
        fast_forward = self._last_fast
        try:
            with np.errstate(divide="raise", over="ignore", invalid="raise", under="ignore"):
                for step, inputs in zip(reversed(self.steps), reversed(gathered)):
                    if isinstance(step, _Group):
                        if step.scatters:
                            if step.after_layer and fast_forward:
                                # Finite inputs (the fast forward checked the layer's): relu's slope
                                # 1 - [x <= 0] (NumpyMath.step) is the comparison [x > 0] itself.
                                local = (np.greater(inputs[0], 0.0),)
                            else:
                                local = step.rule.derivative(NumpyMath, *inputs, S[step.outputs])
                            _send_gradients(step, local, G)
                    elif isinstance(step, _Layer):
                        step.send_gradients(inputs, G, totals)
                    elif isinstance(step, _Select):
                        step.backward(inputs, G)
                    elif isinstance(step, _StackedLayer):
                        step.backward(inputs, S, G, totals)
                    else:
                        for rule, k, parents in zip(reversed(step.rules), reversed(step.slots), reversed(step.parents)):
                            if needed[k]:
                                inputs = [rows[p] for p in parents]
                                local = rule.derivative(NumpyMath, *inputs, rows[k])
                                for p, block in _contributions(local, grad_rows[k], parents, needed):
                                    grad_rows[p] += block
                        for group in step.leaf_groups:
                            inputs = [S[source] for source in group.sources]
                            _send_gradients(group, group.rule.derivative(NumpyMath, *inputs, S[group.outputs]), G)
                totals = self._parameter_totals(G, totals)
        except FloatingPointError:
            return None
        return totals if np.isfinite(totals).all() else None

    def _careful_backward(self, S: Any, gathered: list[list[Any]], dout: Any) -> Any:
        """The backward pass step by step, raising eager mode's errors with the sample."""
        np = _numpy()
        n = S.shape[1]
        G, totals = self._seeded(S, dout)
        rows, grad_rows = S.reshape(self.size, 1, n), G.reshape(self.size, 1, n)
        with np.errstate(all="ignore"):
            for step, inputs in zip(reversed(self.steps), reversed(gathered)):
                if isinstance(step, _Group):
                    _group_backward(step, inputs, S, G)
                elif isinstance(step, _Layer):
                    step.backward(inputs, S, G, totals)
                elif isinstance(step, _Select):
                    step.backward(inputs, G)
                elif isinstance(step, _StackedLayer):
                    step.backward(inputs, S, G, totals)
                else:
                    self._chain_backward(step, rows, grad_rows)
                    for group in step.leaf_groups:
                        _group_backward(group, [S[source] for source in group.sources], S, G)
        return self._parameter_totals(G, totals)

    def _check_forward(self, step: _Group | _Chain, S: Any) -> None:
        """Under `detect_anomaly`: raise `NonFiniteError` at the step's first non-finite value.

        Eager mode raises at the first operation whose result is not finite.
        Its inputs are finite, or are parameters: the batch is checked, and
        earlier steps were. A non-finite parameter (``w.data = nan`` after
        tracing) spreads through numpy without a floating-point error, so it
        is caught here, at the first operation that reads it, and named.
        """
        np = _numpy()
        if isinstance(step, _Group):
            y = S[step.outputs]
            if np.isfinite(y).all():
                return
            i, s = _entries(~np.isfinite(y))[0]
            slots = np.arange(self.size)[step.outputs]  # the group's own slots
            rule, parents, k = step.rule, step.parents[:, i].tolist(), int(slots[i])
        else:
            y = S[step.start : step.start + len(step.rules)]
            if np.isfinite(y).all():
                return
            bad = ~np.isfinite(y)
            i = int(np.flatnonzero(bad.any(axis=1))[0])  # the first in the chain's (topological) order
            s = int(np.flatnonzero(bad[i])[0])
            rule, parents, k = step.rules[i], list(step.parents[i]), step.start + i
        args = ", ".join(repr(float(S[p, s])) for p in parents)
        names = ", ".join(self._slot_name(p) for p in parents)
        raise NonFiniteError(
            f"anomaly in forward: {rule.name}({args}) = {float(S[k, s])} (traced replay, sample {s}; "
            f"inputs: {names}); check the inputs or guard the operation"
        )

    def _parameter_name(self, i: int) -> str:
        """What an error message calls parameter ``i``: its label, or its number."""
        return self.parameters[i].label or f"parameter {i}"

    def _slot_name(self, slot: int) -> str:
        """What an error message calls the Value in ``slot``: its label, or its kind and number."""
        first_parameter = len(self.inputs)
        first_constant = first_parameter + self._row_parameters
        if slot < first_parameter:
            return self.inputs[slot].label
        if slot < first_constant:
            parameter = self.parameters[slot - first_parameter]
            return parameter.label or f"parameter {slot - first_parameter}"
        return "const" if slot < first_constant + len(self._constants) else "computed"

    def _chain_backward(self, chain: _Chain, rows: Any, grad_rows: Any) -> None:
        """Send each node's gradient to its parents that are operation nodes, last node first.

        ``rows`` and ``grad_rows`` are S and G viewed as (slots, 1, batch).
        """
        np = _numpy()
        needed = self._needed
        anomaly = mode.anomaly
        # Entering np.errstate costs more than a node's arithmetic: once per chain,
        # with the rare failures sorted out per node below.
        with np.errstate(divide="raise", over="ignore", invalid="raise", under="ignore"):
            for rule, k, parents in zip(reversed(chain.rules), reversed(chain.slots), reversed(chain.parents)):
                if not needed[k]:
                    continue
                inputs = [rows[p] for p in parents]
                y, g = rows[k], grad_rows[k]
                try:
                    blocks = _contributions(rule.derivative(NumpyMath, *inputs, y), g, parents, needed)
                except FloatingPointError:
                    # A derivative outside its domain raises the eager error; one
                    # of a NaN or inf input is let through, as in eager mode.
                    with np.errstate(all="ignore"):
                        blocks = _contributions(_diagnose_derivative(rule, inputs, y), g, parents, needed)
                for p, block in blocks:
                    if anomaly:
                        _check_gradient(rule, inputs, g, block)
                    target = grad_rows[p]
                    try:
                        target += block  # in place: the view writes through to G
                    except FloatingPointError:
                        pass  # inf + -inf: the sum is already written (nan), as eager mode gives

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
            column = array.reshape(n, 1 if width is None else width).astype(float)
            if self.index_arguments[a]:
                _check_indices(column, a)
            columns.append(column)
        X = np.concatenate(columns, axis=1).T
        finite = np.isfinite(X)
        if not finite.all():
            row, sample = np.argwhere(~finite)[0]
            raise InvalidArgumentError(
                f"Trace.forward: input {row} of sample {sample} is {X[row, sample]}; expected a finite number"
            )
        return X

    def _output_gradient(self, dout: Any, n: int) -> Any:
        """``dout`` checked like eager ``backward(gradient)``, as a (outputs, n) array.

        One real number weights every sample and output; otherwise the array
        must have exactly the shape `forward` returned. Nothing else is
        broadcast: with several outputs an (n,) array could mean one weight
        per sample or one per output, so it is refused rather than guessed.
        """
        np = _numpy()
        k = len(self._outputs)
        shape = (n,) if self.single_output else (n, k)
        if isinstance(dout, np.ndarray) and dout.ndim == 0:
            dout = dout.item()
        if not isinstance(dout, (list, tuple, np.ndarray)):
            return np.full((k, n), as_float(dout, "Trace.backward(dout)"))
        try:
            d = np.asarray(dout)
        except ValueError as exc:
            raise ShapeError(f"Trace.backward: dout is not a rectangular array ({exc})") from None
        if d.dtype.kind not in "iuf":
            raise InvalidTypeError(f"Trace.backward: dout must hold real numbers, got dtype {d.dtype}")
        if d.shape != shape:
            raise ShapeError(
                f"Trace.backward: dout must be one number or have the shape of forward's result {shape}, "
                f"got {d.shape}"
            )
        d = d.astype(float).reshape(n, k)
        finite = np.isfinite(d)
        if not finite.all():
            sample, output = np.argwhere(~finite)[0]
            which = "" if self.single_output else f", output {output}"
            raise InvalidArgumentError(
                f"Trace.backward: dout of sample {sample}{which} is {d[sample, output]}; expected a finite number"
            )
        return d.T

    def __repr__(self) -> str:
        return (
            f"Trace({getattr(self.fn, '__name__', 'fn')}: {len(self.inputs)} inputs, "
            f"{len(self.parameters)} parameters, {self.size} slots in {len(self.groups)} groups, "
            f"{len(self.fused_layers)} fused layers and {len(self.chains)} chains)"
        )


class Batch:
    """A batch checked by `Trace.batch` for one trace: its (inputs, n) block, read-only."""

    __slots__ = ("trace", "block")

    def __init__(self, trace: Trace, block: Any) -> None:
        self.trace, self.block = trace, block

    def block_for(self, trace: Trace) -> Any:
        """The block, if this batch was made for ``trace`` (another trace may read other inputs)."""
        if trace is not self.trace:
            raise TraceError("Trace.forward: this Batch was made by another trace (Trace.batch)")
        return self.block

    def __len__(self) -> int:
        return int(self.block.shape[1])

    def __repr__(self) -> str:
        return f"Batch({self.block.shape[1]} samples of {self.block.shape[0]} inputs)"


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
    _numpy()
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


def _check_indices(column: Any, a: int) -> None:
    """Argument ``a`` of a replay, an (n, width) block marked by `indices`: integers >= 0, or a clear error.

    Whether an index is below the number of choices is checked where it picks (`_Select`).
    """
    np = _numpy()
    bad = ~((column >= 0.0) & (column == np.floor(column)))  # NaN and ±inf fail too
    if bad.any():
        sample, entry = np.argwhere(bad)[0]
        where = "" if column.shape[1] == 1 else f"[{entry}]"
        raise InvalidArgumentError(
            f"Trace.forward: argument {a} holds indices, but sample {sample}{where} is "
            f"{float(column[sample, entry])!r}; expected an integer >= 0"
        )


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


def _blocks(
    levels: list[list[Value]], patterns: dict[int, list[_Pattern]]
) -> list[tuple[list[Value], bool | _Pattern | str]]:
    """Cut the levels into (nodes, kind): groups of one rule and arity (True), chains (False), layers and selects.

    A group holds at least `SMALLEST_GROUP` nodes of one level; the nodes in
    between (a level of one node, two parallel chains, the few nodes of a rule
    in a level) are strung together, in level order, into one chain. The fused
    layers of a level (``patterns``, their sums no longer in ``levels``) come
    first in their level, as a kind of their own, then the level's selects
    (`SELECT_STEP`, however few: a gather, see `_Select`).
    """
    blocks: list[tuple[list[Value], bool | _Pattern | str]] = []
    chain: list[Value] = []
    for depth, nodes in enumerate(levels):
        for pattern in patterns.get(depth, ()):
            if chain:
                blocks.append((chain, False))
                chain = []
            blocks.append((pattern.sums, pattern))
        selects = [v for v in nodes if v._rule is ops.SELECT]
        if selects:
            if chain:
                blocks.append((chain, False))
                chain = []
            blocks.append((selects, SELECT_STEP))
            nodes = [v for v in nodes if v._rule is not ops.SELECT]
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
        return rule.forward(NumpyMath, *inputs)
    except FloatingPointError:
        np = _numpy()
        with np.errstate(all="ignore"):
            y = rule.forward(NumpyMath, *inputs)
        for i, s in _entries(~np.isfinite(y)):
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
        return y  # eager mode lets these through too (e.g. inf - inf is nan)


def _group_backward(group: _Group, inputs: list[Any], S: Any, G: Any) -> None:
    """Add ∂y/∂x_j · G[y] into G[x_j] for the group's outputs y and every parent row j worth it."""
    np = _numpy()
    if not group.scatters:
        return
    rule = group.rule
    y = S[group.outputs]
    # Only the derivatives can fail as in eager mode; products and sums of
    # gradients overflow to inf silently there, and so they do here.
    with np.errstate(divide="raise", over="ignore", invalid="raise"):
        try:
            local = rule.derivative(NumpyMath, *inputs, y)
        except FloatingPointError:
            local = _diagnose_derivative(rule, inputs, y)
    if mode.anomaly:
        g = G[group.outputs]
        for j, _ in group.scatters:
            d = local[j]
            _check_gradient(rule, inputs, g, g if type(d) is float and d == 1.0 else d * g)
    _send_gradients(group, local, G)


def _send_gradients(group: _Group, local: tuple[Any, ...], G: Any) -> None:
    """Add the group's contributions ∂y/∂x_j · G[y] (``local[j]`` = ∂y/∂x_j) into the rows G[x_j]."""
    if not group.scatters:
        return
    g = G[group.outputs]
    for j, scatter in group.scatters:
        d = local[j]
        if type(d) is float and d == 1.0:
            scatter.add(G, g)
        elif scatter.direct():  # the product goes straight into its rows (written, not added)
            _numpy().multiply(d, g, out=G[scatter.targets])
        else:
            scatter.add(G, d * g)


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
    for k, parents, rule in zip(chain.slots, chain.parents, chain.rules):
        if rule is ops.STOP_GRADIENT:  # passes no gradient back: leads to no parameter
            continue
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
            local_derivatives(rule, xs, float(y[i, s]))
        except AutogradError as error:
            raise type(error)(f"{error} (traced replay, sample {s})") from None
    return local


def _entries(suspects: Any) -> list[tuple[int, int]]:
    """(node, sample) of the flagged entries of a group, lowest sample first."""
    np = _numpy()
    return [(int(i), int(s)) for s, i in np.argwhere(suspects.T)]


# -- dense layers found on the tape, replayed as matrix products -------------------------
#
# A layer of K neurons over n inputs is, on the tape, K sum nodes y_i = Σ_j w_ij·x_j (+ b_i),
# each over n products of a parameter with the same inputs x_1 … x_n, in the same order.
# The grouped replay would multiply K·n pairs elementwise, gather and reduce; the layer is
# one matrix product Y = W·X (+ b) over the (inputs, batch) block instead. Its backward is
# the chain rule with the table's own local derivatives, mul's (b, a) and sum's 1:
#     ∂E/∂x_j = Σ_i w_ij·∂E/∂y_i        (mul's ∂(a·b)/∂b = a, times sum's 1):  Wᵀ·G
#     ∂E/∂w_ij = Σ_p x_jp·∂E/∂y_ip      (mul's ∂(a·b)/∂a = b, summed over the batch): G·Xᵀ
#     ∂E/∂b_i = Σ_p ∂E/∂y_ip            (sum's 1)
# so the rule table stays the one source of derivatives. Nothing is declared by `nn`: any
# code that builds the pattern (``sum_values([w[i][j] * x[j] for j ...])``) gets it.

# Fusing is exact linear algebra of the tape's own nodes; the switch is for comparisons.
FUSE_LAYERS = True
# A "layer" of one neuron is a dot product: left to the grouped replay, unless it is the only
# candidate of its level and reads at least `LONE_NEURON_INPUTS` inputs (an MLP's output neuron):
# then the grouped replay would give its n weights n rows of S and its sum n parents in a chain,
# n numpy calls each way, where the matrix product of one row is a few (2-16-16-1 MLP: the
# replay's forward and backward take 10-20 % less with it fused).
SMALLEST_LAYER = 2
LONE_NEURON_INPUTS = 3
# Multiply-adds per BLAS call. OpenBLAS (numpy's BLAS) splits a product above 65536·4 of them
# across threads; on a busy machine its threads wait for each other (measured on 2 shared
# cores: a 64×64 by 64×1000 product took 5–15 ms on two threads, 0.2 ms on one). The
# replay's products are small, so they are cut along the batch into calls below that size,
# which OpenBLAS runs on the calling thread (as the benchmarks' PyTorch, set to one thread).
# None: one call per product. When the environment limits OpenBLAS to one thread (as the
# benchmarks do for every contestant) there is nothing to avoid, and one call per product is
# faster (a 128×128 by 128×256 product: 0.16 ms in one call, 0.21 ms in sixteen).
BLAS_CALL_SIZE: int | None = 65536 * 4
# Set by `_numpy` when it imports numpy, which is when OpenBLAS reads its environment.
_one_blas_thread = False


def _blas_limited_to_one_thread() -> bool:
    """True when OPENBLAS_NUM_THREADS (or, without it, OMP_NUM_THREADS) is 1: OpenBLAS's own switches."""
    import os

    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable)
        if value is not None:
            return value.strip() == "1"
    return False


def _columns(rows: int, inner: int, batch: int) -> int:
    """How many samples one BLAS call takes, for a (rows, inner) matrix times (inner, batch)."""
    if BLAS_CALL_SIZE is None or _one_blas_thread:
        return batch
    return max(1, BLAS_CALL_SIZE // max(1, rows * inner))


def _matmul(A: Any, B: Any, out: Any = None) -> Any:
    """A·B for an (inputs, batch) block B, in calls of `BLAS_CALL_SIZE` multiply-adds at most (into ``out``)."""
    np = _numpy()
    batch = B.shape[1]
    step = _columns(A.shape[0], A.shape[1], batch)
    if step >= batch:
        return np.matmul(A, B, out=out)
    if out is None:
        out = np.empty((A.shape[0], batch))
    for s in range(0, batch, step):
        np.matmul(A, B[:, s : s + step], out=out[:, s : s + step])
    return out


def _matmul_over_batch(A: Any, B: Any) -> Any:
    """A·Bᵀ for blocks A (m, batch) and B (n, batch): a sum over the batch, in calls as `_matmul`."""
    batch = A.shape[1]
    step = _columns(A.shape[0], B.shape[0], batch)
    if step >= batch:
        return A @ B.T
    total = A[:, :step] @ B[:, :step].T
    for s in range(step, batch, step):
        total += A[:, s : s + step] @ B[:, s : s + step].T
    return total


class _Pattern:
    """A layer found on the tape: K sums (``sums``) of n products each, read in the same order.

    ``weights`` holds the K·n weights row by row (w_ij = weights[i·n + j]), ``xs``
    the n inputs shared by every neuron, ``biases`` one parameter per neuron (or
    none), added at term position ``bias_at`` of every sum; ``w_first[i·n + j]`` says
    whether the product was written w·x (else x·w): only error messages need it.
    """

    __slots__ = ("sums", "xs", "weights", "biases", "bias_at", "w_first")

    def __init__(self, xs: tuple[Value, ...], bias_at: int | None) -> None:
        self.sums: list[Value] = []
        self.xs = xs
        self.weights: list[Value] = []
        self.biases: list[Value] = []
        self.bias_at = bias_at
        self.w_first: list[bool] = []


class _Stack(_Pattern):
    """Layers of one level with the same weights (and biases) over different inputs: one product W·[X₁ … X_P].

    A sequence model applies each weight matrix at every position: P layers that
    `_find_layers` finds side by side in one level (the positions do not depend on
    each other there). ``parts`` are the P layers; as a `_Pattern` the stack has
    their sums and inputs one after the other and their shared weights and biases.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: list[_Pattern]) -> None:
        first = parts[0]
        super().__init__(tuple(x for part in parts for x in part.xs), first.bias_at)
        self.parts = parts
        self.sums = [v for part in parts for v in part.sums]
        self.weights, self.biases, self.w_first = first.weights, first.biases, first.w_first


def _stacks(layers: list[_Pattern]) -> list[_Pattern]:
    """The layers of one level, those with the same weights and biases (in the same order) as one `_Stack`."""
    same: dict[tuple[tuple[int, ...], tuple[int, ...], int | None], list[_Pattern]] = {}
    for layer in layers:
        same.setdefault((tuple(map(id, layer.weights)), tuple(map(id, layer.biases)), layer.bias_at), []).append(layer)
    return [parts[0] if len(parts) == 1 else _Stack(parts) for parts in same.values()]


def _find_layers(
    levels: list[list[Value]], outputs: list[Value], traced_inputs: set[Value]
) -> dict[int, list[_Pattern]]:
    """The dense layers of each level (index into ``levels``); their products are removed from ``levels``.

    A sum joins a layer when each of its terms is either a product (mul) of
    exactly one parameter with a non-parameter, used by this sum alone (it is
    never computed, so nothing else may read it), or, once, a parameter: the
    bias. Sums of one level with the same inputs x_1 … x_n (the same Values in
    the same order) and the bias at the same place form a layer, if there are
    at least `SMALLEST_LAYER` of them (or one alone in its level, see
    `LONE_NEURON_INPUTS`). Sums of one level never depend on each
    other, so a layer replaces them at their level, and everything else keeps
    its level. Anything else (two parameters or none in a product, a product
    read twice, an extra term, different inputs) stays on the grouped path.
    """
    uses: dict[Value, int] = dict.fromkeys(outputs, 1)
    for nodes in levels:
        for v in nodes:
            for p in v.parents:
                uses[p] = uses.get(p, 0) + 1

    def is_parameter(v: Value) -> bool:
        return v._rule is None and v not in traced_inputs

    patterns: dict[int, list[_Pattern]] = {}
    fused_products: set[Value] = set()
    for depth, nodes in enumerate(levels):
        candidates: dict[tuple[tuple[int, ...], int | None], _Pattern] = {}
        for v in nodes:
            if v._rule is not ops.SUM:
                continue
            xs: list[Value] = []
            weights: list[Value] = []
            w_first: list[bool] = []
            bias: Value | None = None
            bias_at: int | None = None
            for position, term in enumerate(v.parents):
                if term._rule is ops.MUL and uses[term] == 1:
                    a, b = term.parents
                    if is_parameter(a) != is_parameter(b):
                        w, x = (a, b) if is_parameter(a) else (b, a)
                        weights.append(w)
                        xs.append(x)
                        w_first.append(w is a)
                        continue
                if bias is None and is_parameter(term):
                    bias, bias_at = term, position
                    continue
                break
            else:
                if xs:
                    # Values compare by identity, but keys compare them with ==: use ids.
                    key = (tuple(map(id, xs)), bias_at)
                    pattern = candidates.get(key)
                    if pattern is None:
                        pattern = candidates[key] = _Pattern(tuple(xs), bias_at)
                    pattern.sums.append(v)
                    pattern.weights.extend(weights)
                    pattern.w_first.extend(w_first)
                    if bias is not None:
                        pattern.biases.append(bias)
        layers = [pattern for pattern in candidates.values() if len(pattern.sums) >= SMALLEST_LAYER]
        if not layers and len(candidates) == 1:
            lone = next(iter(candidates.values()))
            if len(lone.sums) == 1 and len(lone.xs) >= LONE_NEURON_INPUTS:
                layers = [lone]
        if layers:
            patterns[depth] = _stacks(layers)
            fused = {v for pattern in layers for v in pattern.sums}
            levels[depth] = [v for v in nodes if v not in fused]
            fused_products.update(p for v in fused for p in v.parents if p._rule is ops.MUL)
    if fused_products:
        for depth, nodes in enumerate(levels):
            levels[depth] = [v for v in nodes if v not in fused_products]
    return patterns


def _read_from_rows(blocks: list[tuple[list[Value], bool | _Pattern | str]], outputs: list[Value]) -> set[Value]:
    """The Values some step reads from a row of S (or that are outputs); a layer's weights and biases are not."""
    read = set(outputs)
    for members, kind in blocks:
        if isinstance(kind, _Pattern):
            read.update(kind.xs)
        else:
            for v in members:
                read.update(v.parents)
    return read


class _Layer:
    """A fused layer: Y = W·X (+ b) forward, Wᵀ·G and G·Xᵀ backward (see `_find_layers`).

    ``outputs`` are the K sums' slots, ``xs`` the n input rows of S; ``weights``
    and ``biases`` index the vector of all parameters (slices when side by side),
    gathered into W (K, n) once per replay.
    """

    __slots__ = ("outputs", "xs", "flipped", "weights", "biases", "shape", "bias_at", "unique", "x_scatter", "w_first")

    def __init__(self, pattern: _Pattern, outputs: Any, slot: dict[Value, int], index: dict[Value, int]) -> None:
        np = _numpy()
        # No Value is kept (the recorded graph must be freed): error messages need only
        # each product's operand order, and name the weights through the parameter list.
        self.w_first = np.array(pattern.w_first, dtype=bool)
        self.outputs = _slice_or_index(outputs)
        self.shape = (len(pattern.sums), len(pattern.xs))
        x_slots = np.array([slot[x] for x in pattern.xs], dtype=np.intp)
        # Inputs in consecutive slots, last first (a layer reading the group of the layer below
        # numbered that way) are read as the slice in increasing order, a view rather than a copy
        # of the (inputs, batch) block, with W's columns reversed to match (a view of the small W).
        self.flipped = len(x_slots) > 1 and bool((x_slots == x_slots[0] - np.arange(len(x_slots))).all())
        self.xs = _slice_or_index(x_slots[::-1] if self.flipped else x_slots)
        weights = np.array([index[w] for w in pattern.weights], dtype=np.intp)
        biases = np.array([index[b] for b in pattern.biases], dtype=np.intp)
        # A parameter used twice in the matrix (shared weights) gets both gradients: np.add.at.
        self.unique = len(np.unique(weights)) == len(weights), len(np.unique(biases)) == len(biases)
        self.weights = _slice_or_index(weights)
        self.biases = _slice_or_index(biases) if len(biases) else None
        self.bias_at = pattern.bias_at
        self.x_scatter: _Scatter | None = None  # set when the inputs' gradients are needed

    def products(self, S: Any, theta: Any) -> tuple[Any, Any, Any]:
        """W (gathered from the parameter vector ``theta``), X (the input rows of S) and Y = W·X (+ b),
        written into the output rows of S (Y is their view). Under the caller's `np.errstate`: the
        fast replay's (inf - inf gives up on it), or `forward`'s, which ignores everything."""
        np = _numpy()
        W = theta[self.weights].reshape(self.shape)
        if self.flipped:  # a copy of the small W: numpy's product of a reversed row is ten times slower
            W = np.ascontiguousarray(W[:, ::-1])
        X = S[self.xs]
        Y = S[self.outputs]  # consecutive slots: a view
        _matmul(W, X, out=Y)
        if self.biases is not None:
            Y += theta[self.biases][:, None]
        return W, X, Y

    def forward(
        self, S: Any, theta: Any, anomaly: bool, name: Callable[[int], str], parameter: Callable[[int], str]
    ) -> list[Any]:
        """Y = W·X (+ b) into the output rows of S, with eager mode's non-finite sums; returns [W, X] for backward."""
        np = _numpy()
        with np.errstate(all="ignore"):  # mul and sum never raise: overflow is inf, NaN propagates
            W, X, Y = self.products(S, theta)
        if not np.isfinite(Y).all():
            b = None if self.biases is None else theta[self.biases][:, None]
            self._exact_sums(W, X, b, Y)
            if anomaly:
                self._report_forward(W, X, b, Y, S, name, parameter)
        return [W, X]

    def _weight_index(self, k: int) -> int:
        """The place in the parameter list of weight k (row by row) of the matrix."""
        w = self.weights
        return w.start + k * (w.step or 1) if isinstance(w, slice) else int(w[k])

    def _in_tape_order(self, W: Any, X: Any) -> tuple[Any, Any]:
        """W and X with the inputs in the order of the sums' terms (undoing `flipped`): eager mode's order."""
        return (W[:, ::-1], X[::-1]) if self.flipped else (W, X)

    def _exact_sums(self, W: Any, X: Any, b: Any, Y: Any) -> Any:
        """The samples with a non-finite output summed again term by term, in the order of eager mode.

        A matrix product may fuse the multiply and the add (w·x + acc rounded once), so a
        product that overflows to inf in eager mode need not overflow there, and its order
        of additions decides between inf and nan. Only these rare samples pay for it.
        """
        np = _numpy()
        W, X = self._in_tape_order(W, X)
        bad = ~np.isfinite(Y).all(axis=0)
        with np.errstate(all="ignore"):
            terms = list(np.moveaxis(W[:, :, None] * X[None, :, bad], 1, 0))  # n blocks (K, samples)
            if b is not None:
                terms.insert(self.bias_at, np.broadcast_to(b, terms[0].shape))  # type: ignore[arg-type]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
        Y[:, bad] = total
        return Y

    def _report_forward(
        self, W: Any, X: Any, b: Any, Y: Any, S: Any, name: Callable[[int], str], parameter: Callable[[int], str]
    ) -> None:
        """Under `detect_anomaly`: name the first non-finite product w·x, or else the sum, as eager mode does."""
        np = _numpy()
        i, s = _entries(~np.isfinite(Y))[0]
        n = self.shape[1]
        W, X = self._in_tape_order(W, X)
        x_slots = np.arange(S.shape[0])[self.xs]
        if self.flipped:
            x_slots = x_slots[::-1]
        with np.errstate(all="ignore"):
            products = W[i] * X[:, s]
        for j in range(n):
            if not np.isfinite(products[j]):
                w, x = float(W[i, j]), float(X[j, s])
                pair = [(w, parameter(self._weight_index(i * n + j))), (x, name(int(x_slots[j])))]
                if not self.w_first[i * n + j]:
                    pair.reverse()
                raise NonFiniteError(
                    f"anomaly in forward: mul({pair[0][0]!r}, {pair[1][0]!r}) = {float(products[j])} "
                    f"(traced replay, sample {s}; inputs: {pair[0][1]}, {pair[1][1]}); "
                    "check the inputs or guard the operation"
                )
        terms = [repr(float(v)) for v in products]
        if b is not None:
            terms.insert(self.bias_at, repr(float(b[i, 0])))  # type: ignore[arg-type]
        raise NonFiniteError(
            f"anomaly in forward: sum({', '.join(terms)}) = {float(Y[i, s])} (traced replay, sample {s}); "
            "check the inputs or guard the operation"
        )

    def backward(self, gathered: list[Any], S: Any, G: Any, totals: Any) -> None:
        """∂E/∂W = G·Xᵀ and ∂E/∂b = Σ_p G into ``totals`` (summed over the batch); ∂E/∂X = Wᵀ·G into G.

        Where a product overflows, the sums are taken again term by term, as eager mode does.
        """
        np = _numpy()
        W, X = gathered
        g = G[self.outputs]
        with np.errstate(all="ignore"):
            if mode.anomaly:
                self._check_gradients(W, X, g)
            dW = _matmul_over_batch(g, X)
            if not np.isfinite(dW).all():  # as in forward: products that overflow are inf first
                dW = (g[:, None, :] * X[None, :, :]).sum(axis=2)
            self._add_to_totals(totals, dW, g)
            if self.x_scatter is not None:
                dX = self._input_gradients(W, g)
                if not np.isfinite(dX).all():
                    dX = (W[:, :, None] * g[:, None, :]).sum(axis=0)
                self.x_scatter.add(G, dX)

    def send_gradients(self, gathered: list[Any], G: Any, totals: Any) -> None:
        """`backward` without its overflow repairs (the fast replay checks the totals once at the end)."""
        W, X = gathered
        g = G[self.outputs]
        self._add_to_totals(totals, _matmul_over_batch(g, X), g)
        scatter = self.x_scatter
        if scatter is not None:
            if scatter.direct():
                self._input_gradients(W, g, out=G[scatter.targets])
            else:
                scatter.add(G, self._input_gradients(W, g))

    def _input_gradients(self, W: Any, g: Any, out: Any = None) -> Any:
        """∂E/∂X = Wᵀ·G (into ``out``); for one neuron an outer product w_j·g_p, as a broadcast product
        (a matrix product with an inner size of 1 is many times slower, for the same numbers)."""
        if self.shape[0] == 1:
            return _numpy().multiply(W.T, g, out=out)
        return _matmul(W.T, g, out=out)

    def _add_to_totals(self, totals: Any, dW: Any, g: Any) -> None:
        """∂E/∂W (``dW``) and ∂E/∂b = Σ_p g into ``totals``; a weight used twice gets both (np.add.at)."""
        np = _numpy()
        if self.flipped:
            dW = dW[:, ::-1]  # back to the tape's order of the weights
        unique_w, unique_b = self.unique
        if unique_w:
            totals[self.weights] += dW.ravel()
        else:
            np.add.at(totals, self.weights, dW.ravel())
        if self.biases is not None:
            if unique_b:
                totals[self.biases] += g.sum(axis=1)
            else:
                np.add.at(totals, self.biases, g.sum(axis=1))

    def _check_gradients(self, W: Any, X: Any, g: Any) -> None:
        """Under `detect_anomaly`: raise at the first sample where a gradient through a product w·x is not finite."""
        np = _numpy()
        W, X = self._in_tape_order(W, X)
        to_w = g[:, None, :] * X[None, :, :]  # ∂(w·x)/∂w · g = x·g, per neuron, input and sample
        bad = ~np.isfinite(to_w)
        if self.x_scatter is not None:
            bad |= ~np.isfinite(W[:, :, None] * g[:, None, :])  # ∂(w·x)/∂x · g = w·g
        if not bad.any():
            return
        i, j, s = (int(k) for k in np.argwhere(bad.transpose(2, 0, 1))[0][[1, 2, 0]])
        raise NonFiniteError(
            f"anomaly in backward: a non-finite gradient flowing through mul({float(W[i, j])!r}, {float(X[j, s])!r}) "
            f"(traced replay, sample {s}, output grad {float(g[i, s])!r}); check the inputs or guard the operation"
        )


class _StackedLayer:
    """P fused layers sharing W (a `_Stack`): Y_p = W·X_p (+ b) for every p as one batched product.

    ``xs`` (P, n) are the input slots of each layer, ``outputs`` their K sums each, one
    layer after the other. Backward: ∂E/∂W = Σ_p G_p·X_pᵀ and ∂E/∂X_p = Wᵀ·G_p, the
    chain rule of `_Layer` summed over the layers. The P `_Layer`s themselves (``parts``)
    take over when a result is not finite or under `detect_anomaly` (they redo their sums
    in eager mode's order and name the failing product, so a stack reports as its layers do),
    and for batches too large for one BLAS call (`BLAS_CALL_SIZE`: they cut theirs).
    """

    __slots__ = ("parts", "outputs", "xs", "weights", "biases", "shape", "unique", "x_scatter")

    def __init__(self, stack: _Stack, outputs: Any, slot: dict[Value, int], index: dict[Value, int]) -> None:
        np = _numpy()
        K, n = len(stack.parts[0].sums), len(stack.parts[0].xs)
        self.parts = [_Layer(part, outputs[p * K : (p + 1) * K], slot, index) for p, part in enumerate(stack.parts)]
        self.shape = (K, n)
        self.outputs = _slice_or_index(outputs)
        self.xs = np.array([[slot[x] for x in part.xs] for part in stack.parts], dtype=np.intp)
        weights = np.array([index[w] for w in stack.weights], dtype=np.intp)
        biases = np.array([index[b] for b in stack.biases], dtype=np.intp)
        self.unique = len(np.unique(weights)) == len(weights), len(np.unique(biases)) == len(biases)
        self.weights = _slice_or_index(weights)
        self.biases = _slice_or_index(biases) if len(biases) else None
        self.x_scatter: _Scatter | None = None

    def plan_gradients(self, reaches: Any) -> None:
        """Every output reads the weights (parameters); the inputs' gradients are sent where they can reach one."""
        reaches[self.outputs] = True
        if reaches[self.xs].any():
            self.x_scatter = _Scatter(self.xs.ravel())
        for part, xs in zip(self.parts, self.xs):
            if reaches[xs].any():
                part.x_scatter = _Scatter(xs)

    def forward(
        self, S: Any, theta: Any, anomaly: bool, name: Callable[[int], str], parameter: Callable[[int], str]
    ) -> Any:
        """Y_p = W·X_p (+ b) into the output rows of S; returns (stacked?, what backward needs)."""
        np = _numpy()
        # A product too large for one BLAS call on the calling thread (`BLAS_CALL_SIZE`) is
        # left to the layers, which cut theirs along the batch.
        if not anomaly and _columns(*self.shape, S.shape[1]) >= S.shape[1]:
            W = theta[self.weights].reshape(self.shape)
            X = S[self.xs]  # (P, n, batch)
            with np.errstate(all="ignore"):  # mul and sum never raise: overflow is inf, NaN propagates
                Y = np.matmul(W, X)  # (P, K, batch)
                if self.biases is not None:
                    Y += theta[self.biases][:, None]
            if np.isfinite(Y).all():
                S[self.outputs] = Y.reshape(-1, Y.shape[-1])
                return True, (W, X, lambda: [part.forward(S, theta, anomaly, name, parameter) for part in self.parts])
        return False, [part.forward(S, theta, anomaly, name, parameter) for part in self.parts]

    def backward(self, gathered: tuple[bool, Any], S: Any, G: Any, totals: Any) -> None:
        """∂E/∂W = Σ_p G_p·X_pᵀ and ∂E/∂b = Σ_p Σ_s G_p into ``totals``; ∂E/∂X_p = Wᵀ·G_p into G."""
        np = _numpy()
        stacked, saved = gathered
        if stacked and not mode.anomaly:
            W, X, by_parts = saved
            P, n, batch = X.shape
            g = G[self.outputs].reshape(P, self.shape[0], batch)
            with np.errstate(all="ignore"):
                dW = np.matmul(g, X.transpose(0, 2, 1)).sum(axis=0)
                dX = np.matmul(W.T, g) if self.x_scatter is not None else None
            if np.isfinite(dW).all() and (dX is None or np.isfinite(dX).all()):
                unique_w, unique_b = self.unique
                if unique_w:
                    totals[self.weights] += dW.ravel()
                else:
                    np.add.at(totals, self.weights, dW.ravel())
                if self.biases is not None:
                    if unique_b:
                        totals[self.biases] += g.sum(axis=(0, 2))
                    else:
                        np.add.at(totals, self.biases, g.sum(axis=(0, 2)))
                if dX is not None and self.x_scatter is not None:
                    self.x_scatter.add(G, dX.reshape(P * n, batch))
                return
            # A product that overflows: the layers redo it in eager mode's order (their forward
            # writes the same outputs again and returns what their backward needs).
            saved = by_parts()
        for part, part_saved in zip(self.parts, saved):
            part.backward(part_saved, S, G, totals)


# -- selects (rule `ops.SELECT`): a gather forward, a scatter-add backward -----------------
#
# y = v_i picks one of its parents (i, v₀, …, v_{n-1}) by the number in i, a traced input
# (a token id, a class) that differs from sample to sample. Replayed as the rule's forward on
# arrays, every node would read all n choices of every sample; instead the choice's slot is
# looked up per node and sample, S[slot, sample] is gathered, and backward adds each
# sample's gradient into that slot's row, the rule's one-hot slope (∂y/∂v_k = [k = i],
# ∂y/∂i = 0) written as a scatter: the rule table stays the one source of derivatives.

#: The kind `_blocks` gives a level's select nodes.
SELECT_STEP = "select"


class _Select:
    """The select nodes of one level (however many): y_j = S[choices_j[i_j]] for each sample.

    ``index`` holds each node's index slot, ``choices`` (nodes, most choices) its
    choices' slots, padded with its first choice where a node has fewer (never
    picked: ``sizes`` bounds the index), ``outputs`` the nodes' own slots.
    """

    __slots__ = ("outputs", "index", "choices", "sizes", "rows", "needed")

    def __init__(self, outputs: Any, parents: list[list[int]]) -> None:
        np = _numpy()
        widest = max(len(p) for p in parents) - 1
        self.outputs = _slice_or_index(outputs)
        self.index = np.array([p[0] for p in parents], dtype=np.intp)
        self.choices = np.array([p[1:] + [p[1]] * (widest + 1 - len(p)) for p in parents], dtype=np.intp)
        self.sizes = np.array([len(p) - 1 for p in parents], dtype=float)[:, None]
        self.rows = np.arange(len(parents))[:, None]
        self.needed = False  # set by `plan_gradients`: does a choice lead to a parameter?

    def plan_gradients(self, reaches: Any) -> None:
        """Mark the outputs whose choices can reach a parameter (``reaches``, one flag per slot)."""
        reached = reaches[self.choices].any(axis=1)
        reaches[self.outputs] = reached
        self.needed = bool(reached.any())

    def forward(self, S: Any, anomaly: bool, name: Callable[[int], str]) -> Any:
        """Gather each node's chosen row of S into its output row; returns the chosen slots (nodes, batch)."""
        np = _numpy()
        i = S[self.index]
        valid = (i >= 0.0) & (i < self.sizes) & (i == np.floor(i))  # NaN fails every test
        if not valid.all():
            node, s = _entries(~valid)[0]
            raise DomainError(
                f"select: index {float(i[node, s])!r} is not an integer in [0, {int(self.sizes[node, 0])}) "
                f"(traced replay, sample {s}; index: {name(int(self.index[node]))})"
            )
        chosen = self.choices[self.rows, i.astype(np.intp)]
        y = S[chosen, np.arange(S.shape[1])]
        if anomaly and not np.isfinite(y).all():
            node, s = _entries(~np.isfinite(y))[0]
            raise NonFiniteError(
                f"anomaly in forward: select picked {float(y[node, s])} (traced replay, sample {s}; "
                f"input: {name(int(chosen[node, s]))}); check the inputs or guard the operation"
            )
        S[self.outputs] = y
        return chosen

    def backward(self, chosen: Any, G: Any) -> None:
        """G[chosen slot, sample] += G[y, sample]: the one-hot slope; repeated picks add up (np.add.at)."""
        if self.needed:
            np = _numpy()
            np.add.at(G, (chosen, np.arange(G.shape[1])), G[self.outputs])
