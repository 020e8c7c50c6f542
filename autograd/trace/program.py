"""The fast replay of a trace at one batch size, set up once: `Program`.

A training loop replays the same tape at the same batch size thousands of times. Each
replay used to allocate S and G, slice every step's rows out of them and look up how
to run each step; for a small model that bookkeeping cost more than the arithmetic.
A `Program` does it once per batch size: S and G are allocated once, every step's rows
are views made once, and the tape is a list of small objects (`_LayerRun`, `_GroupRun`,
`_ChainRun`, `_Delegate`) whose ``forward()`` and ``backward(totals)`` only compute.

It is the fast pass of `replay`'s module docstring: no diagnostics, one `np.errstate`
for the tape; a floating-point flag, a fused layer's non-finite output or a non-finite
result makes it give up (``forward`` and ``backward`` return None) and `Trace` runs
the careful pass, which raises eager mode's errors or gives its non-finite numbers.

When every leaf is finite (the inputs and constants always are; the parameters θ are
looked at in `Program.load`) the pass need not look at its numbers at all. IEEE arithmetic
makes a NaN or an infinity out of finite numbers only by raising a flag: overflow, an
invalid operation (0/0, inf - inf, sqrt(-1)) or a division by zero. So the pass runs with
all three raised (``strict``) and gives up at the first: whatever it finishes is finite,
every fused layer's outputs, the outputs and the totals, with no test of any of them.
(That takes every step to compute under the pass's `np.errstate` from finite numbers of its
own: a stack of layers, which handles its own non-finite products, keeps the tests, as does
a user's operation (`define_op`), whose formula may hold an inf, and weights not all finite.)

G is not zeroed as a whole: the rows that are written before anything adds to them
(`Trace._plan_first_writes`: the outputs' seeds and the scatters marked ``assign``), and
those nothing reads (the traced inputs', the constants'), are left as they are; only the
others are set to 0 at the start of each backward. Likewise the vector of the parameters'
gradients (`Program._plan_totals`): a fused layer that is the first to reach its weights'
entries writes its products there, and only the entries added to first are zeroed.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

from .kernels import NumpyMath, _Chain, _columns, _Group, _matmul_over_batch, _numpy, _send_gradients, _times
from .layers import _Layer, _Select, _StackedLayer

# numpy, set by the first `Program` (importing autograd never imports it).
np: Any = None

#: Programs kept per trace (one per batch size: a mini-batch loop has two, the full batches and the
#: last one, and scoring a data set a third); the oldest is dropped beyond that.
KEPT_PROGRAMS = 4
#: Entries of S (and of G) above which a program is not kept (2^20: 8 MB each, so at most 64 MB per
#: trace): a one-off replay of a huge tape (a million-node chain over a large batch) gives its memory back.
KEPT_ENTRIES = 1 << 20


def _finite_sum(block: Any) -> bool:
    """True when the block's sum is finite, and then so is every entry (a NaN or an infinity makes the
    sum one). One pass, no temporary: the fast pass's test. False also, rarely, when finite entries near
    the largest float overflow the sum; the careful pass then looks closer, which is never wrong."""
    return math.isfinite(np.add.reduce(block, axis=None))


class _GiveUp(Exception):
    """Raised inside a fast pass where the careful pass must look closer."""


def _rows(A: Any, where: Any) -> Any:
    """The rows ``where`` of A: a view made now when ``where`` is a slice, else None (gather at each replay)."""
    return A[where] if isinstance(where, slice) else None


class _LayerRun:
    """A fused layer (`_Layer`): Y = W·X (+ b) into its rows of S, W and b views of the program's θ."""

    __slots__ = (
        *("layer", "S", "G", "theta", "W", "X", "Y", "b", "g", "into", "saved"),
        *("dW", "db", "write_w", "write_b", "one_call"),
    )

    def __init__(self, layer: _Layer, S: Any, G: Any, theta: Any) -> None:
        self.layer, self.S, self.G, self.theta = layer, S, G, theta
        weights = _rows(theta, layer.weights)
        self.W = None if weights is None else weights.reshape(layer.shape)
        self.X = _rows(S, layer.xs)
        self.Y = S[layer.outputs]  # a layer's sums are consecutive slots
        self.b = theta[layer.biases][:, None] if isinstance(layer.biases, slice) else None  # else gathered
        self.g = G[layer.outputs]
        scatter = layer.x_scatter
        self.into = G[scatter.targets] if scatter is not None and scatter.direct() else None
        self.saved: tuple[Any, Any] = (None, None)
        self.dW: Any = None  # set by `plan_totals`
        self.db: Any = None
        self.write_w = self.write_b = False
        # W, X and b views made once, W not flipped, and each product small enough for one BLAS call
        # at this batch size (`_columns`): then numpy's products are called here, nothing in between.
        n = S.shape[1]
        self.one_call = (
            self.W is not None
            and self.X is not None
            and not layer.flipped
            and (layer.biases is None or self.b is not None)
            and _columns(*layer.shape, n) >= n
        )

    def forward(self, strict: bool) -> None:
        if self.one_call:
            Y = np.matmul(self.W, self.X, out=self.Y)
            if self.b is not None:
                Y += self.b
            if not strict and not _finite_sum(Y):
                raise _GiveUp  # as below
            self.saved = self.W, self.X
            return
        layer = self.layer
        W = self.W if self.W is not None else self.theta[layer.weights].reshape(layer.shape)
        X = self.X if self.X is not None else self.S[layer.xs]
        b = self.b
        if b is None and layer.biases is not None:
            b = self.theta[layer.biases][:, None]
        W = layer.product(W, X, self.Y, b)
        if not strict and not _finite_sum(self.Y):
            raise _GiveUp  # the careful pass sums these samples again in eager mode's order
        self.saved = W, X

    def plan_totals(self, totals: Any, claim: Any) -> None:
        """Views of ``totals`` (the program's vector of ∂E/∂θ) for ∂E/∂W and ∂E/∂b, written by the
        products themselves where the layer is the first to reach them (``claim``, see `Program`);
        a layer whose parameters are not side by side, or are repeated, adds through the general path."""
        layer = self.layer
        weights, biases = layer.weights, layer.biases
        side_by_side = all(
            isinstance(where, slice) and (where.step or 1) == 1 for where in (weights, biases) if where is not None
        )
        if not side_by_side or not all(layer.unique):
            self.dW = self.db = None
            claim(weights, False)
            if biases is not None:
                claim(biases, False)
            return
        dW = totals[weights].reshape(layer.shape)
        self.dW = dW[:, ::-1] if layer.flipped else dW  # the product's columns are the tape's reversed
        self.write_w = claim(weights, True)
        self.db = None if biases is None else totals[biases]
        self.write_b = biases is not None and claim(biases, True)

    def backward(self, totals: Any) -> None:
        W, X = self.saved
        layer, g = self.layer, self.g
        if self.dW is None:
            layer.send_gradients(W, X, g, self.G, totals, self.into)
            return
        # ∂E/∂W = G·Xᵀ and ∂E/∂b = Σ_p G (`_Layer.send_gradients`), into the views of the totals.
        if self.write_w:
            if self.one_call:
                np.matmul(g, X.T, out=self.dW)
            else:
                _matmul_over_batch(g, X, out=self.dW)
        else:
            self.dW += _matmul_over_batch(g, X)
        if self.db is not None:
            if self.write_b:
                np.add.reduce(g, axis=1, out=self.db)
            else:
                self.db += np.add.reduce(g, axis=1)
        if self.into is not None:
            if self.one_call and layer.shape[0] > 1:
                np.matmul(W.T, g, out=self.into)  # (`_Layer._input_gradients`)
            else:
                layer._input_gradients(W, g, out=self.into)
        elif layer.x_scatter is not None:
            layer.x_scatter.add(self.G, layer._input_gradients(W, g))


