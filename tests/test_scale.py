"""Scale and resources: graphs of 10^6 nodes, chains 10^6 deep, memory that is
bounded while a graph lives and given back when it is dropped.

Expected gradients come from closed forms derived in each docstring. Memory is
measured with `tracemalloc` (Python allocations only), against the budget of the
engine issue: at most 300 bytes per recorded node.
"""

from __future__ import annotations

import math
import tracemalloc

import pytest
from conftest import allocated

from autograd import Value, grad, sum_values
from autograd.errors import InvalidArgumentError

MILLION = 10**6
BYTES_PER_NODE = 300
# CPython keeps up to 2000 freed tuples of each small size (and some floats) on
# free lists for reuse; tracemalloc still counts them. A fixed allowance, far
# below the size of any graph measured here.
FREE_LIST_ALLOWANCE = 400_000


def product_chain(x: Value, r: Value, depth: int) -> Value:
    """y = x · r · r · ... · r (depth multiplications), one node per step."""
    y = x
    for _ in range(depth):
        y = y * r
    return y


@pytest.mark.slow
def test_chain_a_million_deep_forward_backward_memory_and_release(traced_memory: None) -> None:
    """y = x·r^n with n = 10^6: ∂y/∂x = r^n and ∂y/∂r = n·x·r^(n-1).

    The same leaf r is reached a million times, and the chain is a million deep:
    no RecursionError, correct gradients, under 300 bytes per node while the
    graph lives, and (almost) everything given back when it is dropped.
    """
    n = MILLION
    x, r = Value(0.5, label="x"), Value(1.0000001, label="r")
    before = allocated()
    y = product_chain(x, r, n)
    built = allocated()
    assert (built - before) / n < BYTES_PER_NODE

    tracemalloc.reset_peak()
    y.backward()
    peak = tracemalloc.get_traced_memory()[1]
    # backward's own bookkeeping (order list, visited sets) is linear in the graph too.
    assert (peak - built) / n < 2 * BYTES_PER_NODE

    closed_form_x = 1.0000001**n
    assert y.data == pytest.approx(0.5 * closed_form_x, rel=1e-9)
    assert x.grad == pytest.approx(closed_form_x, rel=1e-9)
    assert r.grad == pytest.approx(n * 0.5 * 1.0000001 ** (n - 1), rel=1e-9)

    del y
    assert allocated() - before < FREE_LIST_ALLOWANCE


