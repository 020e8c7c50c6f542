"""The rows that make sequence models traceable: select (`autograd.select`, `ops.SELECT`),
y = v_i picked by an integer index i, ∂y/∂v_k = [k = i], ∂y/∂i = 0; and amax (`ops.AMAX`),
and stop_gradient, softmax's shift while tracing. Expected numbers: hand derivation (the one-hot slope),
PyTorch (`torch.gather`, `torch.amax`), finite differences (`gradcheck`)."""

from __future__ import annotations

import math

import pytest

import nn
from autograd import (
    Value,
    amax,
    draw_graph,
    grad,
    gradcheck,
    ops,
    select,
    stop_gradient,
    sum_values,
    trace,
    walkthrough,
)
from autograd.errors import DomainError, InvalidArgumentError, InvalidTypeError


def test_select_picks_the_indexed_choice_and_its_gradient_is_one_hot() -> None:
    """Hand derivation: y = 3·v_i, so ∂y/∂v_k = 3 for k = i and 0 otherwise; ∂y/∂i = 0."""
    for i in range(4):
        v = [Value(x) for x in (0.5, -1.25, 2.0, 7.0)]
        index = Value(float(i))
        y = select(index, *v) * 3.0
        y.backward()
        assert y.data == 3.0 * (0.5, -1.25, 2.0, 7.0)[i]
        assert [x.grad for x in v] == [3.0 if k == i else 0.0 for k in range(4)]
        assert index.grad == 0.0


def test_a_choice_picked_twice_accumulates_both_gradients() -> None:
    """y = v_i·v_j with i = j = 1: ∂y/∂v_1 = 2·v_1 (hand derivation of v_1²)."""
    v = [Value(1.5), Value(-2.0), Value(0.25)]
    y = select(Value(1.0), *v) * select(1, *v)
    y.backward()
    assert y.data == 4.0
    assert [x.grad for x in v] == [0.0, -4.0, 0.0]


def test_select_equals_torch_gather_with_gradients(torch) -> None:
    table = [[0.3, -1.2, 2.0, 0.5], [1.1, 0.0, -0.7, 3.3], [-2.5, 0.9, 0.4, -0.1]]
    ids = [2, 0, 2, 1, 3]
    weight = torch.tensor(table, requires_grad=True)
    index = torch.tensor(ids).expand(3, -1)
    picked = torch.gather(weight, 1, index)  # picked[r, p] = table[r][ids[p]]
    (picked * torch.arange(1.0, 6.0)).sum().backward()

    ours = [[Value(x) for x in row] for row in table]
    total = sum_values([select(Value(float(i)), *row) * float(p + 1) for row in ours for p, i in enumerate(ids)])
    total.backward()
    assert total.data == pytest.approx((picked * torch.arange(1.0, 6.0)).sum().item(), rel=1e-15)
    assert [[x.grad for x in row] for row in ours] == weight.grad.tolist()


def test_select_passes_gradcheck_at_every_index() -> None:
    for i in range(3):
        assert gradcheck(lambda a, b, c, i=i: select(i, a * b, b.tanh(), c * c), [0.3, -0.8, 1.7])


def test_second_derivatives_through_select_are_recorded() -> None:
    """create_graph: ∂(v_i²)/∂v_i = 2·v_i is itself a graph; differentiating it again gives 2."""
    v = [Value(0.5), Value(3.0)]
    index = Value(1.0)
    (first,) = grad(select(index, *v) ** 2, [v[1]], create_graph=True)
    assert first.data == 6.0
    (second,) = grad(first, [v[1]])
    assert second == 2.0


@pytest.mark.parametrize(
    "index, error, match",
    [(3, DomainError, r"select: index 3.0 is not an integer in \[0, 3\)"),
     (-1, DomainError, r"select: index -1.0 is not an integer in \[0, 3\)"),
     (Value(1.5), DomainError, r"select: index 1.5 is not an integer in \[0, 3\)"),
     ("1", InvalidTypeError, "select \\(index\\).*str '1'"),
     (True, InvalidTypeError, "select \\(index\\).*bool"),
     (float("nan"), InvalidArgumentError, "select \\(index\\): expected a finite number, got nan")],
)  # fmt: skip
def test_a_bad_index_is_refused_with_its_value(index, error, match) -> None:
    with pytest.raises(error, match=match):
        select(index, Value(1.0), Value(2.0), Value(3.0))


def test_select_needs_a_choice() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one choice"):
        select(0)