class _GroupRun:
    """A group (`_Group`): the rule's forward on its (m, batch) blocks; relu written in place."""

    __slots__ = ("group", "S", "G", "sources", "Y", "g", "mask", "into", "inputs")

    def __init__(self, group: _Group, S: Any, G: Any) -> None:
        self.group, self.S, self.G = group, S, G
        views = [_rows(S, source) for source in group.sources]
        # The inputs as views made once when every parent row is a slice, else gathered at each replay.
        self.sources = None if any(view is None for view in views) else views
        self.Y, self.g = _rows(S, group.outputs), _rows(G, group.outputs)  # consecutive slots: views
        # After a fused layer (whose outputs the forward knows to be finite) relu's slope 1 - [x <= 0]
        # (NumpyMath.step) is the comparison [x > 0] itself, written into a buffer kept for it.
        self.mask = np.empty(self.Y.shape, dtype=bool) if group.after_layer and group.scatters else None
        # The rows of G that such a relu's slope times G[y] goes to, when written straight (`_Scatter.direct`).
        scatter = group.scatters[0][1] if self.mask is not None else None
        self.into = G[scatter.targets] if scatter is not None and scatter.direct() else None
        self.inputs: list[Any] = []

    def forward(self, strict: bool) -> None:
        group = self.group
        inputs = self.sources if self.sources is not None else [self.S[source] for source in group.sources]
        Y = self.Y
        if group.relu:  # NumpyMath.relu, max(x, 0) + 0 (no -0.0), written in place (a relu group's rows are a slice)
            np.maximum(inputs[0], 0.0, out=Y)
            if not group.feeds_layers:  # (only matrix products read it: the sign of a zero is lost there)
                np.add(Y, 0.0, out=Y)
        elif Y is not None:
            Y[...] = group.rule.forward(NumpyMath, *inputs)
        else:
            self.S[group.outputs] = group.rule.forward(NumpyMath, *inputs)
        self.inputs = inputs

    def backward(self, totals: Any) -> None:
        group = self.group
        if not group.scatters:
            return
        if self.mask is not None:
            local = (np.greater(self.inputs[0], 0.0, out=self.mask),)
            if self.into is not None:
                np.multiply(self.mask, self.g, out=self.into)
                return
        else:
            y = self.Y if self.Y is not None else self.S[group.outputs]
            local = group.rule.derivative(NumpyMath, *self.inputs, y)
        _send_gradients(group, local, self.G, self.g)