@pytest.mark.slow
def test_graph_of_a_million_nodes_sum_of_squares() -> None:
    """s = Σ x_i² over 5·10^5 leaves (5·10^5 squares + one n-ary sum): ∂s/∂x_i = 2·x_i."""
    leaves = [Value((i % 1000) / 100.0 - 5.0) for i in range(MILLION // 2)]
    s = sum_values([x * x for x in leaves])
    assert s.data == pytest.approx(sum(x.data**2 for x in leaves), rel=1e-12)
    s.backward()
    assert all(x.grad == 2.0 * x.data for x in leaves)


@pytest.mark.slow
def test_a_million_nodes_where_every_node_is_reached_along_two_paths() -> None:
    """y_{k+1} = a·y_k + b·y_k: 2^k paths lead back to x, but each node is visited once.

    ∂y_n/∂x = (a + b)^n; with a = 0.5, b = 0.5000001 and n = 3·10^5 (about 10^6 nodes).
    """
    n = 3 * MILLION // 10
    a, b = Value(0.5, label="a"), Value(0.5000001, label="b")
    x = Value(1.0, label="x")
    y = x
    for _ in range(n):
        y = a * y + b * y
    (dx,) = grad(y, [x])
    assert dx == pytest.approx(1.0000001**n, rel=1e-9)


@pytest.mark.slow
def test_second_derivative_through_a_million_deep_chain() -> None:
    """y = x·r^n, n = 10^6: grad(create_graph=True) records ∂y/∂x = r^n as a second
    graph of the same depth; differentiating it again gives ∂²y/∂x∂r = n·r^(n-1)."""
    n = MILLION
    x, r = Value(0.5, label="x"), Value(1.0000001, label="r")
    (dy_dx,) = grad(product_chain(x, r, n), [x], create_graph=True)
    assert isinstance(dy_dx, Value)
    assert dy_dx.data == pytest.approx(1.0000001**n, rel=1e-9)
    (d2y,) = grad(dy_dx, [r])
    assert d2y == pytest.approx(n * 1.0000001 ** (n - 1), rel=1e-9)


@pytest.fixture(scope="module")
def million_chain() -> tuple[Value, Value, Value]:
    """x, r and y = x·r^(10^6), built once for the tests that only read it."""
    x, r = Value(0.5, label="x"), Value(1.0000001, label="r")
    return x, r, product_chain(x, r, MILLION)


@pytest.mark.slow
def test_drawing_a_million_deep_chain_is_refused_not_attempted(million_chain: tuple[Value, Value, Value]) -> None:
    """The size guard counts nodes iteratively and stops past max_nodes: a clear error, no
    RecursionError, no DOT source of a million records; the same with neuron collapsing,
    which must order the whole graph first. (The guard runs before graphviz is needed.)"""
    from autograd.draw import draw_graph

    y = million_chain[2]
    with pytest.raises(InvalidArgumentError, match=r"more than 500 nodes .*max_nodes="):
        draw_graph(y)
    with pytest.raises(InvalidArgumentError, match=r"draw_graph: the graph has"):
        draw_graph(y, cluster="collapse", max_nodes=1000)


@pytest.mark.slow
def test_tracing_a_graph_of_a_million_nodes() -> None:
    """f(x) = Σ_i tanh(w_i·x) over 333,333 parameters (10^6 nodes), replayed on a batch of 3:
    f(x_p) in closed form, and ∂(Σ_p f(x_p))/∂w_i = Σ_p x_p·(1 - tanh²(w_i·x_p))."""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    weights = [Value(0.001 * (i % 100), label=f"w{i}") for i in range(MILLION // 3)]
    replay = trace(lambda x: sum_values([(w * x).tanh() for w in weights]), 0.5)
    batch = [0.5, -1.0, 2.0]
    outputs = replay.forward(batch)
    for x, out in zip(batch, outputs):
        assert out == pytest.approx(sum(math.tanh(w.data * x) for w in weights), rel=1e-10)
    replay.backward()
    for w in weights[:200]:
        expected = sum(x * (1 - math.tanh(w.data * x) ** 2) for x in batch)
        assert w.grad == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
def test_tracing_a_chain_a_million_deep() -> None:
    """y ← y·r and y ← y + c alternately, 10^6 operations from y = x: after m = n/2 pairs
    y = r^m·x + c·S(r) with S(r) = Σ_{i<m} r^i = (r^m - 1)/(r - 1), so
    ∂y/∂c = S(r) and ∂y/∂r = m·r^(m-1)·x + c·S'(r), S'(r) = (m·r^(m-1)·(r - 1) - (r^m - 1))/(r - 1)².

    Every level holds one node: the tape is one chain, traced and replayed (forward and
    backward, batch of 4) without recursion; gradients are summed over the batch."""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    n, m = MILLION, MILLION // 2
    r, c = Value(1.0000001, label="r"), Value(0.001, label="c")

    def chain(x: Value) -> Value:
        y = x
        for i in range(n):
            y = y * r if i % 2 == 0 else y + c
        return y

    replay = trace(chain, 1.0)
    assert len(replay.chains) == 1 and not replay.groups
    batch = [0.5, 1.0, -2.0, 3.0]
    rm, rv, cv = 1.0000001**m, 1.0000001, 0.001
    geometric = (rm - 1) / (rv - 1)
    d_geometric = (m * rm / rv * (rv - 1) - (rm - 1)) / (rv - 1) ** 2
    assert list(replay.forward(batch)) == pytest.approx([rm * x + cv * geometric for x in batch], rel=1e-9)
    replay.backward()
    assert c.grad == pytest.approx(len(batch) * geometric, rel=1e-9)
    assert r.grad == pytest.approx(sum(m * rm / rv * x + cv * d_geometric for x in batch), rel=1e-9)


def test_releasing_a_graph_returns_its_memory(traced_memory: None) -> None:
    """A 10^4-node graph, back-propagated then dropped: reference counting alone frees it."""
    x = Value(0.3, label="x")
    before = allocated()
    y = x
    for _ in range(10_000):
        y = (y * 1.0001).tanh() + 0.1
    y.backward()
    assert allocated() - before > 10 * FREE_LIST_ALLOWANCE  # the graph was really there
    del y
    assert allocated() - before < FREE_LIST_ALLOWANCE


def test_grad_and_create_graph_leave_nothing_behind(traced_memory: None) -> None:
    """grad(create_graph=True) builds a second graph; dropping both frees both."""
    x = Value(0.3, label="x")
    before = allocated()
    y = x
    for _ in range(5000):
        y = (y * 1.0001).sin() + 0.1
    (dy,) = grad(y, [x], create_graph=True)
    (d2y,) = grad(dy, [x])  # type: ignore[arg-type]
    assert isinstance(d2y, float)
    assert allocated() - before > 10 * FREE_LIST_ALLOWANCE
    del y, dy
    assert allocated() - before < FREE_LIST_ALLOWANCE


def test_training_memory_does_not_grow_with_epochs(traced_memory: None) -> None:
    """Each sample's graph is dropped after its backward pass, so 60 epochs leave no more
    behind, and need no higher peak, than 10. A graph kept per sample would be about
    2 MB more (measured with a loss that keeps its graphs); free lists and caches
    make a few hundred kB of noise either way."""
    import nn

    X, y = nn.data.moons(8, noise=0.1, seed=0)

    def retained_and_peak(epochs: int) -> tuple[int, int]:
        model = nn.MLP(2, [4, 1], activation="tanh", seed=0)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), batch_size=4)
        tracemalloc.reset_peak()
        before = allocated()
        trainer.fit(X, y, epochs=epochs, progress=False)
        current, peak = tracemalloc.get_traced_memory()
        return current - before, peak - before

    retained_and_peak(10)  # warm-up
    short, long = retained_and_peak(10), retained_and_peak(60)
    assert long[0] - short[0] < 500_000
    assert long[1] - short[1] < 500_000
