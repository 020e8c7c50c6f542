"""Memory of the graph, measured with tracemalloc: a recorded node costs at most 250
bytes (issue 5; micrograd's cost about 600 here), and a dropped graph is freed at
once by reference counting — there is no cycle for the garbage collector to find;
a trace keeps its index arrays, not the graph it recorded.

Memory bounds, not timings: tracemalloc counts bytes allocated, whatever the machine load.
"""

from __future__ import annotations

import sys

import pytest
from conftest import allocated

from autograd import Value
from autograd.backward import topological_order
from benchmarks.engine import tree  # the benchmark's workload, measured here for memory

LEAVES = 1 << 14
# 2000 free 1-tuples and 2000 free 2-tuples, with their allocator headers.
TUPLE_FREE_LISTS = 2000 * (64 + 72)


@pytest.mark.parametrize("leaves", [1, 2, 3, 4, 5, 6, 7, 100, 1001, LEAVES])
def test_the_benchmark_tree_counts_its_nodes(leaves: int) -> None:
    """The count the per-node figures divide by is the number of nodes the sort finds."""
    root, nodes = tree(Value, leaves)
    assert nodes == len(topological_order(root))


def test_a_recorded_node_costs_at_most_250_bytes(traced_memory: None) -> None:
    """Everything the graph holds — nodes, floats for data and grad — after backward."""
    before = allocated()
    root, nodes = tree(Value, LEAVES)
    root.backward()
    per_node = (allocated() - before) / nodes
    assert per_node <= 250, f"{per_node:.0f} bytes per node"


def test_a_dropped_graph_is_freed_by_reference_counting(traced_memory: None) -> None:
    """With the cyclic collector off, dropping the root frees the graph.

    A little stays counted: CPython keeps up to 2000 freed tuples of each small
    size for reuse (``TUPLE_FREE_LISTS``: the backward pass's tuples of local
    derivatives, 1 and 2 floats).
    Building and dropping the graph a second time must not add to it.
    """
    before = allocated()
    root, _ = tree(Value, LEAVES)
    root.backward()
    graph_bytes = allocated() - before
    del root
    left = allocated() - before
    assert graph_bytes > 10 * TUPLE_FREE_LISTS
    assert left <= TUPLE_FREE_LISTS, f"{left} of {graph_bytes} bytes still allocated"
    root, _ = tree(Value, LEAVES)
    root.backward()
    del root
    assert allocated() - before <= left + 0.01 * graph_bytes


def test_a_trace_does_not_keep_the_recorded_graph_alive() -> None:
    """After tracing, the only new reference to a weight is the trace's list of parameters.

    Every node of the recorded graph that read the weight would hold one more
    (a parent slot), so an unchanged count means the graph was freed.
    """
    pytest.importorskip("numpy")
    from autograd import sum_values, trace

    weights = [Value(0.1 * i) for i in range(20)]

    def model(x: list[Value]) -> Value:
        return sum_values([(w * x[0] + w * x[1]).tanh() ** 2 for w in weights])

    before = [sys.getrefcount(w) for w in weights]
    step = trace(model, example=[0.5, 0.25])
    assert [sys.getrefcount(w) for w in weights] == [n + 1 for n in before]
    assert sorted(map(id, step.parameters)) == sorted(map(id, weights))
