"""Graph shapes the backward pass must get right, and gradient bookkeeping.
Expected values are derived by hand in each docstring."""

from __future__ import annotations

import sys
import threading

import pytest

from autograd import Value, no_grad, topological_order


def test_node_reached_along_several_paths() -> None:
    """b = a + a, c = b·b = 4a²  =>  dc/da = 8a = 24 at a = 3."""
    a = Value(3.0)
    b = a + a
    c = b * b
    c.backward()
    assert a.grad == 24.0
    assert b.grad == 2 * b.data  # dc/db = 2b


def test_same_parent_twice() -> None:
    """y = x·x  =>  dy/dx = 2x = -2.6 at x = -1.3."""
    x = Value(-1.3)
    (x * x).backward()
    assert x.grad == pytest.approx(-2.6, abs=1e-15)


def test_diamond_with_unequal_paths() -> None:
    """y = (x + 1)·x·2 + x  =>  dy/dx = 4x + 2 + 1 = 11 at x = 2."""
    x = Value(2.0)
    y = (x + 1) * x * 2 + x
    y.backward()
    assert x.grad == 11.0


def test_order_lists_each_node_once_after_its_parents() -> None:
    a = Value(1.0)
    b = a * a
    c = b + a
    d = c * b
    order = topological_order(d)
    assert len(order) == len({id(n) for n in order}) == 4
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert order[-1] is d


def test_order_without_leaves_lists_exactly_the_operations_after_their_parents() -> None:
    """leaves=False lists the nodes made by operations and nothing else, whichever way a leaf
    is reached (a binary op's operand, one of an n-ary sum's parents, the root itself), and a
    node read by several operations once: here a, b, w are leaves; p, q, s, e operations."""
    from autograd import sum_values

    a, b, w = Value(1.0), Value(2.0), Value(3.0)
    p = a * w
    q = p * b
    s = sum_values([p, q, w, a, p])  # leaves and a shared node among an n-ary sum's parents
    e = s * p
    order = topological_order(e, leaves=False)
    assert sorted(map(id, order)) == sorted(map(id, [p, q, s, e]))
    assert order.index(p) < order.index(q) < order.index(s) < order.index(e)
    assert topological_order(a, leaves=False) == []
    assert topological_order(a) == [a]
    with_leaves = topological_order(e)
    assert sorted(map(id, with_leaves)) == sorted(map(id, [a, b, w, p, q, s, e]))


def test_leaf_gradients_accumulate_over_two_backward_calls() -> None:
    """Two passes of y = 3x add up: 3 + 3 = 6 (like PyTorch); zero_grad resets."""
    x = Value(5.0)
    y = 3 * x
    y.backward()
    y.backward()
    assert x.grad == 6.0
    x.zero_grad()
    assert x.grad == 0.0


def test_interior_nodes_hold_the_latest_pass_only() -> None:
    """A second backward through the same graph must not double-count interior grads:
    y = (2x)², dy/dx = 8x = 8 at x = 1 per pass, so 16 after two passes."""
    x = Value(1.0)
    h = 2 * x
    y = h * h
    y.backward()
    y.backward()
    assert x.grad == 16.0
    assert h.grad == 4.0  # dy/dh = 2h, this pass only


def test_backward_with_an_explicit_seed() -> None:
    """y = x², seeded with dL/dy = 0.5: dL/dx = 0.5·2x = 3 at x = 3."""
    x = Value(3.0)
    (x * x).backward(0.5)
    assert x.grad == 3.0


def _chain(depth: int) -> tuple[Value, Value]:
    x = Value(0.5, label="x")
    y = x
    for _ in range(depth):
        y = y * 1.0 + 0.0  # two nodes per step, each with derivative 1
    return x, y


@pytest.mark.slow
def test_chain_a_million_deep_needs_no_recursion() -> None:
    """y = ((x·1 + 0)·1 + 0)… 5·10^5 times: 10^6 nodes deep, dy/dx = 1."""
    limit = sys.getrecursionlimit()
    x, y = _chain(500_000)
    y.backward()
    assert x.grad == 1.0
    assert sys.getrecursionlimit() == limit


@pytest.mark.slow
def test_graph_of_a_million_nodes() -> None:
    """y = Σ_i (x_i · c_i) over 5·10^5 leaves (10^6 nodes): dy/dx_i = c_i."""
    xs = [Value(float(i % 7)) for i in range(500_000)]
    y = sum(x * float(i % 5) for i, x in enumerate(xs))
    y.backward()
    assert all(x.grad == float(i % 5) for i, x in enumerate(xs))


def test_no_grad_records_nothing_and_restores_state_on_error() -> None:
    x = Value(2.0)
    with no_grad():
        y = x * 3
    assert y.parents == () and y.data == 6.0
    with pytest.raises(RuntimeError), no_grad():
        raise RuntimeError("boom")
    z = x * 3
    assert z.parents[0] is x and z.parents[1].data == 3.0


def test_no_grad_nests_and_works_as_a_decorator() -> None:
    @no_grad()
    def triple(v: Value) -> Value:
        return v * 3

    x = Value(1.0)
    with no_grad():
        with no_grad():
            assert (x + 1).parents == ()
        assert (x + 1).parents == ()
    assert (x + 1).parents != ()
    assert triple(x).parents == ()
    assert (x + 1).parents != ()


