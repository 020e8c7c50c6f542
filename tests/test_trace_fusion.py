"""`autograd.trace` finds dense layers on the tape and replays them as matrix products.

A layer is K sums y_i = Σ_j w_ij·x_j (+ b_i) over the same inputs x_1 … x_n; the replay
computes Y = W·X + b forward and Wᵀ·G, G·Xᵀ backward. Everything here is checked against
eager mode run one sample at a time (itself checked against PyTorch in test_ops.py and
test_trace.py), to 1e-12: a fused layer must change the speed, never the numbers. Graphs
that only look like layers must not be fused (``Trace.fused_layers`` counts the layers).
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence

import pytest
from conftest import require_module

import nn
from autograd import Value, detect_anomaly, sum_values, trace
from autograd.errors import NonFiniteError
from autograd.trace import kernels

np = require_module("numpy", extra="fast")

Fn = Callable[..., Value | list[Value]]


def eager(
    fn: Fn, params: Sequence[Value], batch: Sequence[Sequence[float]], dout: Sequence[Sequence[float]] | None = None
) -> tuple[list[list[float]], list[float]]:
    """Outputs sample by sample (as lists) and Σ_p Σ_k dout_pk·∂out_pk/∂w for every parameter (dout 1 by default)."""
    for p in params:
        p.zero_grad()
    outputs = []
    for s, sample in enumerate(batch):
        out = fn([Value(x) for x in sample])
        outs = out if isinstance(out, list) else [out]
        weights = [1.0] * len(outs) if dout is None else list(dout[s])
        sum_values([o * d for o, d in zip(outs, weights)]).backward()
        outputs.append([o.data for o in outs])
    return outputs, [p.grad for p in params]


def replay(
    fn: Fn, params: Sequence[Value], batch: Sequence[Sequence[float]], dout: object = 1.0
) -> tuple[object, list[float], object]:
    """The same through `trace`: outputs, gradients, and the trace itself."""
    for p in params:
        p.zero_grad()
    step = trace(fn, example=list(batch[0]))
    out = step.forward(np.array(batch))
    step.backward(dout)
    return out, [p.grad for p in params], step


def assert_same(fn: Fn, params: Sequence[Value], batch: Sequence[Sequence[float]], fused: int) -> None:
    """Traced replay = eager mode to 1e-12, with ``fused`` layers found on the tape."""
    expected_out, expected_grads = eager(fn, params, batch)
    out, grads, step = replay(fn, params, batch)
    assert len(step.fused_layers) == fused  # type: ignore[attr-defined]
    single = not isinstance(fn([Value(x) for x in batch[0]]), list)
    np.testing.assert_allclose(out, [o[0] for o in expected_out] if single else expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-12, atol=1e-12)


def matrix(rows: int, columns: int, rng: random.Random, label: str = "w") -> list[list[Value]]:
    return [[Value(rng.uniform(-1, 1), label=f"{label}{i}{j}") for j in range(columns)] for i in range(rows)]


def batch_of(n: int, width: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-2, 2) for _ in range(width)] for _ in range(n)]


# -- the layer pattern, wherever it comes from --------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_mlps_fuse_every_layer_of_two_or_more_neurons_and_match_eager(seed: int) -> None:
    """nn.MLP of random depth and widths: each layer of width ≥ 2 is one fused matrix product; a
    layer of one neuron is a dot product, fused only alone in its level with 3 inputs or more."""
    rng = random.Random(seed)
    nin = rng.randint(1, 5)
    sizes = [rng.randint(1, 6) for _ in range(rng.randint(1, 4))]
    activation = rng.choice(["tanh", "relu", "sigmoid", "linear"])
    model = nn.MLP(nin, sizes, activation=activation, output_activation="sigmoid", seed=seed)
    params = model.parameters()
    widths = [nin, *sizes]
    fused = sum(1 for k, n in zip(sizes, widths) if k >= 2 or n >= 3)
    assert_same(model, params, batch_of(7, nin, seed), fused=fused)


@pytest.mark.parametrize("seed", range(4))
def test_hand_written_scalar_layers_are_found_too(seed: int) -> None:
    """sum_values([w[i][j] * x[j] ...] + [b[i]]) written by hand, with w·x and x·w mixed and the
    bias first in one layer, last in another, absent in the third."""
    rng = random.Random(seed)
    n0, n1, n2, n3 = (rng.randint(2, 6) for _ in range(4))
    w1, w2, w3 = matrix(n1, n0, rng, "a"), matrix(n2, n1, rng, "b"), matrix(n3, n2, rng, "c")
    b1 = [Value(rng.uniform(-1, 1)) for _ in range(n1)]
    b2 = [Value(rng.uniform(-1, 1)) for _ in range(n2)]
    orders = [[rng.random() < 0.5 for _ in range(n0 * n1 + n1 * n2 + n2 * n3)]]

    def product(w: Value, x: Value, k: int) -> Value:
        return w * x if orders[0][k] else x * w

    def fn(x: list[Value]) -> list[Value]:
        h = [sum_values([b1[i]] + [product(w1[i][j], x[j], i * n0 + j) for j in range(n0)]).tanh() for i in range(n1)]
        k0 = n0 * n1
        h = [sum_values([product(w2[i][j], h[j], k0 + i * n1 + j) for j in range(n1)] + [b2[i]]) for i in range(n2)]
        k0 += n1 * n2
        return [sum_values([product(w3[i][j], h[j], k0 + i * n2 + j) for j in range(n2)]) for i in range(n3)]

    params = [w for m in (w1, w2, w3) for row in m for w in row] + b1 + b2
    assert_same(fn, params, batch_of(5, n0, seed), fused=3)


def test_stacked_linear_layers_send_gradients_through_the_fused_outputs() -> None:
    """Layer 2 reads layer 1's sums directly (no activation between): ∂/∂X of layer 2 = Wᵀ·G
    must reach layer 1's weights; the inputs repeat x_1 (one row read twice in X)."""
    rng = random.Random(1)
    w1, w2 = matrix(3, 3, rng), matrix(2, 3, rng, "v")

    def fn(x: list[Value]) -> Value:
        xs = [x[0], x[1], x[0]]
        h = [sum_values([w1[i][j] * xs[j] for j in range(3)]) for i in range(3)]
        y = [sum_values([w2[i][j] * h[j] for j in range(3)]) for i in range(2)]
        return y[0] * y[1]

    params = [w for m in (w1, w2) for row in m for w in row]
    assert_same(fn, params, batch_of(6, 2, 3), fused=2)


