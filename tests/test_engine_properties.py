"""Property test: random expression graphs built from the op table, with shared
subexpressions, pass gradcheck (central finite differences are the reference)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autograd import Value, gradcheck, sum_values

# Each step combines earlier nodes (any of them: reuse makes shared subexpressions).
# Domain-limited ops get inputs moved into their domain; kinked ops remember their
# input so that points within reach of the finite-difference step are skipped.
UNARY = ["neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "softplus",
         "sin", "cos", "square", "cube", "inverse"]
BINARY = ["add", "sub", "mul", "div", "pow", "radd", "rmul", "rsub", "rdiv", "rpow", "sum"]

step = st.one_of(
    st.tuples(st.sampled_from(UNARY), st.integers(0, 1000), st.just(0)),
    st.tuples(st.sampled_from(BINARY), st.integers(0, 1000), st.integers(0, 1000)),
)


def combine(name: str, a: Value, b: Value) -> Value:
    positive = a * a + 0.5  # > 0, for log, sqrt, division and Value exponents
    steps = {
        "neg": lambda: -a,
        "abs": lambda: abs(a),
        "exp": lambda: a.tanh().exp(),
        "log": lambda: positive.log(),
        "sqrt": lambda: positive.sqrt(),
        "tanh": lambda: a.tanh(),
        "sigmoid": lambda: a.sigmoid(),
        "relu": lambda: a.relu(),
        "leaky_relu": lambda: a.leaky_relu(0.1),
        "softplus": lambda: a.softplus(),
        "sin": lambda: a.sin(),
        "cos": lambda: a.cos(),
        "square": lambda: a.tanh() ** 2,
        "cube": lambda: a.tanh() ** 3,
        "inverse": lambda: positive**-1,
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a.tanh() * b.tanh(),
        "div": lambda: a / (b * b + 0.5),
        "pow": lambda: positive ** b.tanh(),
        "radd": lambda: 1.5 + a,
        "rmul": lambda: 0.5 * a,
        "rsub": lambda: 2.0 - a,
        "rdiv": lambda: 1.0 / positive,
        "rpow": lambda: 1.7 ** a.tanh(),
        "sum": lambda: sum_values([a, b, a]),
    }
    return steps[name]()


def build(program: list[tuple[str, int, int]], leaves: list[Value], kinks: list[float]) -> Value:
    nodes: list[Value] = list(leaves)
    for name, i, j in program:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if name in ("abs", "relu", "leaky_relu"):
            kinks.append(a.data)
        nodes.append(combine(name, a, b))
    # Combine the last few nodes so that earlier results matter too.
    return sum_values(nodes[-3:]) if len(nodes) > 1 else nodes[0] * 1.0


@settings(max_examples=150, deadline=None)
@given(
    point=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4),
    program=st.lists(step, min_size=1, max_size=12),
)
def test_random_graphs_pass_gradcheck(point: list[float], program: list[tuple[str, int, int]]) -> None:
    kinks: list[float] = []
    build(program, [Value(x) for x in point], kinks)
    # A kink within 1e-4 of an input would make the finite difference straddle it.
    assume(all(abs(k) > 1e-4 for k in kinks))

    def fn(*xs: Value) -> Value:
        return build(program, list(xs), [])

    assert gradcheck(fn, point, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_shared_subexpression_example_by_hand() -> None:
    """s = t·t + t with t = sin(x): ds/dx = (2t + 1)·cos x."""
    import math

    x = Value(0.4)
    t = x.sin()
    (t * t + t).backward()
    assert x.grad == pytest.approx((2 * math.sin(0.4) + 1) * math.cos(0.4), abs=1e-15)


def reachable(root: Value) -> set[int]:
    """Every node ``root`` depends on (itself included), by a plain search over ``parents``."""
    seen = {id(root)}
    frontier = [root]
    while frontier:
        for parent in frontier.pop().parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                frontier.append(parent)
    return seen


@settings(max_examples=150, deadline=None)
@given(
    point=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4),
    program=st.lists(step, min_size=1, max_size=20),
)
def test_topological_order_of_random_graphs(point: list[float], program: list[tuple[str, int, int]]) -> None:
    """Each reachable node listed once, after all of its parents; leaves=False drops exactly the leaves."""
    from autograd import topological_order

    root = build(program, [Value(x) for x in point], [])
    order = topological_order(root)
    assert [id(n) for n in order].count(id(root)) == 1 and order[-1] is root
    assert len(order) == len({id(n) for n in order})
    assert {id(n) for n in order} == reachable(root)
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        assert all(position[id(p)] < position[id(node)] for p in node.parents)
    inner = topological_order(root, leaves=False)
    assert [id(n) for n in inner] == [id(n) for n in order if n.parents]