class _ChainRun:
    """A chain (`_Chain`): node by node on (1, batch) rows; its leaf groups after its walk backward.

    Each node's rows are views made once: ``nodes`` holds (forward, its row, its parents'
    rows) in tape order, ``walk`` (derivative, its parents' rows and its own, its gradient
    row, [(j, gradient row of parent j)] for the parents that lead to a parameter) in
    reverse order, for the nodes that lead to one.
    """

    __slots__ = ("chain", "S", "G", "nodes", "walk")

    def __init__(self, chain: _Chain, S: Any, G: Any, needed: bytearray) -> None:
        self.chain, self.S, self.G = chain, S, G
        size, n = S.shape
        rows, grad_rows = S.reshape(size, 1, n), G.reshape(size, 1, n)
        self.nodes = [
            (rule.forward, rows[k], [rows[p] for p in parents])
            for rule, k, parents in zip(chain.rules, chain.slots, chain.parents)
        ]
        self.walk = [
            (
                rule.derivative,
                [*[rows[p] for p in parents], rows[k]],
                grad_rows[k],
                [(j, grad_rows[p]) for j, p in enumerate(parents) if needed[p]],
            )
            for rule, k, parents in zip(reversed(chain.rules), reversed(chain.slots), reversed(chain.parents))
            if needed[k]
        ]

    def forward(self, strict: bool) -> None:
        for rule_forward, row, parents in self.nodes:
            row[...] = rule_forward(NumpyMath, *parents)

    def backward(self, totals: Any) -> None:
        for derivative, rows, g, sends in self.walk:
            local = derivative(NumpyMath, *rows)
            for j, into in sends:
                into += _times(local[j], g)
        S, chain = self.S, self.chain
        for group in chain.leaf_groups:
            inputs = [S[source] for source in group.sources]
            _send_gradients(group, group.rule.derivative(NumpyMath, *inputs, S[group.outputs]), self.G)


class _Delegate:
    """A select or a stack of layers: their own fast forward and backward on the program's S, G and θ."""

    __slots__ = ("step", "S", "G", "theta", "name", "parameter", "saved")

    def __init__(self, step: _Select | _StackedLayer, S: Any, G: Any, theta: Any, trace: Any) -> None:
        self.step, self.S, self.G, self.theta = step, S, G, theta
        # What an error names (a slot, a parameter): asked of the trace, held weakly (see `Program`).
        self.name = lambda slot: trace._slot_name(slot)
        self.parameter = lambda i: trace._parameter_name(i)
        self.saved: Any = None

    def forward(self, strict: bool) -> None:
        step = self.step
        if isinstance(step, _Select):
            self.saved = step.forward(self.S, False, self.name)
        else:
            self.saved = step.forward(self.S, self.theta, False, self.name, self.parameter)

    def backward(self, totals: Any) -> None:
        step = self.step
        if isinstance(step, _Select):
            step.backward(self.saved, self.G)
        else:
            step.backward(self.saved, self.S, self.G, totals)