# -- shared weights: fused, and exactly ----------------------------------------------------


def test_a_weight_shared_inside_one_matrix_gets_every_gradient() -> None:
    """w is w_00, w_11 and w_21 of one layer, and b is every neuron's bias: ∂/∂w sums all three
    uses (np.add.at), as eager mode's accumulation does."""
    rng = random.Random(2)
    w, b = Value(0.7, label="w"), Value(-0.2, label="b")
    others = matrix(3, 2, rng)
    weights = [[w, others[0][1]], [others[1][0], w], [others[2][0], w]]

    def fn(x: list[Value]) -> Value:
        return sum_values([sum_values([weights[i][j] * x[j] for j in range(2)] + [b]).tanh() for i in range(3)])

    assert_same(fn, [w, b, *(v for row in others for v in row)], batch_of(5, 2, 4), fused=1)


def test_a_weight_also_read_elsewhere_keeps_both_gradients() -> None:
    """The loss adds 0.1·Σ w² (weight decay inside the traced function): the weights are read
    by the fused layer and by ordinary nodes, and their gradients add up."""
    rng = random.Random(3)
    w = matrix(3, 2, rng)

    def fn(x: list[Value]) -> Value:
        out = sum_values([sum_values([w[i][j] * x[j] for j in range(2)]).relu() for i in range(3)])
        return out + 0.1 * sum_values([v * v for row in w for v in row])

    assert_same(fn, [v for row in w for v in row], batch_of(4, 2, 5), fused=1)


# -- what only looks like a layer is not fused ---------------------------------------------


def _layer(x: Sequence[Value], w: list[list[Value]], columns: list[list[int]]) -> list[Value]:
    """Neuron i sums w[i][k]·x[columns[i][k]]."""
    return [sum_values([w[i][k] * x[j] for k, j in enumerate(cols)]) for i, cols in enumerate(columns)]


