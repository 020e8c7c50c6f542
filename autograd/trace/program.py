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

G is not zeroed as a whole: the rows that are written before anything adds to them
(`Trace._plan_first_writes`: the outputs' seeds and the scatters marked ``assign``), and
those nothing reads (the traced inputs', the constants'), are left as they are; only the
others are set to 0 at the start of each backward.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

from .kernels import NumpyMath, _Chain, _contributions, _Group, _numpy, _send_gradients
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

    __slots__ = ("layer", "S", "G", "theta", "W", "X", "Y", "b", "g", "into", "saved")

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

    def forward(self) -> None:
        layer = self.layer
        W = self.W if self.W is not None else self.theta[layer.weights].reshape(layer.shape)
        X = self.X if self.X is not None else self.S[layer.xs]
        b = self.b
        if b is None and layer.biases is not None:
            b = self.theta[layer.biases][:, None]
        W = layer.product(W, X, self.Y, b)
        if not _finite_sum(self.Y):
            raise _GiveUp  # the careful pass sums these samples again in eager mode's order
        self.saved = W, X

    def backward(self, totals: Any) -> None:
        W, X = self.saved
        self.layer.send_gradients(W, X, self.g, self.G, totals, self.into)


class _GroupRun:
    """A group (`_Group`): the rule's forward on its (m, batch) blocks; relu written in place."""

    __slots__ = ("group", "S", "G", "sources", "Y", "g", "mask", "inputs")

    def __init__(self, group: _Group, S: Any, G: Any) -> None:
        self.group, self.S, self.G = group, S, G
        views = [_rows(S, source) for source in group.sources]
        # The inputs as views made once when every parent row is a slice, else gathered at each replay.
        self.sources = None if any(view is None for view in views) else views
        self.Y, self.g = _rows(S, group.outputs), _rows(G, group.outputs)  # consecutive slots: views
        # After a fused layer (whose outputs the forward checked finite) relu's slope 1 - [x <= 0]
        # (NumpyMath.step) is the comparison [x > 0] itself, written into a buffer kept for it.
        self.mask = np.empty(self.Y.shape, dtype=bool) if group.after_layer and group.scatters else None
        self.inputs: list[Any] = []

    def forward(self) -> None:
        group = self.group
        inputs = self.sources if self.sources is not None else [self.S[source] for source in group.sources]
        Y = self.Y
        if group.relu:  # NumpyMath.relu, max(x, 0) + 0 (no -0.0), written in place (a relu group's rows are a slice)
            np.maximum(inputs[0], 0.0, out=Y)
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
        else:
            y = self.Y if self.Y is not None else self.S[group.outputs]
            local = group.rule.derivative(NumpyMath, *self.inputs, y)
        _send_gradients(group, local, self.G, self.g)


class _ChainRun:
    """A chain (`_Chain`): node by node on (1, batch) rows; its leaf groups after its walk backward."""

    __slots__ = ("chain", "S", "G", "rows", "grad_rows", "needed")

    def __init__(self, chain: _Chain, S: Any, G: Any, needed: bytearray) -> None:
        self.chain, self.S, self.G, self.needed = chain, S, G, needed
        size, n = S.shape
        self.rows, self.grad_rows = S.reshape(size, 1, n), G.reshape(size, 1, n)

    def forward(self) -> None:
        rows = self.rows
        chain = self.chain
        for rule, k, parents in zip(chain.rules, chain.slots, chain.parents):
            rows[k] = rule.forward(NumpyMath, *[rows[p] for p in parents])

    def backward(self, totals: Any) -> None:
        rows, grad_rows, needed, S, chain = self.rows, self.grad_rows, self.needed, self.S, self.chain
        for rule, k, parents in zip(reversed(chain.rules), reversed(chain.slots), reversed(chain.parents)):
            if needed[k]:
                local = rule.derivative(NumpyMath, *[rows[p] for p in parents], rows[k])
                for p, block in _contributions(local, grad_rows[k], parents, needed):
                    grad_rows[p] += block
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

    def forward(self) -> None:
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

    def load(self, X: Any, theta: Any) -> None:
        """The leaves' rows of S for inputs X (inputs, n) and parameters θ (θ copied into `theta`): where
        either pass starts (the constants' rows were written once)."""
        self.theta[...] = theta
        if X is not self.held_inputs:  # (a `Batch` replayed again is the same read-only block: its rows are in S)
            self.input_rows[...] = X
            self.held_inputs = X
        if len(self.theta_rows):
            self.parameter_rows[...] = self.theta_rows

    def forward(self) -> Any:
        """Replay the tape from the leaves `load` wrote: the outputs' rows, (outputs, n), a copy; None
        where the careful pass must run."""
        try:
            with np.errstate(divide="raise", over="ignore", invalid="raise", under="ignore"):
                for step in self.steps:
                    step.forward()
                out = self.S[self.outputs]
                if _finite_sum(out):
                    return out
        except (FloatingPointError, _GiveUp):
            pass
        return None

    def backward(self, dout: Any) -> Any:
        """Σ_p dout_p·∂out_p/∂w for every parameter (after a successful `forward`), or None where the
        careful pass must run: a derivative's pole or domain error, inf - inf or 0·inf, a non-finite total."""
        G = self.G
        for rows in self.zero_rows:
            G[rows] = 0.0
        if self.distinct_outputs:
            G[self.outputs] = dout
        else:  # an output returned twice gets both seeds
            G[self.outputs] = 0.0
            np.add.at(G, self.outputs, dout)
        totals = np.zeros(len(self.theta))
        try:
            with np.errstate(divide="raise", over="ignore", invalid="raise", under="ignore"):
                for step in self.backward_steps:
                    step.backward(totals)
                if len(self.theta_rows):
                    totals[: len(self.theta_rows)] += np.add.reduce(self.parameter_grads, axis=1)
                if _finite_sum(totals):
                    return totals
        except FloatingPointError:
            pass
        return None


def program_for(trace: Any, n: int) -> Program:
    """The `Program` of ``trace`` for batches of n samples in this thread: made at the first replay of
    that size, kept for the next ones (the `KEPT_PROGRAMS` used last, unless larger than `KEPT_ENTRIES`).

    One per thread: two threads replaying one trace at once must not share S (each forward returns
    its own outputs; a backward still belongs to the last forward of the trace, whichever thread ran it).
    """
    programs = trace._programs
    key = (n, threading.get_ident())
    program = programs.pop(key, None)
    if program is None:
        program = Program(trace, n)
    if program.S.size <= KEPT_ENTRIES:
        programs[key] = program  # (re)inserted last: the dict's order is the order of use
        if len(programs) > KEPT_PROGRAMS:
            try:
                programs.pop(next(iter(programs)), None)
            except RuntimeError:  # another thread changed the dict just then: drop one next time
                pass
    return program


def _runs(flags: Any) -> list[slice]:
    """The runs of consecutive True entries of a boolean array, as slices."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