def test_the_row_reads_as_a_table_entry_and_is_drawn_and_walked() -> None:
    assert ops.SELECT.explain().splitlines() == [
        "select: y = v_i = the choice i of v₀, v₁, …",
        "  ∂(v_i)/∂i = 0",
        "  ∂(v_i)/∂v_k = 1 if k = i, else 0",
        "  (select needs an integer index 0 <= i < n, the number of choices)",
    ]
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    i = Value(1.0, label="i")
    y = select(i, a, b) * 2.0
    assert "select" in draw_graph(y).source
    step = walkthrough(y).steps[1]
    assert step.equation.endswith("= select(i, a, b)")
    assert [(c.parent_name, c.local, c.contribution) for c in step.parents] == [("i", 0.0, 0.0), ("a", 0.0, 0.0),
                                                                               ("b", 1.0, 2.0)]


def test_embedding_and_cross_entropy_pick_with_select_for_a_value_index_and_index_for_an_int() -> None:
    """The select path gives exactly the numbers and gradients of plain indexing (eager, both ways)."""
    emb = nn.Embedding(5, 3, seed=0)
    by_int = emb(3)
    by_value = emb(Value(3.0))
    assert by_int == emb.weight[3]  # the parameters themselves: no node
    assert [y.op for y in by_value] == ["select"] * 3
    assert [y.data for y in by_value] == [w.data for w in emb.weight[3]]
    sum_values([y * y for y in by_value]).backward()
    assert [[w.grad for w in row] for row in emb.weight] == [
        [2.0 * w.data if r == 3 else 0.0 for w in row] for r, row in enumerate(emb.weight)
    ]
    with pytest.raises(DomainError, match=r"index 5.0 is not an integer in \[0, 5\)"):
        emb(Value(5.0))


# -- amax: the max row, softmax's shift while tracing ------------------------------------------


@pytest.mark.parametrize("xs", [[0.3, 2.5, -1.0, 2.0], [1.0, 3.0, 3.0], [2.0, 2.0, 2.0, -5.0], [4.0]])
def test_amax_equals_torch_amax_with_ties_sharing_the_gradient(xs, torch) -> None:
    """torch.amax "evenly distributes gradient between equal values"."""
    expected = torch.tensor(xs, requires_grad=True)
    (torch.amax(expected) * 3.0).backward()
    ours = [Value(x) for x in xs]
    y = amax(ours) * 3.0
    y.backward()
    assert y.data == 3.0 * max(xs)
    assert [v.grad for v in ours] == expected.grad.tolist()


def test_amax_passes_gradcheck_and_propagates_nan() -> None:
    assert gradcheck(lambda a, b, c: amax([a * b, b.sin(), c]), [0.3, -0.8, 1.7])
    big = Value(1e308)
    not_a_number = big * 10.0 - big * 10.0  # inf - inf
    v = [Value(1.0), not_a_number, Value(2.0)]
    y = amax(v)
    y.backward()
    assert math.isnan(y.data)
    assert [x.grad for x in v] == [0.0, 0.0, 0.0]  # no input equals a NaN maximum


def test_amax_refuses_an_empty_list_and_a_non_list() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one value"):
        amax([])
    with pytest.raises(InvalidTypeError, match="expected a list"):
        amax(Value(1.0))


def test_stop_gradient_passes_the_number_and_no_gradient_eagerly_and_in_a_replay() -> None:
    """y = x·sg(x): the value x², the gradient sg(x) = x only (hand derivation: the second
    factor is a constant), as torch's x * x.detach()."""
    np = pytest.importorskip("numpy")
    x = Value(3.0)
    y = x * stop_gradient(x)
    y.backward()
    assert (y.data, x.grad) == (9.0, 3.0)
    w = Value(1.5)
    step = trace(lambda v: w * v * stop_gradient(w * v), 0.0)
    assert step.forward(np.array([2.0, -1.0])).tolist() == [9.0, 2.25]
    step.backward()
    assert w.grad == 3.0 * 2.0 + 1.5 * 1.0  # Σ_p (w·v_p)·v_p, the constant factor times ∂(w·v)/∂w
    assert ops.STOP_GRADIENT.explain().splitlines()[1] == "  ∂(sg(x))/∂x = 0 (no gradient flows back)"


def test_functional_embedding_checks_an_int_index_and_picks_rows_of_values_by_select() -> None:
    table = [[Value(1.0), Value(2.0)], [Value(3.0), Value(4.0)]]
    assert nn.functional.embedding(1, table) == table[1]
    assert [v.data for v in nn.functional.embedding(Value(1.0), table)] == [3.0, 4.0]
    with pytest.raises(InvalidArgumentError, match="embedding: index 2 is not a row of a table of 2"):
        nn.functional.embedding(2, table)
    with pytest.raises(InvalidTypeError, match="embedding: index must be an int or a Value, got float 1.0"):
        nn.functional.embedding(1.0, table)
