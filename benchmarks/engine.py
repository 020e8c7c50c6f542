"""Engine benchmark (issue 2): build and back-propagate, this engine vs micrograd 0.1.0.

(a) a tree of 2·10^5 leaves combined pairwise by ``+``, ``relu(+)`` and ``*`` in turn:
    build + backward, with the output kept alive until the clock stops; then, on
    its own, freeing that graph once it is dropped (``del`` and one ``gc.collect()``,
    which a graph with reference cycles, like micrograd's, needs);
(b) a chain 10^5 operations deep (micrograd's recursive topological sort fails here);
and the memory of a recorded node (tracemalloc, after backward).

    python benchmarks/engine.py
    python benchmarks/engine.py --preload numpy   # the same, with numpy in memory

Much of either engine's time is Python's cyclic garbage collector, and how
often it walks the whole heap depends on what else the process holds: micrograd,
with several collected objects per node, is slowed most in a bare process.
``--preload`` imports modules first, to measure with them in memory.
"""

from __future__ import annotations

import gc
import itertools
import operator
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograd import Value  # noqa: E402
from benchmarks.common import fmt_ms, fmt_ratio, median_seconds, optional, ratio, table  # noqa: E402

TREE_LEAVES = 200_000
CHAIN_DEPTH = 100_000
MEMORY_LEAVES = 1 << 14


def tree_inputs(leaves: int) -> list[float]:
    """The leaves' numbers: drawn before the clock starts, since drawing them is not the engines' work."""
    rng = random.Random(0)
    return [rng.uniform(-1.0, 1.0) for _ in range(leaves)]


def add_relu(a: Any, b: Any) -> Any:
    return (a + b).relu()


def build_tree(value: Any, inputs: list[float]) -> Any:
    """Leaves made from ``inputs``, combined pairwise by +, relu(+) and * in turn, to one root.

    The operations take turns across the whole tree (not afresh on each level),
    and an odd one out is carried up to the next level. The builder itself does
    as little as it can (one list comprehension per level), so that the time is
    the engines' own: making nodes, and their garbage collection.
    """
    level = [value(x) for x in inputs]
    operations = itertools.cycle((operator.add, add_relu, operator.mul))
    while len(level) > 1:
        odd_one_out = level[-1:] if len(level) % 2 else []
        # zip stops on the shorter slice before it takes the next operation.
        level = [op(a, b) for a, b, op in zip(level[0::2], level[1::2], operations)]
        level += odd_one_out
    return level[0]


def tree_nodes(leaves: int) -> int:
    """How many nodes `build_tree` records: the leaves, one per pair, and a relu for every third pair."""
    pairs = leaves - 1  # each pair makes two Values one
    return leaves + pairs + (pairs + 1) // 3


def tree(value: Any, leaves: int) -> tuple[Any, int]:
    """The benchmark tree with ``leaves`` leaves: (root, node count)."""
    return build_tree(value, tree_inputs(leaves)), tree_nodes(leaves)


def chain(value: Any, depth: int) -> Any:
    """y ← (y + x) then y ← y·x, alternately, ``depth`` operations deep (y stays near 0.5)."""
    x = value(0.5)
    y = x
    for i in range(depth):
        y = y + x if i % 2 == 0 else y * x
    return y


def build_and_backward(make: Any) -> Any:
    """Build a graph with ``make`` and back-propagate; returns the output (the graph stays alive)."""
    root = make()
    root.backward()
    return root


def free_seconds(makers: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median time to give back a dropped graph's memory, contestants taking turns."""
    samples: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, make in makers.items():
            root = build_and_backward(make)
            gc.collect()
            start = time.perf_counter()
            del root
            gc.collect()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def bytes_per_node(value: Any) -> float:
    """Memory held by the graph per recorded node (leaves included), after backward."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        root, nodes = tree(value, MEMORY_LEAVES)
        root.backward()
        return (tracemalloc.get_traced_memory()[0] - before) / nodes
    finally:
        tracemalloc.stop()


def run(repeats: int = 5) -> dict[str, Any]:
    engine = optional("micrograd.engine")
    micrograd = engine.Value if engine else None
    results: dict[str, Any] = {"tree_leaves": TREE_LEAVES, "chain_depth": CHAIN_DEPTH}
    results["tree_nodes"] = tree_nodes(TREE_LEAVES)
    inputs = tree_inputs(TREE_LEAVES)
    makers = {"eager": lambda: build_tree(Value, inputs)}
    if micrograd:
        makers["micrograd"] = lambda: build_tree(micrograd, inputs)
    makers["eager"]()  # a warm-up run
    tree_runs = {name: (lambda make=make: build_and_backward(make), 1) for name, make in makers.items()}
    tree_times = median_seconds(tree_runs, repeats)
    results["tree_eager_s"] = tree_times["eager"]
    results["tree_micrograd_s"] = tree_times.get("micrograd")
    free_times = free_seconds(makers, repeats)
    results["free_eager_s"] = free_times["eager"]
    results["free_micrograd_s"] = free_times.get("micrograd")
    chain_runs = {"eager": (lambda: build_and_backward(lambda: chain(Value, CHAIN_DEPTH)), 1)}
    results["chain_eager_s"] = median_seconds(chain_runs, repeats)["eager"]
    results["chain_micrograd"] = "not installed"
    if micrograd:
        try:
            build_and_backward(lambda: chain(micrograd, CHAIN_DEPTH))
            results["chain_micrograd"] = "ok"
        except RecursionError:
            results["chain_micrograd"] = "RecursionError"
        gc.collect()
    results["bytes_per_node_eager"] = bytes_per_node(Value)
    results["bytes_per_node_micrograd"] = bytes_per_node(micrograd) if micrograd else None
    results["tree_speedup_vs_micrograd"] = ratio(results["tree_micrograd_s"], results["tree_eager_s"])
    results["free_speedup_vs_micrograd"] = ratio(results["free_micrograd_s"], results["free_eager_s"])
    return results


def report(r: dict[str, Any]) -> str:
    micro_memory = r["bytes_per_node_micrograd"]
    rows = [
        [
            f"tree, {r['tree_leaves']:,} leaves ({r['tree_nodes']:,} nodes): build + backward",
            fmt_ms(r["tree_eager_s"]),
            fmt_ms(r["tree_micrograd_s"]),
            fmt_ratio(r["tree_speedup_vs_micrograd"]),
        ],
        [
            "the same tree, dropped: freeing its memory (del + gc.collect)",
            fmt_ms(r["free_eager_s"]),
            fmt_ms(r["free_micrograd_s"]),
            fmt_ratio(r["free_speedup_vs_micrograd"]),
        ],
        [
            f"chain, {r['chain_depth']:,} deep: build + backward",
            fmt_ms(r["chain_eager_s"]),
            r["chain_micrograd"],
            "-",
        ],
        [
            "memory per recorded node (tracemalloc, after backward)",
            f"{r['bytes_per_node_eager']:.0f} B",
            "not installed" if micro_memory is None else f"{micro_memory:.0f} B",
            fmt_ratio(ratio(micro_memory, r["bytes_per_node_eager"])),
        ],
    ]
    return table(["workload", "this engine", "micrograd 0.1.0", "micrograd / this"], rows)


def main(repeats: int = 5) -> dict[str, Any]:
    results = run(repeats)
    print(report(results))
    return results


if __name__ == "__main__":
    import argparse
    import importlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preload", default="", help="comma-separated modules to import first")
    for name in filter(None, parser.parse_args().preload.split(",")):
        importlib.import_module(name)
    main()
