"""Kernels of the replay: numpy (imported on first use), `NumpyMath`, and the steps that run one rule
on blocks of rows: `_Group`, `_Chain`, `_Scatter`, their backward and the diagnosis of their errors;
the BLAS calls of the fused layers (`_matmul`, cut along the batch by `BLAS_CALL_SIZE`).

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
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from .. import ops
from ..backward import local_derivatives
from ..errors import AutogradError, NonFiniteError
from ..mode import mode
from ..ops import Rule
from ..value import evaluate

NUMPY_MISSING = "autograd.trace needs numpy: pip install 'textbook-autograd[fast]'"


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
    @staticmethod
    def power_rule(x: Any, n: Any) -> Any:
        if type(n) is float:  # a constant power (`ops.power`): its cases known now, one or two calls
            if n == 0.0:
                return 0.0
            return n * x if n == 2.0 else n * np.power(x, n - 1.0)  # x^1 is x, exactly
        return n * np.power(np.where(n == 0.0, 1.0, x), n - 1.0)
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
    which the fast pass knows to be finite, so that its slope 1 - [x <= 0] is [x > 0];
    ``feeds_layers`` that only fused layers read its rows, so that its -0.0 may stay.
    """

    __slots__ = ("rule", "outputs", "parents", "sources", "scatters", "relu", "after_layer", "feeds_layers")

    def __init__(self, rule: Rule, outputs: Any, parents: Any) -> None:
        self.rule = rule
        self.outputs = _slice_or_index(outputs)
        self.parents = parents  # (arity, size) slot numbers
        self.sources = [_slice_or_index(row) for row in parents]
        self.scatters: list[tuple[int, _Scatter]] = []
        self.relu = rule is ops.RELU and isinstance(self.outputs, slice)
        self.after_layer = self.feeds_layers = False  # set by `Trace` (`_mark_relus`)


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
            _check_gradient(rule, inputs, g, _times(local[j], g))
    _send_gradients(group, local, G)


def _times(d: Any, g: Any) -> Any:
    """d·g, what a local derivative d sends back from the gradient g; g itself when d is the number 1
    (a sum's, an add's): no multiplication, no new block."""
    return g if type(d) is float and d == 1.0 else d * g


def _send_gradients(group: _Group, local: tuple[Any, ...], G: Any, g: Any = None) -> None:
    """Add the group's contributions ∂y/∂x_j · G[y] (``local[j]`` = ∂y/∂x_j) into the rows G[x_j]
    (``g``: G[y], if the caller has it)."""
    if not group.scatters:
        return
    if g is None:
        g = G[group.outputs]
    for j, scatter in group.scatters:
        d = local[j]
        if type(d) is float and d == 1.0:
            scatter.add(G, g)
        elif scatter.direct():  # the product goes straight into its rows (written, not added)
            np.multiply(d, g, out=G[scatter.targets])
        else:
            scatter.add(G, d * g)


def _contributions(local: tuple[Any, ...], g: Any, parents: tuple[int, ...], needed: bytearray) -> list[Any]:
    """(x_j, ∂y/∂x_j · G[y]) for the parents x_j of a chain node that are marked ``needed``."""
    return [(p, _times(d, g)) for p, d in zip(parents, local) if needed[p]]


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


# -- BLAS calls of the fused layers (`layers`), cut along the batch ------------------------
#
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


def _matmul_over_batch(A: Any, B: Any, out: Any = None) -> Any:
    """A·Bᵀ for blocks A (m, batch) and B (n, batch): a sum over the batch, in calls as `_matmul`
    (into ``out``)."""
    np = _numpy()
    batch = A.shape[1]
    step = _columns(A.shape[0], B.shape[0], batch)
    if step >= batch:
        return np.matmul(A, B.T, out=out)
    total = np.matmul(A[:, :step], B[:, :step].T, out=out)
    for s in range(step, batch, step):
        total += A[:, s : s + step] @ B[:, s : s + step].T
    return total