@pytest.mark.parametrize(
    ("columns", "fused"),
    [
        ([[0, 1, 2], [0, 1], [1, 2]], 0),  # irregular fan-in: every neuron its own inputs
        ([[0, 1, 2], [2, 1, 0], [1, 0, 2]], 0),  # the same inputs in different orders
        ([[0, 1, 2], [0, 1, 2], [0, 1]], 1),  # two neurons agree: a layer of two, one left over
        ([[0, 1, 2]] * 4, 1),  # the plain layer, for contrast
    ],
    ids=["irregular", "permuted", "two-of-three", "dense"],
)
def test_neurons_with_different_inputs_are_not_fused_together(columns: list[list[int]], fused: int) -> None:
    rng = random.Random(4)
    w = matrix(len(columns), 3, rng)

    def fn(x: list[Value]) -> Value:
        return sum_values([y.tanh() for y in _layer(x, w, columns)])

    assert_same(fn, [v for row in w for v in row], batch_of(5, 3, 6), fused=fused)


PARTIAL: dict[str, Callable[[list[Value], list[list[Value]], list[Value]], list[Value]]] = {
    # products of two non-parameters (x·x) and of two parameters (w·w)
    "x·x": lambda x, w, b: [sum_values([x[0] * x[1], w[i][1] * x[1]]) for i in range(3)],
    "w·w": lambda x, w, b: [sum_values([w[i][0] * w[i][1], w[i][1] * x[1]]) for i in range(3)],
    # a term that is neither a product with a parameter nor one bias: a constant, two biases, an input
    "constant": lambda x, w, b: [sum_values([w[i][0] * x[0], w[i][1] * x[1], 2.0]) for i in range(3)],
    "two biases": lambda x, w, b: [sum_values([w[i][0] * x[0], b[i], b[(i + 1) % 3]]) for i in range(3)],
    "input term": lambda x, w, b: [sum_values([w[i][0] * x[0], x[1]]) for i in range(3)],
    # a product read twice (by its sum and by the next line), or twice by its sum
    "shared product": lambda x, w, b: (lambda p: [sum_values([p[i], w[i][1] * x[1]]) for i in range(3)] + p)(
        [w[i][0] * x[0] for i in range(3)]
    ),
    "product twice": lambda x, w, b: [(lambda p: sum_values([p, p]))(w[i][0] * x[0]) for i in range(3)],
    # a traced input as the "weight": no parameter in the product
    "input weight": lambda x, w, b: [sum_values([x[0] * x[1], x[1] * x[0]]) + w[i][0] for i in range(3)],
}


@pytest.mark.parametrize("build", PARTIAL.values(), ids=list(PARTIAL))
def test_partial_patterns_are_not_fused_and_match_eager(build: Callable[..., list[Value]]) -> None:
    rng = random.Random(5)
    w = matrix(3, 2, rng)
    b = [Value(rng.uniform(-1, 1)) for _ in range(3)]

    def fn(x: list[Value]) -> list[Value]:
        return build(x, w, b)

    assert_same(fn, [*(v for row in w for v in row), *b], batch_of(5, 2, 7), fused=0)


@pytest.mark.parametrize(("inputs", "fused"), [(2, 0), (3, 1), (5, 1)])
def test_a_lone_neuron_is_fused_from_three_inputs_on(inputs: int, fused: int) -> None:
    """One neuron alone in its level (an MLP's output) becomes a layer of one row when it reads
    3 inputs or more: the same numbers as eager mode either way."""
    rng = random.Random(inputs)
    w = matrix(1, inputs, rng)[0]
    b = Value(rng.uniform(-1, 1))

    def fn(x: list[Value]) -> Value:
        return sum_values([w[j] * x[j] for j in range(inputs)] + [b]).tanh()

    assert_same(fn, [*w, b], batch_of(6, inputs, 9), fused=fused)


