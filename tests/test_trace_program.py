"""The fast pass is a `Program` per batch size (autograd/trace/program.py): S and G allocated
once and reused by every replay of that size, G zeroed only in the rows that are added to
before they are written. Reuse must never leak one replay's numbers into the next.

Each test replays a trace many times, with new samples and new weights, at alternating
batch sizes (more sizes than a trace keeps programs for), with G filled with NaN between
replays, and compares every replay with eager mode run one sample at a time, to 1e-12.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from conftest import eager_losses_and_gradients, require_module

import nn
from autograd import Value, indices, stop_gradient, sum_values, trace
from autograd.trace import program as program_module

np = require_module("numpy", extra="fast")


def mixed_graph(rng: random.Random) -> tuple[Callable[..., Value], list[Value], int]:
    """A graph with every kind of step: two fused layers (relu between), a tanh group, a chain,
    a neuron whose value is never used (its rows of G receive nothing), a unit read by two
    consumers (its gradient is written, then added to), a weight read twice, a constant."""
    w1 = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(5)]
    b1 = [Value(rng.uniform(-1, 1)) for _ in range(5)]
    w2 = [[Value(rng.uniform(-1, 1)) for _ in range(5)] for _ in range(4)]
    r = Value(rng.uniform(0.5, 1.0))
    params = [w for row in w1 for w in row] + b1 + [w for row in w2 for w in row] + [r]

    def fn(x: list[Value]) -> Value:
        h = [sum_values([w * xj for w, xj in zip(row, x)] + [b]).relu() for row, b in zip(w1, b1)]
        z = [sum_values([w * hj for w, hj in zip(row, h)]) for row in w2]
        t = [v.tanh() for v in z[:3]]  # z[3] feeds nothing: a dead neuron
        y = t[0] * r + t[1] * h[0] - 0.5 * t[2]  # h[0] read by layer 2 and here
        return (y * r).exp() + (y - 1.0) ** 2

    return fn, params, 3


def embedding_graph(rng: random.Random) -> tuple[Callable[..., Value], list[Value], int]:
    """Selects (a gather forward, np.add.at backward): an embedding of 3 ids into a tanh head."""
    emb = nn.Embedding(6, 2, seed=rng.randrange(100))
    head = [Value(rng.uniform(-1, 1)) for _ in range(2)]

    def fn(ids: list[Value]) -> Value:
        rows = emb(ids)
        return sum_values([(w * x).tanh() for row in rows for w, x in zip(head, row)])

    return fn, emb.parameters() + head, 3


def positions_graph(rng: random.Random) -> tuple[Callable[..., Value], list[Value], int]:
    """One weight matrix at every position (a stacked layer, one batched product)."""
    w = [[Value(rng.uniform(-1, 1)) for _ in range(2)] for _ in range(3)]

    def fn(x: list[Value]) -> Value:
        outs = [sum_values([wij * xj for wij, xj in zip(row, x[p : p + 2])]).tanh() for p in (0, 2) for row in w]
        return sum_values(outs)

    return fn, [v for row in w for v in row], 4


def samples_for(kind: str, width: int, n: int, rng: random.Random) -> list[list[float]]:
    if kind == "embedding":
        return [[float(rng.randrange(6)) for _ in range(width)] for _ in range(n)]
    return [[rng.uniform(-2, 2) for _ in range(width)] for _ in range(n)]


def eager_per_sample(fn: Callable[..., Value], params: list[Value], batch: list[list[float]]) -> tuple[list, list]:
    """Eager mode one sample at a time: the outputs and the gradients of their sum (see conftest)."""
    return eager_losses_and_gradients(lambda x: fn([Value(v) for v in x]), params, [[x] for x in batch])


def tied_graph(rng: random.Random) -> tuple[Callable[..., Value], list[Value], int]:
    """One 3×3 matrix W in two fused layers (the second to reach its gradients adds to the first's),
    W's squares in the loss as well (a weight decay term: W's entries are row parameters too), a
    bias in a layer and in a product, and a weight no output depends on (behind stop_gradient): the
    gradient of each entry of θ is written first by one step, added to by the others, or zero."""
    w = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(3)]
    b = [Value(rng.uniform(-1, 1)) for _ in range(3)]
    frozen = Value(rng.uniform(-1, 1))

    def fn(x: list[Value]) -> Value:
        h = [sum_values([wij * xj for wij, xj in zip(row, x)] + [bi]).relu() for row, bi in zip(w, b)]
        z = [sum_values([wij * hj for wij, hj in zip(row, h)]) for row in w]
        decay = 0.01 * sum_values([wij**2 for row in w for wij in row])
        return sum_values([zi.tanh() for zi in z]) * b[0] + decay + stop_gradient(frozen) * x[0]

    return fn, [v for row in w for v in row] + b + [frozen], 3


def reversed_graph(rng: random.Random) -> tuple[Callable[..., Value], list[Value], int]:
    """Two fused layers reading the same hidden units, the second in reverse order: its inputs are
    the first's slots, last first (a `flipped` layer: its matrix's columns reversed)."""
    w1 = [[Value(rng.uniform(-1, 1)) for _ in range(2)] for _ in range(3)]
    w2 = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(2)]
    w3 = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(2)]
    b3 = [Value(rng.uniform(-1, 1)) for _ in range(2)]

    def fn(x: list[Value]) -> Value:
        h = [sum_values([w * xj for w, xj in zip(row, x)]).tanh() for row in w1]
        a = [sum_values([w * hj for w, hj in zip(row, h)]) for row in w2]
        b = [sum_values([w * hj for w, hj in zip(row, h[::-1])] + [bi]) for row, bi in zip(w3, b3)]
        return sum_values(a) * sum_values(b).tanh()

    return fn, [v for m in (w1, w2, w3) for row in m for v in row] + b3, 2


GRAPHS = {
    "mixed": mixed_graph,
    "embedding": embedding_graph,
    "positions": positions_graph,
    "tied": tied_graph,
    "reversed": reversed_graph,
}


@pytest.mark.parametrize("kind", list(GRAPHS))
def test_replays_at_alternating_batch_sizes_with_new_weights_equal_eager_every_time(kind: str) -> None:
    rng = random.Random(7)
    fn, params, width = GRAPHS[kind](rng)
    example = indices([0] * width) if kind == "embedding" else [0.5] * width
    step = trace(fn, example)
    assert any(getattr(layer, "flipped", False) for layer in step.fused_layers) is (kind == "reversed")
    sizes = [5, 3, 5, 1, 8, 2, 7, 5, 3]  # seven sizes: more than a trace keeps programs for
    assert len(set(sizes)) > program_module.KEPT_PROGRAMS
    for k, n in enumerate(sizes):
        for p in params:  # new weights: read from .data by this replay
            p.data += rng.uniform(-0.1, 0.1)
        for program in step._programs.values():
            program.G.fill(math.nan)  # whatever a row held before, a replay must not read it
            program.totals.fill(math.nan)  # nor an entry of the gradient vector
        batch = samples_for(kind, width, n, rng)
        expected, expected_grads = eager_per_sample(fn, params, batch)
        out = step.forward(batch)
        grads = step.gradient()
        assert step._last_fast, f"replay {k} should take the fast pass"
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12, err_msg=f"replay {k} (n={n})")
        np.testing.assert_allclose(grads.tolist(), [expected_grads[params.index(p)] for p in step.parameters],
                                   rtol=1e-12, atol=1e-12, err_msg=f"replay {k} (n={n})")  # fmt: skip
    assert len(step._programs) <= program_module.KEPT_PROGRAMS


def test_a_fast_replay_after_one_that_fell_back_equals_eager() -> None:
    """A replay that overflows (a weight of 1e300 times an input of 1e10) takes the careful pass in
    the program's arrays; the next replay of the same size takes the fast pass again, with nothing
    left over from the first."""
    rng = random.Random(3)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    batch = samples_for("mixed", width, 4, rng)
    batch[2] = [1e10, -1e10, 1e10]
    weight = params[0].data
    for huge in (True, False, True, False):
        params[0].data = 1e300 if huge else weight
        expected, expected_grads = eager_per_sample(fn, params, batch)
        assert all(map(math.isfinite, expected + expected_grads)) is not huge  # the case is what it says
        out = step.forward(batch)
        grads = step.gradient()
        assert step._last_fast is not huge
        # What a training loop may skip checking: known finite after the fast pass only.
        assert step.outputs_checked is step.gradient_checked is (not huge)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.tolist(), [expected_grads[params.index(p)] for p in step.parameters],
                                   rtol=1e-12, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("weight", [0, 4, 15, 20, 40], ids=["layer 1", "layer 1 again", "bias", "layer 2", "chain"])
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_weight_that_is_not_finite_turns_the_fast_passs_tests_back_on_with_eagers_numbers(
    weight: int, bad: float
) -> None:
    """With every leaf finite, the fast pass raises numpy's overflow flag too and tests no number
    (a NaN or an inf can only come from a flag). The inputs and constants are always finite; a
    weight that is not turns the tests back on for that replay (its inf may vanish on the way,
    relu(-inf) = 0, or not): the numbers are eager mode's either way, and the next replay with
    finite weights is strict again."""
    rng = random.Random(11)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    batch = samples_for("mixed", width, 4, rng)
    for poisoned in (True, False, True):
        params[weight].data = bad if poisoned else 0.25
        expected, expected_grads = eager_per_sample(fn, params, batch)
        out = step.forward(batch)
        (program,) = step._programs.values()
        assert program.strict is (not poisoned)
        grads = step.gradient()
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.tolist(), [expected_grads[params.index(p)] for p in step.parameters],
                                   rtol=1e-12, atol=1e-12)  # fmt: skip
        # What a training loop may skip checking: known finite after the fast pass only.
        assert not step.outputs_checked or np.isfinite(out).all()
        assert not step.gradient_checked or np.isfinite(grads).all()


def test_results_are_copies_that_later_replays_leave_alone() -> None:
    rng = random.Random(5)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    first, second = samples_for("mixed", width, 6, rng), samples_for("mixed", width, 6, rng)
    out = step.forward(first)
    grads = step.gradient()
    kept_out, kept_grads = out.copy(), grads.copy()
    step.forward(second)
    step.gradient()
    np.testing.assert_array_equal(out, kept_out)
    np.testing.assert_array_equal(grads, kept_grads)


def test_theta_is_copied_in_so_changing_it_after_forward_leaves_backward_alone() -> None:
    """The weights given as θ are copied into the program: a caller that updates θ in place after
    forward (an optimizer step) does not change the gradient of that forward."""
    rng = random.Random(9)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    batch = samples_for("mixed", width, 5, rng)
    theta = np.array([p.data for p in step.parameters])
    step.forward(batch, theta=theta)
    expected = step.gradient()
    step.forward(batch, theta=theta)
    theta += 0.25
    np.testing.assert_array_equal(step.gradient(), expected)


def test_a_program_too_large_to_keep_is_made_for_its_replay_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(program_module, "KEPT_ENTRIES", 10)
    rng = random.Random(2)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    batch = samples_for("mixed", width, 4, rng)
    expected, _ = eager_per_sample(fn, params, batch)
    np.testing.assert_allclose(step.forward(batch), expected, rtol=1e-12, atol=1e-12)
    assert step._programs == {} and step._last_program == (None, None)  # S and G given back


def test_dropping_a_trace_frees_its_programs_at_once() -> None:
    """A program holds its trace weakly: no reference cycle keeps S and G alive until the collector runs."""
    import gc
    import weakref

    rng = random.Random(4)
    fn, params, width = embedding_graph(rng)  # selects: steps that name slots in their errors
    step = trace(fn, indices([0] * width))
    step.forward(samples_for("embedding", width, 5, rng))
    step.gradient()
    (program,) = step._programs.values()
    kept = weakref.ref(program.S)
    del program
    gc.disable()
    try:
        del step
        assert kept() is None
    finally:
        gc.enable()


def test_threads_replaying_one_trace_at_once_each_get_their_own_outputs() -> None:
    """Each thread replays its own batch (the same size) many times with frequent thread switches:
    every forward returns that thread's outputs, as eager mode computes them."""
    import sys
    import threading

    rng = random.Random(8)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    batches = [samples_for("mixed", width, 6, rng) for _ in range(4)]
    expected = [eager_per_sample(fn, params, batch)[0] for batch in batches]
    wrong: list[int] = []

    def replay(k: int) -> None:
        for _ in range(200):
            if not np.allclose(step.forward(batches[k]), expected[k], rtol=1e-12, atol=1e-12):
                wrong.append(k)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=replay, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


def test_batches_checked_once_and_plain_batches_take_turns_at_one_size() -> None:
    """A `Batch` replayed again is not copied into S again; any other batch in between is, and the
    `Batch` after it too: every replay equals eager mode."""
    rng = random.Random(10)
    fn, params, width = mixed_graph(rng)
    step = trace(fn, [0.5] * width)
    first, second, plain = (samples_for("mixed", width, 5, rng) for _ in range(3))
    batches = {"first": (step.batch(first), first), "second": (step.batch(second), second), "plain": (plain, plain)}
    for name in ["first", "first", "second", "first", "plain", "first", "plain", "second"]:
        given, samples = batches[name]
        expected, expected_grads = eager_per_sample(fn, params, samples)
        np.testing.assert_allclose(step.forward(given), expected, rtol=1e-12, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(step.gradient().tolist(), [expected_grads[params.index(p)] for p in step.parameters],
                                   rtol=1e-12, atol=1e-12, err_msg=name)  # fmt: skip