class Program:
    """The fast forward and backward of ``trace`` for batches of ``n`` samples (see the module docstring).

    ``S`` holds the last forward's slots, ``theta`` its parameters (copied in, so the
    layers' weight matrices are views made once).
    """

    def __init__(self, trace: Any, n: int) -> None:
        global np
        np = _numpy()
        # The trace keeps its programs; a program holds it weakly, so that dropping the trace frees
        # S and G at once (no reference cycle left for the garbage collector).
        trace = weakref.proxy(trace)
        self.outputs, self.distinct_outputs = trace._outputs, trace._distinct_outputs
        self.n = n
        S = self.S = np.empty((trace.size, n))
        G = self.G = np.empty((trace.size, n))
        theta = self.theta = np.empty(len(trace.parameters))
        first_parameter = len(trace.inputs)
        rows = trace._row_parameters
        first_constant = first_parameter + rows
        self.input_rows = S[:first_parameter]
        self.held_inputs: Any = None  # the inputs whose rows S holds
        self.parameter_rows = S[first_parameter:first_constant]
        self.theta_rows = theta[:rows, None]
        self.parameter_grads = G[first_parameter:first_constant]
        S[first_constant : first_constant + len(trace._constants)] = trace._constants[:, None]
        self.steps: list[Any] = []
        for step in trace.steps:
            if isinstance(step, _Layer):
                self.steps.append(_LayerRun(step, S, G, theta))
            elif isinstance(step, _Group):
                self.steps.append(_GroupRun(step, S, G))
            elif isinstance(step, _Chain):
                self.steps.append(_ChainRun(step, S, G, trace._needed))
            else:
                self.steps.append(_Delegate(step, S, G, theta, trace))
        self.backward_steps = self.steps[::-1]
        self.zero_rows = _runs(trace._rows_to_zero)
        self.totals = np.empty(len(theta))  # ∂E/∂θ, returned as a copy
        self.write_rows, self.zero_totals = self._plan_totals()
        # The inputs and constants are finite (`Trace.forward` and `autograd.value.constant` refuse
        # others), so the weights decide. With a stack, which handles its own non-finite products
        # (under its own np.errstate), or an operation of the user's (`define_op`: its formula may
        # hold an inf of its own, which no flag announces), the tests stay.
        self.may_be_strict = not any(
            isinstance(step.step, _StackedLayer) for step in self.steps if isinstance(step, _Delegate)
        ) and not _user_rules(trace.steps)
        self.strict = False  # the last `load` left only finite leaves (see the module docstring)
        self.strict_forward = False  # the last forward ran strict: its backward may too

    def _plan_totals(self) -> tuple[bool, list[slice]]:
        """Who writes each entry of `totals` first in the backward pass, so that it need not be zeroed.

        Walked in the order of that pass: a fused layer whose parameters no step before it has
        reached writes their gradients (`_LayerRun.plan_totals`); a layer that cannot, or comes later,
        and a stack of layers add to them; last come the row parameters, their rows of G summed.
        Returns whether that sum may be written, and the runs of entries to zero: those an addition
        reaches first, and those nothing reaches (a parameter that no output depends on).
        """
        reached = np.zeros(len(self.theta), dtype=bool)
        to_zero = np.zeros(len(self.theta), dtype=bool)

        def claim(where: Any, may_write: bool) -> bool:
            if may_write and not reached[where].any():
                reached[where] = True
                return True
            to_zero[where] |= ~reached[where]
            reached[where] = True
            return False

        for step in self.backward_steps:
            if isinstance(step, _LayerRun):
                step.plan_totals(self.totals, claim)
            elif isinstance(step, _Delegate) and isinstance(step.step, _StackedLayer):
                claim(step.step.weights, False)
                if step.step.biases is not None:
                    claim(step.step.biases, False)
        write_rows = claim(slice(0, len(self.theta_rows)), True)
        return write_rows, _runs(to_zero | ~reached)

    def load(self, X: Any, theta: Any) -> None:
        """The leaves' rows of S for inputs X (inputs, n) and parameters θ (θ copied into `theta`): where
        either pass starts (the constants' rows were written once)."""
        self.theta[...] = theta
        if X is not self.held_inputs:  # (a `Batch` replayed again is the same read-only block: its rows are in S)
            self.input_rows[...] = X
            self.held_inputs = X
        if len(self.theta_rows):
            self.parameter_rows[...] = self.theta_rows
        # (np.isfinite, not `_finite_sum`: outside the passes' np.errstate a sum that overflows would warn)
        self.strict = self.may_be_strict and bool(np.isfinite(self.theta).all())

    def forward(self) -> Any:
        """Replay the tape from the leaves `load` wrote: the outputs' rows, (outputs, n), a copy; None
        where the careful pass must run."""
        strict = self.strict
        self.strict_forward = False
        try:
            with np.errstate(divide="raise", over="raise" if strict else "ignore", invalid="raise", under="ignore"):
                for step in self.steps:
                    step.forward(strict)
                out = self.S[self.outputs]
                if strict or _finite_sum(out):
                    self.strict_forward = strict
                    return out
        except (FloatingPointError, _GiveUp):
            pass
        return None

    def backward(self, dout: Any) -> Any:
        """Σ_p dout_p·∂out_p/∂w for every parameter (after a successful `forward`; ``dout`` finite), or
        None where the careful pass must run: a derivative's pole or domain error, inf - inf or 0·inf, a
        non-finite total (after a strict forward: any overflow, see the module docstring)."""
        G = self.G
        for rows in self.zero_rows:
            G[rows] = 0.0
        if self.distinct_outputs:
            G[self.outputs] = dout
        else:  # an output returned twice gets both seeds
            G[self.outputs] = 0.0
            np.add.at(G, self.outputs, dout)
        totals = self.totals
        for entries in self.zero_totals:
            totals[entries] = 0.0
        strict = self.strict_forward
        try:
            with np.errstate(divide="raise", over="raise" if strict else "ignore", invalid="raise", under="ignore"):
                for step in self.backward_steps:
                    step.backward(totals)
                if len(self.theta_rows):
                    row_totals = totals[: len(self.theta_rows)]
                    if self.write_rows:
                        np.add.reduce(self.parameter_grads, axis=1, out=row_totals)
                    else:
                        row_totals += np.add.reduce(self.parameter_grads, axis=1)
                if strict or _finite_sum(totals):
                    return totals.copy()
        except FloatingPointError:
            pass
        return None