def test_a_missing_term_splits_the_layer() -> None:
    """Neuron 2 lacks its bias: the two neurons with a bias form a layer, neuron 2 is not fused
    (a layer of one); neuron 3 lacks a product: its inputs differ, so it is not fused either."""
    rng = random.Random(6)
    w = matrix(4, 2, rng)
    b = [Value(rng.uniform(-1, 1)) for _ in range(4)]

    def fn(x: list[Value]) -> list[Value]:
        return [
            sum_values([w[0][0] * x[0], w[0][1] * x[1], b[0]]),
            sum_values([w[1][0] * x[0], w[1][1] * x[1], b[1]]),
            sum_values([w[2][0] * x[0], w[2][1] * x[1]]),
            sum_values([w[3][0] * x[0], b[3]]),
        ]

    assert_same(fn, [*(v for row in w for v in row), *b], batch_of(5, 2, 8), fused=1)


# -- outputs and dout ------------------------------------------------------------------------


def test_a_fused_layer_as_the_outputs_takes_a_samples_by_outputs_dout() -> None:
    """The layer's sums are the traced outputs: forward gives (n, 3); backward(dout) of shape
    (n, 3) gives Σ_p Σ_k dout_pk·∂y_pk/∂w (eager: backward of Σ_k dout_k·y_k per sample)."""
    rng = random.Random(7)
    w = matrix(3, 4, rng)
    b = [Value(rng.uniform(-1, 1)) for _ in range(3)]
    params = [*(v for row in w for v in row), *b]

    def fn(x: list[Value]) -> list[Value]:
        return [sum_values([w[i][j] * x[j] for j in range(4)] + [b[i]]) for i in range(3)]

    batch = batch_of(6, 4, 9)
    dout = batch_of(6, 3, 10)
    expected_out, expected_grads = eager(fn, params, batch, dout)
    out, grads, step = replay(fn, params, batch, np.array(dout))
    assert len(step.fused_layers) == 1  # type: ignore[attr-defined]
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-12, atol=1e-12)


def test_one_dout_per_sample_weights_a_single_output() -> None:
    """dout of shape (n,) for one output: ∂/∂w = Σ_p dout_p·∂out_p/∂w."""
    model = nn.MLP(3, [4, 3, 1], activation="tanh", output_activation="linear", seed=11)
    params = model.parameters()
    batch = batch_of(5, 3, 12)
    dout = [0.5, -1.0, 2.0, 0.0, 3.0]
    expected_out, expected_grads = eager(model, params, batch, [[d] for d in dout])
    out, grads, step = replay(model, params, batch, np.array(dout))
    assert len(step.fused_layers) == 3  # type: ignore[attr-defined]  (the output neuron reads 3 inputs)
    np.testing.assert_allclose(out, [o[0] for o in expected_out], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-12, atol=1e-12)