def test_no_grad_is_thread_local() -> None:
    """One thread inside no_grad must not stop another thread from recording."""
    inside = threading.Event()
    recorded: list[bool] = []
    release = threading.Event()

    def quiet() -> None:
        with no_grad():
            inside.set()
            release.wait(5)

    def loud() -> None:
        inside.wait(5)
        recorded.append((Value(1.0) * 2).parents != ())
        release.set()

    threads = [threading.Thread(target=quiet), threading.Thread(target=loud)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorded == [True]


def test_comparisons_compare_data_and_record_nothing() -> None:
    a, b = Value(1.0), Value(2.0)
    assert a < b and a <= 1 and b > a and b >= 2.0
    assert not (a > b)
    assert a.parents == () and b.parents == ()


def test_labels_are_kept_for_leaves_and_nodes_and_go_with_their_value() -> None:
    """Labels live in a table beside the graph (not in each node); a Value's entry goes with it."""
    from autograd.value import _labels

    x = Value(2.0, label="x")
    y = x * 3
    assert (x.label, y.label) == ("x", "")
    y.label = "y"
    assert (x.label, y.label) == ("x", "y")
    y.label = ""
    assert y.label == "" and y not in _labels
    y.label = "y again"
    entries = len(_labels)
    del y
    assert len(_labels) == entries - 1
    assert x.label == "x"


def test_copies_keep_labels_and_rules_and_are_independent() -> None:
    """copy.deepcopy of a graph: same numbers, labels and rules, its own nodes."""
    import copy

    x = Value(2.0, label="x")
    k = Value(3.0, requires_grad=False)
    y = x * k
    y.label = "y"
    y2 = copy.deepcopy(y)
    x2, k2 = y2.parents
    assert (y2.data, y2.label, x2.label, y2.rule) == (6.0, "y", "x", y.rule)
    assert x2 is not x and not k2.requires_grad
    y2.backward()
    assert (x2.grad, x.grad) == (3.0, 0.0)  # d(3x)/dx = 3, on the copy only
    shallow = copy.copy(y)
    assert shallow.label == "y" and shallow.parents[0] is x


def test_a_deep_copied_model_keeps_its_parameter_labels() -> None:
    import copy

    import nn

    model = nn.MLP(2, [3, 1], seed=0)
    twin = copy.deepcopy(model)
    assert [p.label for p in twin.parameters()] == [p.label for p in model.parameters()]
    assert twin([0.5, -0.25]).data == model([0.5, -0.25]).data
    twin.parameters()[0].data += 1.0
    assert twin([0.5, -0.25]).data != model([0.5, -0.25]).data


def test_float_sum_and_repr() -> None:
    x = Value(0.73912, label="x")
    x.grad = 0.053611
    assert float(x) == 0.73912
    assert repr(x) == "Value(data=0.7391, grad=0.05361, label='x')"
    assert repr(Value(2.0)) == "Value(data=2, grad=0)"
    total = sum([Value(1.0), Value(2.0), Value(3.5)])
    assert isinstance(total, Value) and total.data == 6.5


def test_a_second_pass_through_the_same_graph_reuses_its_order(monkeypatch) -> None:
    """The order of a graph is computed once per output while it lives; the gradients of
    y = x·sin(x) + x are the same on every pass: dy/dx = sin x + x cos x + 1."""
    import math

    from autograd import backward as backward_module

    calls: list[int] = []
    real = backward_module.topological_order

    def counting(root, leaves=True):
        calls.append(1)
        return real(root, leaves)

    monkeypatch.setattr(backward_module, "topological_order", counting)
    x = Value(0.7)
    y = x * x.sin() + x
    for passes in (1, 2, 3):
        x.zero_grad()
        y.backward()
        assert x.grad == pytest.approx(math.sin(0.7) + 0.7 * math.cos(0.7) + 1, abs=1e-15)
        assert len(calls) == 1, passes


def test_a_dropped_graph_is_freed_after_backward() -> None:
    """Remembering the order must not keep the graph alive once the output is dropped."""
    import gc
    import weakref

    x = Value(0.5)
    hidden = x * 2.0
    y = hidden.tanh() + 1.0
    y.backward()
    watch = weakref.ref(hidden)
    del hidden, y
    assert watch() is None  # freed by reference counting alone (no cycle to collect)
    gc.collect()
    assert watch() is None


def test_parents_in_argument_order_for_every_arity() -> None:
    """A node keeps its inputs in order, repeats included, however many there are."""
    from autograd import sum_values

    a, b, c = Value(1.0), Value(2.0), Value(3.0)
    assert a.parents == () and a.is_leaf
    assert a.relu().parents == (a,)
    assert (a - b).parents == (a, b) and (b - a).parents == (b, a)
    assert (a * a).parents == (a, a)
    reflected = 2.0 - a
    assert reflected.parents[1] is a and reflected.parents[0].data == 2.0
    assert sum_values([a, b]).parents == (a, b)
    total = sum_values([c, a, b, a, c])
    assert total.parents == (c, a, b, a, c) and not total.is_leaf
    total.backward()
    assert (a.grad, b.grad, c.grad) == (2.0, 1.0, 2.0)  # d/dx of c + a + b + a + c
