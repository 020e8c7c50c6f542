"""The tape and its replay: `Trace` numbers the slots of the schedule's blocks, plans which
gradients are worth computing, and replays forward and backward over a batch (a fast pass, and a
careful one where it fails); `Batch`, a batch checked once, and `Seed`, the weights of the outputs
checked once. The fast pass itself is a `Program` (module `program`), one per batch size.

A training loop can keep the parameters in an array instead (`nn.Trainer`
does, with the traced engine): ``forward(batch, theta=θ)`` replays with the
vector θ (in the order of `Trace.parameters`) rather than each ``.data``, and
`Trace.gradient` returns the vector of Σ_p ∂E_p/∂w instead of adding it to the
``.grad``s: no Python loop over the parameters on either side. A loop that replays
the same samples at every step (full-batch training) has them checked and laid out
once, `Trace.batch`, and passes that `Batch` to ``forward`` instead; likewise the
weights of the outputs, `Trace.seed`, a `Seed` for `gradient`.

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
(its numbers are the same; only the diagnosis differs; a backward that gives up
runs the careful forward again first, for what the careful backward reads). With every
weight finite the fast pass raises overflow too and tests no number (`program`'s docstring).
It writes a relu group's max(x, 0) straight into its rows (without eager mode's + 0.0 where
only fused layers read them: `Trace._mark_relus`), and after a fused layer (whose outputs it
knows to be finite) takes relu's slope 1 - [x <= 0] as [x > 0], one numpy call less: the two
differ only at x = NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .. import ops
from ..backward import gradient_lock
from ..errors import InvalidArgumentError, InvalidTypeError, NonFiniteError, ShapeError, TraceError
from ..mode import mode
from ..value import CONSTANT, Value, as_float
from . import schedule
from .kernels import (
    NumpyMath,
    _Chain,
    _check_gradient,
    _contributions,
    _diagnose_derivative,
    _entries,
    _Group,
    _group_backward,
    _leaf_groups,
    _numpy,
    _run_forward,
    _Scatter,
)
from .layers import _Layer, _Select, _StackedLayer
from .program import Program, program_for
from .schedule import (
    SELECT_STEP,
    _blocks,
    _find_layers,
    _nodes_by_level,
    _Pattern,
    _read_from_rows,
    _Stack,
    _union_order,
)


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
        patterns = _find_layers(levels, outputs, traced_inputs) if schedule.FUSE_LAYERS else {}
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
        self._mark_relus()
        self._last: tuple[Any, list[list[Any]] | Program] | None = None
        self._last_fast = False  # `_last` made by the fast forward (a `Program`)
        self._gradient_fast = False  # the last gradient made by the fast backward
        self._programs: dict[tuple[int, int], Program] = {}  # by batch size and thread, least recently used first
        self._last_program: tuple[Any, Program | None] = (None, None)  # the last one kept, with its key

    @property
    def outputs_checked(self) -> bool:
        """True when the last `forward` ran the fast pass, which found every output finite
        (False: the careful pass ran, and the outputs may hold NaN or inf, as eager mode gives)."""
        return self._last_fast

    @property
    def gradient_checked(self) -> bool:
        """True when the last `gradient` (or `backward`) ran the fast pass, which found every total
        finite (False: the careful pass ran, and a total may be NaN or inf, as eager mode gives)."""
        return self._gradient_fast

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

    def _mark_relus(self) -> None:
        """Mark the relu groups that read exactly the outputs of a fused layer (`_Group.after_layer`),
        and those that only fused layers read (`_Group.feeds_layers`).

        Eager relu gives +0.0 where max(x, 0) gives -0.0 (x = -0.0), which a sign-sensitive op
        downstream (atan2, copysign) tells apart. A matrix product does not pass it on: it adds
        w·x to +0.0, where eager mode's sum of terms that are all -0.0 is -0.0, so the sign of a
        zero it makes is its own either way, and the fast pass skips the + 0.0 for such a relu.
        """
        np = _numpy()
        size = self.size
        layer_rows = {
            step.outputs.indices(size)
            for step in self.steps
            if isinstance(step, _Layer) and isinstance(step.outputs, slice)
        }
        read = np.zeros(size, dtype=bool)  # read by anything but a fused layer's product (or returned)
        read[self._outputs] = True
        for step in self.steps:
            if isinstance(step, _Group):
                for source in step.sources:
                    read[source] = True
            elif isinstance(step, _Chain):
                for parents in step.parents:
                    read[list(parents)] = True
            elif isinstance(step, _Select):
                read[step.index] = True
                read[step.choices.ravel()] = True
            elif isinstance(step, _StackedLayer):
                read[step.xs.ravel()] = True  # (its layers may sum term by term, in eager mode's order)
        for step in self.groups:
            source = step.sources[0]
            step.after_layer = step.relu and isinstance(source, slice) and source.indices(size) in layer_rows
            step.feeds_layers = step.relu and not read[step.outputs].any()

    def _plan_first_writes(self) -> None:
        """Let each scatter that is the first to reach all of its rows of G write them rather than add.

        G starts at zero, so the first contribution to a row may be written instead of
        added (one pass over the block fewer, the same numbers). Walked in the order of
        the backward pass: the outputs' seeds first, a chain's walk adds into its nodes'
        parents (all of them marked, to be safe), its leaf groups come after it.
        ``_rows_to_zero`` marks the rows a `Program` must set to 0 before its backward pass:
        those some step reads or adds to, unless their first write is such an assignment
        (or a seed); the traced inputs' and the constants' rows are read by none.
        """
        np = _numpy()
        written = np.zeros(self.size, dtype=bool)
        written[self._outputs] = True
        assigned = written.copy() if self._distinct_outputs else np.zeros(self.size, dtype=bool)
        slots = np.arange(self.size)

        def first(scatter: _Scatter) -> None:
            rows = slots[scatter.targets]
            scatter.assign = not written[rows].any()
            written[rows] = True
            assigned[rows] |= scatter.assign

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
        read = written.copy()  # every row written to, the row parameters' (summed), every operation's
        first_parameter, first_constant = len(self.inputs), len(self.inputs) + self._row_parameters
        read[first_parameter:first_constant] = True
        read[first_constant + len(self._constants) :] = True
        self._rows_to_zero = read & ~assigned

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
        elif type(theta) is np.ndarray and theta.dtype == float and theta.shape == (len(self.parameters),):
            pass  # a training loop's vector of weights, as it should be
        elif np.shape(theta) != (len(self.parameters),):
            raise ShapeError(
                f"Trace.forward: theta must hold the {len(self.parameters)} parameters, got shape {np.shape(theta)}"
            )
        else:
            theta = np.asarray(theta, dtype=float)
        # The fast pass (`Program`), unless anomalies are looked for; where it gives up, the careful
        # pass runs from the same leaves.
        program = program_for(self, X.shape[1])
        program.load(X, theta)
        S = program.S
        out = None if mode.anomaly else program.forward()
        self._last_fast = out is not None
        if out is not None:
            self._last = (S, program)
            return out[0] if self.single_output else out.T
        self._last = (S, self._careful_forward(S, program.theta))
        out = S[self._outputs]  # (a copy: an index array picks the rows; returned transposed, a view of it)
        return out[0] if self.single_output else out.T

    def seed(self, dout: Any, n: int) -> Seed:
        """``dout`` for batches of n samples as `gradient` takes it, checked and laid out once:
        ``gradient(trace.seed(dout, n))`` equals ``gradient(dout)`` after a forward of n samples,
        without checking ``dout`` again at every step (a training loop seeds every step alike)."""
        block = self._output_gradient(dout, n).copy()
        block.setflags(write=False)  # what was checked cannot change
        return Seed(self, block)

    def batch(self, *batches: Any) -> Batch:
        """The batch as `forward` takes it, checked and laid out once: ``forward(trace.batch(X, T))``
        equals ``forward(X, T)``, without checking X and T again at every replay (a full-batch
        training loop replays the same samples at every step)."""
        block = _numpy().ascontiguousarray(self._batch_inputs(batches))
        block.setflags(write=False)  # what was checked cannot change
        return Batch(self, block)

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
        dout = dout.block_for(self, n) if type(dout) is Seed else self._output_gradient(dout, n)
        if isinstance(gathered, Program):  # the fast forward ran: its backward, unless that gives up
            totals = None if mode.anomaly else gathered.backward(dout)
            self._gradient_fast = totals is not None
            if totals is not None:
                return totals
            gathered = self._careful_forward(S, gathered.theta)  # the same numbers, and what backward needs
            self._last = (S, gathered)
        self._gradient_fast = False
        return self._careful_backward(S, gathered, dout)

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
            array = _real_array(batch, f"Trace.forward: argument {a}")
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
        d = _real_array(dout, "Trace.backward: dout")
        if d.shape != shape:
            raise ShapeError(
                f"Trace.backward: dout must be one number or have the shape of forward's result {shape}, got {d.shape}"
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


class Seed:
    """Weights of the outputs checked by `Trace.seed` for one trace and batch size: their (outputs, n)
    block, read-only."""

    __slots__ = ("trace", "block")

    def __init__(self, trace: Trace, block: Any) -> None:
        self.trace, self.block = trace, block

    def block_for(self, trace: Trace, n: int) -> Any:
        """The block, if this seed was made for ``trace`` and a batch of n samples."""
        if trace is not self.trace:
            raise TraceError("Trace.gradient: this Seed was made by another trace (Trace.seed)")
        if self.block.shape[1] != n:
            raise ShapeError(f"Trace.gradient: this Seed is for {self.block.shape[1]} samples, the forward had {n}")
        return self.block

    def __repr__(self) -> str:
        return f"Seed({self.block.shape[1]} samples of {self.block.shape[0]} outputs)"


def _real_array(x: Any, what: str) -> Any:
    """``x`` (a batch, a dout) as a numpy array of real numbers, else the error naming ``what``."""
    try:
        array = _numpy().asarray(x)
    except ValueError as exc:
        raise ShapeError(f"{what} is not a rectangular array ({exc})") from None
    if array.dtype.kind not in "iuf":
        raise InvalidTypeError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return array


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