def test_traced_training_of_a_fused_mlp_equals_eager_training() -> None:
    """Trainer(engine="traced") on an MLP whose layers are fused ends where eager training ends."""
    ends = []
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [6, 5, 2], activation="tanh", output_activation="sigmoid", seed=1)
        X, labels = nn.data.moons(20, noise=0.1, seed=2)
        y = [[label, 1.0 - label] for label in labels]
        opt = nn.optim.Adam(model.parameters(), lr=0.01)
        trainer = nn.Trainer(model, opt, loss=nn.losses.mse, mode="minibatch", batch_size=5, seed=3, engine=engine)
        history = trainer.fit(X, y, epochs=3, progress=False)
        ends.append(([p.data for p in model.parameters()], history.loss))
    np.testing.assert_allclose(ends[1][0], ends[0][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ends[1][1], ends[0][1], rtol=1e-10, atol=1e-10)


# -- non-finite values through a fused layer -----------------------------------------------


def _two_neurons(w: list[list[Value]]) -> Callable[[list[Value]], list[Value]]:
    return lambda x: [sum_values([w[i][0] * x[0], w[i][1] * x[1]]) for i in range(2)]


def test_overflowing_products_give_eagers_inf_and_nan() -> None:
    """By IEEE-754 by hand: 1e200·1e200 = inf, so neuron 0 is inf + (-1e200·1e200 = -inf) = nan,
    and neuron 1 is inf + 1·1e200 = inf. A fused multiply-add would keep 1e400 - 1e400 exact
    instead; the replay must give eager's nan and inf (in sample 1; sample 0 stays finite)."""
    w = [[Value(1e200, label="a"), Value(-1e200, label="b")], [Value(1e200, label="c"), Value(1.0, label="d")]]
    fn = _two_neurons(w)
    batch = [[1.0, 1.0], [1e200, 1e200]]
    expected, _ = eager(fn, [], batch)
    assert math.isnan(expected[1][0]) and expected[1][1] == math.inf
    step = trace(fn, example=batch[0])
    assert len(step.fused_layers) == 1
    np.testing.assert_array_equal(step.forward(batch), expected)


def test_detect_anomaly_names_the_product_in_a_fused_layer() -> None:
    """w.data = nan after tracing: eager mode raises at mul(w, x); so does the fused replay,
    naming w, the input and the sample."""
    w = [[Value(0.5, label="w00"), Value(0.25, label="w01")], [Value(0.5, label="w10"), Value(2.0, label="w11")]]
    fn = _two_neurons(w)
    step = trace(fn, example=[1.0, 1.0])
    assert len(step.fused_layers) == 1
    w[1][1].data = math.nan
    with detect_anomaly():
        with pytest.raises(NonFiniteError, match=r"anomaly in forward: mul\(w11="):
            fn([Value(1.0), Value(1.0)])  # the eager reference
        message = r"anomaly in forward: mul\(nan, 3\.0\) = nan .*sample 0.*inputs: w11, x2"
        with pytest.raises(NonFiniteError, match=message):
            step.forward([[1.0, 3.0], [2.0, 2.0]])


def test_detect_anomaly_names_an_overflowing_product_and_its_sample() -> None:
    """x·w written input first: 1e10·1e300 = inf in sample 1 only."""
    w = [[Value(1e300, label="big"), Value(1.0, label="one")], [Value(1.0, label="p"), Value(1.0, label="q")]]
    step = trace(lambda x: [sum_values([x[0] * w[i][0], x[1] * w[i][1]]) for i in range(2)], example=[1.0, 1.0])
    assert len(step.fused_layers) == 1
    message = r"mul\(10000000000\.0, 1e\+300\) = inf .*sample 1.*x1, big"
    with detect_anomaly(), pytest.raises(NonFiniteError, match=message):
        step.forward([[1.0, 1.0], [1e10, 1.0]])


def test_detect_anomaly_names_a_sum_that_overflows_from_finite_products() -> None:
    """1e308 + 1e308 = inf (each product finite): eager raises at the sum, and so does the replay."""
    w = [[Value(1e308, label="a"), Value(1e308, label="b")], [Value(1.0, label="c"), Value(1.0, label="d")]]
    fn = _two_neurons(w)
    step = trace(fn, example=[0.0, 0.0])
    with detect_anomaly():
        with pytest.raises(NonFiniteError, match=r"anomaly in forward: sum"):
            fn([Value(1.0), Value(1.0)])
        with pytest.raises(NonFiniteError, match=r"anomaly in forward: sum\(1e\+308, 1e\+308\) = inf .*sample 0"):
            step.forward([[1.0, 1.0]])


def test_detect_anomaly_names_a_non_finite_gradient_through_a_fused_layer() -> None:
    """y = Σ_i (Σ_j w_ij·x_j)·1e300 with x = 1e300: ∂y/∂w_ij = 1e300·x_j = inf (IEEE-754),
    (and 0·x_j·1e300 for the others), so eager raises in backward, and so does the replay,
    naming a mul and the sample;
    without detect_anomaly the gradient is inf, as eagerly."""
    w = [[Value(1e-300, label="a"), Value(0.0, label="b")], [Value(0.0, label="c"), Value(0.0, label="d")]]
    fn = lambda x: sum_values([y * 1e300 for y in _two_neurons(w)(x)])  # noqa: E731
    params = [v for row in w for v in row]
    batch = [[1.0, 1.0], [1e300, 1.0]]
    _, expected_grads = eager(fn, params, batch)
    assert expected_grads[0] == math.inf
    out, grads, step = replay(fn, params, batch)
    assert len(step.fused_layers) == 1  # type: ignore[attr-defined]
    np.testing.assert_array_equal(grads, expected_grads)
    with detect_anomaly():
        with pytest.raises(NonFiniteError, match="anomaly in backward"):
            fn([Value(1e300), Value(1.0)]).backward()
        step.forward(batch)  # type: ignore[attr-defined]
        with pytest.raises(NonFiniteError, match=r"anomaly in backward: .*mul\((1e-300|0\.0), 1e\+300\).*sample 1"):
            step.backward()  # type: ignore[attr-defined]


# -- random layered graphs -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_layered_graphs_with_irregular_fan_in_and_shared_weights_match_eager(seed: int) -> None:
    """Random layers where each neuron reads all of the layer below (dense) or a random subset
    (irregular fan-in), with w·x or x·w, with or without a bias, its weights fresh or drawn from
    a small pool (shared, also twice in one neuron): whatever is fused or not, the replay equals
    eager mode."""
    rng = random.Random(100 + seed)
    pool = [Value(rng.uniform(-1, 1), label=f"s{k}") for k in range(3)]
    params = list(pool)
    plan = []  # per layer: per neuron (columns, weights, operand order, bias or None)
    width = rng.randint(1, 4)
    nin = width
    for _ in range(rng.randint(1, 3)):
        dense = rng.random() < 0.6
        neurons = []
        for _ in range(rng.randint(1, 5)):
            columns = list(range(width)) if dense else sorted(rng.sample(range(width), rng.randint(1, width)))
            weights = []
            for _ in columns:
                if rng.random() < 0.2:
                    weights.append(rng.choice(pool))
                else:
                    weights.append(Value(rng.uniform(-1, 1)))
                    params.append(weights[-1])
            bias = Value(rng.uniform(-1, 1)) if rng.random() < 0.7 else None
            if bias is not None:
                params.append(bias)
            neurons.append((columns, weights, [rng.random() < 0.5 for _ in columns], bias))
        plan.append((neurons, rng.choice(["tanh", "sigmoid", "relu", None])))
        width = len(neurons)

    def fn(x: list[Value]) -> Value:
        h = x
        for neurons, activation in plan:
            out = []
            for columns, weights, w_first, bias in neurons:
                terms = [w * h[j] if first else h[j] * w for j, w, first in zip(columns, weights, w_first)]
                z = sum_values(terms + ([bias] if bias is not None else []))
                out.append(getattr(z, activation)() if activation else z)
            h = out
        return sum_values([v * v for v in h])

    expected_out, expected_grads = eager(fn, params, batch_of(6, nin, seed))
    out, grads, step = replay(fn, params, batch_of(6, nin, seed))
    np.testing.assert_allclose(out, [o[0] for o in expected_out], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call_size", [1, 10, 50])
def test_products_cut_into_small_blas_calls_give_the_same_numbers(
    call_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay cuts each matrix product along the batch into calls of at most BLAS_CALL_SIZE
    multiply-adds (see autograd.trace.kernels): one sample per call, a few (with a remainder), or all."""
    monkeypatch.setattr(kernels, "BLAS_CALL_SIZE", call_size)
    monkeypatch.setattr(kernels, "_one_blas_thread", False)  # cut even with one BLAS thread
    model = nn.MLP(3, [5, 4, 2], activation="tanh", output_activation="linear", seed=21)
    assert_same(model, model.parameters(), batch_of(7, 3, 22), fused=3)


def test_a_trace_with_fused_layers_does_not_keep_the_recorded_graph_alive() -> None:
    """After tracing, the only new reference to a weight is the trace's list of parameters
    (as for the grouped replay, tests/test_memory.py): the fused layers keep index arrays,
    not the Values of the graph."""
    rng = random.Random(30)
    w = matrix(4, 3, rng)
    weights = [v for row in w for v in row]

    def fn(x: list[Value]) -> Value:
        return sum_values([sum_values([w[i][j] * x[j] for j in range(3)]).tanh() for i in range(4)])

    before = [sys.getrefcount(v) for v in weights]
    step = trace(fn, example=[0.5, 0.25, 1.0])
    assert len(step.fused_layers) == 1
    assert [sys.getrefcount(v) for v in weights] == [n + 1 for n in before]