def program_for(trace: Any, n: int) -> Program:
    """The `Program` of ``trace`` for batches of n samples in this thread: made at the first replay of
    that size, kept for the next ones (the `KEPT_PROGRAMS` used last, unless larger than `KEPT_ENTRIES`).

    One per thread: two threads replaying one trace at once must not share S (each forward returns
    its own outputs; a backward still belongs to the last forward of the trace, whichever thread ran it).
    """
    key = (n, threading.get_ident())
    last_key, last = trace._last_program  # (a training loop replays one size again and again)
    if last_key == key:
        return last  # type: ignore[no-any-return]
    programs = trace._programs
    program = programs.pop(key, None)
    if program is None:
        program = Program(trace, n)
    if program.S.size <= KEPT_ENTRIES:
        programs[key] = program  # (re)inserted last: the dict's order is the order of use
        trace._last_program = (key, program)  # one assignment: a thread reads the old pair or the new
        if len(programs) > KEPT_PROGRAMS:
            try:
                programs.pop(next(iter(programs)), None)
            except RuntimeError:  # another thread changed the dict just then: drop one next time
                pass
    return program


def _user_rules(steps: list[Any]) -> bool:
    """True when a group or chain of ``steps`` runs a rule made by `autograd.define_op`."""
    from ..functions import USER_RULES

    user = set(map(id, USER_RULES.values()))
    for step in steps:
        if isinstance(step, _Group) and id(step.rule) in user:
            return True
        if isinstance(step, _Chain) and any(id(rule) in user for rule in step.rules):
            return True
    return False


def _runs(flags: Any) -> list[slice]:
    """The runs of consecutive True entries of a boolean array, as slices."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
