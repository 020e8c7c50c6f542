"""The steps of the replay that are not a rule's forward on a block: the fused dense layers
(`_Layer`, and `_StackedLayer` for layers sharing their weights), matrix products, and the selects
(`_Select`), a gather. Each replays one block that `schedule` cut out of the tape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DomainError, NonFiniteError
from ..mode import mode
from ..value import Value
from .kernels import _columns, _entries, _matmul, _matmul_over_batch, _numpy, _Scatter, _slice_or_index
from .schedule import _Pattern, _Stack

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


def _add_weight_gradients(totals: Any, weights: Any, biases: Any, unique: tuple[bool, bool], dW: Any, db: Any) -> None:
    """Add a layer's ∂E/∂W (``dW``, row by row) and ∂E/∂b (``db``, or None) into ``totals``, the
    vector of all parameters' gradients; a parameter used twice in the matrix (shared weights)
    gets both of its gradients (np.add.at), else one slice or fancy-index add."""
    unique_w, unique_b = unique
    if unique_w and isinstance(weights, slice) and (weights.step or 1) == 1:
        rows = totals[weights].reshape(dW.shape)  # a view: added in place, dW read however it is laid out
        rows += dW
    elif unique_w:
        totals[weights] += dW.ravel()
    else:
        _numpy().add.at(totals, weights, dW.ravel())
    if biases is not None:
        if unique_b:
            totals[biases] += db
        else:
            _numpy().add.at(totals, biases, db)


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
        written into the output rows of S (Y is their view), by `product`."""
        W = theta[self.weights].reshape(self.shape)
        X = S[self.xs]
        Y = S[self.outputs]  # consecutive slots: a view
        return self.product(W, X, Y, None if self.biases is None else theta[self.biases][:, None]), X, Y

    def product(self, W: Any, X: Any, Y: Any, b: Any) -> Any:
        """Y = W·X (+ b), written into Y; returns the W it multiplied (a copy when `flipped`). Under
        the caller's `np.errstate`: the fast replay's (inf - inf gives up on it), or `forward`'s,
        which ignores everything. (A `Program` calls it with W, X, Y and b as views made once.)"""
        if self.flipped:  # a copy of the small W: numpy's product of a reversed row is ten times slower
            W = _numpy().ascontiguousarray(W[:, ::-1])
        _matmul(W, X, out=Y)
        if b is not None:
            Y += b
        return W

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

    def send_gradients(self, W: Any, X: Any, g: Any, G: Any, totals: Any, into: Any) -> None:
        """`backward` without its overflow repairs, for the fast replay (which checks the totals once at
        the end): g = G[outputs]; ``into`` = the inputs' rows of G when the scatter writes them directly
        (`_Scatter.direct`), else None. (A `Program` passes views made once.)"""
        self._add_to_totals(totals, _matmul_over_batch(g, X), g)
        if into is not None:
            self._input_gradients(W, g, out=into)
        elif self.x_scatter is not None:
            self.x_scatter.add(G, self._input_gradients(W, g))

    def _input_gradients(self, W: Any, g: Any, out: Any = None) -> Any:
        """∂E/∂X = Wᵀ·G (into ``out``); for one neuron an outer product w_j·g_p, as a broadcast product
        (a matrix product with an inner size of 1 is many times slower, for the same numbers)."""
        if self.shape[0] == 1:
            return _numpy().multiply(W.T, g, out=out)
        return _matmul(W.T, g, out=out)

    def _add_to_totals(self, totals: Any, dW: Any, g: Any) -> None:
        """∂E/∂W (``dW``) and ∂E/∂b = Σ_p g into ``totals``."""
        if self.flipped:
            dW = dW[:, ::-1]  # back to the tape's order of the weights
        db = None if self.biases is None else g.sum(axis=1)
        _add_weight_gradients(totals, self.weights, self.biases, self.unique, dW, db)

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
                db = None if self.biases is None else g.sum(axis=(0, 2))
                _add_weight_gradients(totals, self.weights, self.biases, self.unique, dW, db)
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
