"""`autograd.walkthrough`: the backward pass as a list of steps (plain data).

Expected numbers come from a derivation by hand (in the docstrings), from
PyTorch in float64, and from the engine's own `.grad`, which the walkthrough
must reproduce bit for bit (the brief: ``w.gradients`` equals ``.grad``).
"""

from __future__ import annotations

import math
import random
import time

import pytest

from autograd import Value, sum_values, topological_order, walkthrough
from autograd.errors import AutogradError, InvalidTypeError
from autograd.ops import BINARY_RULES, SUM, UNARY_RULES
from tests.op_cases import CASES, expand


def engine_gradients(output: Value) -> dict[Value, float]:
    """``.grad`` of every node that needs one, after ``output.backward()`` from zeroed gradients."""
    nodes = topological_order(output)
    for node in nodes:
        node.grad = 0.0
    output.backward()
    return {node: node.grad for node in nodes if node.requires_grad}


def test_hand_derived_example_with_fan_out():
    """a = 2, b = -3; c = a·b = -6; d = c + a = -4; out = d·d = 16.

    The engine's order from the output back is out, d, c (a chain).
    - out = d·d: upstream 1; d is both inputs: local b = d = -4 and a = d = -4,
      contributions -4 and -4, so d's running total is -4, then -8.
    - d = c + a: upstream -8; local 1 each: c gets -8; a gets -8 (a's total -8).
    - c = a·b: upstream -8; a: local b = -3, contribution 24, a's total -8 + 24 = 16;
      b: local a = 2, contribution -16, b's total -16.
    Check: out = (ab + a)², ∂out/∂a = 2(ab + a)(b + 1) = 2·(-4)·(-2) = 16,
    ∂out/∂b = 2(ab + a)·a = 2·(-4)·2 = -16.
    """
    w = walkthrough(hand_example())
    assert [s.name for s in w.steps] == ["out", "d", "c"]
    assert [s.upstream for s in w.steps] == [1.0, -8.0, -8.0]
    assert [s.equation for s in w.steps] == ["out = d·d", "d = c + a", "c = a·b"]
    rows = [(c.parent_name, c.formula, c.local, c.contribution, c.total) for s in w.steps for c in s.parents]
    assert rows == [
        ("d", "∂(a·b)/∂a = b", -4.0, -4.0, -4.0),
        ("d", "∂(a·b)/∂b = a", -4.0, -4.0, -8.0),
        ("c", "∂(a + b)/∂a = 1", 1.0, -8.0, -8.0),
        ("a", "∂(a + b)/∂b = 1", 1.0, -8.0, -8.0),
        ("a", "∂(a·b)/∂a = b", -3.0, 24.0, 16.0),
        ("b", "∂(a·b)/∂b = a", 2.0, -16.0, -16.0),
    ]
    by_label = {node.label: g for node, g in w.gradients.items()}
    assert by_label == {"out": 1.0, "d": -8.0, "c": -8.0, "a": 16.0, "b": -16.0}


def test_walkthrough_touches_no_grad():
    x = Value(0.5, label="x")
    y = (x * x).tanh() + x
    x.grad, y.grad = 7.0, -3.0  # whatever they hold stays
    walkthrough(y)
    assert (x.grad, y.grad) == (7.0, -3.0)
    assert all(node.grad == 0.0 for node in topological_order(y) if node not in (x, y))


def test_steps_follow_the_engines_backward_order():
    xs = [Value(0.1 * k, label=f"x{k}") for k in range(5)]
    h = [(xs[i] * xs[(i + 1) % 5]).sigmoid() for i in range(5)]
    out = sum_values(h) * h[0]
    w = walkthrough(out)
    assert [s.node for s in w.steps] == list(reversed(topological_order(out, leaves=False)))


def test_each_steps_upstream_is_the_engines_gradient_of_that_node():
    x, y = Value(0.3, label="x"), Value(-1.2, label="y")
    out = ((x * y).exp() + x / (y * y + 1)).log()
    w = walkthrough(out)
    expected = engine_gradients(out)
    for step in w.steps:
        assert step.upstream == expected[step.node]


# -- random graphs: every gradient equals the engine's, and PyTorch's ------------------

# (name, arity, engine function, torch function); inputs stay bounded (tanh, sigmoid).
RANDOM_OPS = [
    ("add", 2, lambda a, b: a + b, lambda t, a, b: a + b),
    ("sub", 2, lambda a, b: a - b, lambda t, a, b: a - b),
    ("mul", 2, lambda a, b: a * b, lambda t, a, b: a * b),
    ("square", 1, lambda a: a * a, lambda t, a: a * a),
    ("tanh", 1, lambda a: a.tanh(), lambda t, a: t.tanh(a)),
    ("sigmoid", 1, lambda a: a.sigmoid(), lambda t, a: t.sigmoid(a)),
    ("times 0.5 (a constant)", 1, lambda a: a * 0.5, lambda t, a: a * 0.5),
    ("div", 2, lambda a, b: a / (b * b + 1), lambda t, a, b: a / (b * b + 1)),
    ("sum of many", 3, lambda a, b, c: sum_values([a, b, c, a]), lambda t, a, b, c: a + b + c + a),
]


def random_graph(seed: int, torch=None):
    """A random expression DAG in which nodes are reused (fan-out), built twice:
    on Values and (when ``torch`` is given) on float64 tensors."""
    rng = random.Random(seed)
    leaves = [rng.uniform(-1.5, 1.5) for _ in range(rng.randint(2, 5))]
    values = [Value(x, label=f"x{k}") for k, x in enumerate(leaves)]
    tensors = [torch.tensor(x, requires_grad=True) for x in leaves] if torch else []
    for _ in range(rng.randint(5, 25)):
        _, arity, engine, reference = rng.choice(RANDOM_OPS)
        picks = [rng.randrange(len(values)) for _ in range(arity)]
        values.append(engine(*[values[i] for i in picks]))
        if torch:
            tensors.append(reference(torch, *[tensors[i] for i in picks]))
    # The output uses the last few nodes, so that most of the graph matters.
    out = sum_values(values[-3:])
    ref = sum(tensors[-3:]) if torch else None
    return values[: len(leaves)], out, tensors[: len(leaves)], ref


@pytest.mark.parametrize("seed", range(30))
def test_gradients_equal_the_engines_bit_for_bit_on_random_graphs(seed):
    _, out, _, _ = random_graph(seed)
    w = walkthrough(out)
    assert w.gradients == engine_gradients(out)


@pytest.mark.parametrize("seed", range(10))
def test_gradients_of_random_graphs_match_pytorch(seed, torch):
    leaves, out, tensors, ref = random_graph(seed, torch)
    w = walkthrough(out)
    ref.backward()
    for leaf, tensor in zip(leaves, tensors):
        expected = tensor.grad.item() if tensor.grad is not None else 0.0
        assert w.gradients.get(leaf, 0.0) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_a_square_shows_the_running_sum_of_its_two_uses():
    """y = x·x at x = 3: the mul rule sends b = 3 and a = 3; the totals are 3, then 6 = 2x."""
    x = Value(3.0, label="x")
    (step,) = walkthrough(x * x).steps
    assert [(c.parent_name, c.contribution, c.total) for c in step.parents] == [("x", 3.0, 3.0), ("x", 3.0, 6.0)]


def test_a_sum_of_many_sends_one_contribution_to_each_term():
    """s = Σ_k x_k with x_0 appearing twice: ∂s/∂x_k = 1, and 2 for x_0."""
    xs = [Value(float(k), label=f"x{k}") for k in range(50)]
    s = sum_values([*xs, xs[0]])
    w = walkthrough(s)
    (step,) = w.steps
    assert len(step.parents) == 51
    assert all(c.local == 1.0 and c.formula == "∂(x₁ + x₂ + …)/∂xᵢ = 1" for c in step.parents)
    assert [c.total for c in step.parents if c.parent is xs[0]] == [1.0, 2.0]
    assert w.gradients[xs[0]] == 2.0 and all(w.gradients[x] == 1.0 for x in xs[1:])


def test_constants_get_no_contribution_and_no_gradient():
    """y = 3·x + 1 at x = 2: x receives the local derivative 3; the numbers 3 and 1 receive nothing."""
    x = Value(2.0, label="x")
    y = 3 * x + 1
    w = walkthrough(y)
    received = [c.parent for s in w.steps for c in s.parents]
    assert all(node.requires_grad for node in received)
    assert set(w.gradients) == {y, y.parents[0], x}
    assert w.gradients[x] == 3.0
    assert "constant, needs no gradient" in w.steps[0].describe("y")


# -- every rule of the table --------------------------------------------------------


def test_the_cases_below_cover_every_rule_of_the_table():
    covered = {case.rule for case in CASES}
    assert {rule.name for rule in (*BINARY_RULES, *UNARY_RULES, SUM)} <= covered | {"pow"}


@pytest.mark.parametrize(("case", "point"), expand(), ids=lambda p: getattr(p, "id", str(p)))
def test_every_rule_walks_through_to_the_engines_and_pytorchs_gradient(case, point, torch):
    inputs = [Value(x, label=f"x{k}") for k, x in enumerate(point)]
    out = case.engine(*inputs)
    w = walkthrough(out)
    for step in w.steps:
        for c in step.parents:
            # The formula is the rule table's text for that input, nowhere else.
            assert c.formula == step.node.rule.local_derivative(c.index)
    assert w.gradients == engine_gradients(out)
    tensors = [torch.tensor(x, requires_grad=True) for x in point]
    case.reference(torch, *tensors).backward()
    for value, tensor in zip(inputs, tensors):
        assert w.gradients[value] == pytest.approx(tensor.grad.item(), rel=1e-12, abs=1e-14)


def test_a_derivative_outside_its_domain_raises_the_engines_error():
    """√x at x = 0 has the value 0 but no derivative (1/(2√x) is a pole)."""
    root = Value(0.0, label="x").sqrt()
    with pytest.raises(AutogradError) as walked:
        walkthrough(root)
    with pytest.raises(AutogradError) as engine:
        root.backward()
    assert type(walked.value) is type(engine.value) and str(walked.value) == str(engine.value)
    assert "sqrt" in str(walked.value)


def test_the_output_must_be_a_value():
    with pytest.raises(InvalidTypeError, match="walkthrough: output must be a Value, got float"):
        walkthrough(3.0)  # type: ignore[arg-type]


def test_a_leaf_output_has_no_steps_and_gradient_one():
    x = Value(2.0, label="x")
    w = walkthrough(x)
    assert w.steps == [] and w.gradients == {x: 1.0}


def test_unlabelled_nodes_get_short_names_and_constants_their_number():
    x = Value(2.0)
    y = (x * 0.5).tanh()
    w = walkthrough(y)
    assert w.names[x] == "v1" and w.names[y.parents[0].parents[1]] == "0.5"
    assert {w.names[y], w.names[y.parents[0]]} == {"v2", "v3"}
    assert w.steps[0].equation == f"{w.names[y]} = tanh({w.names[y.parents[0]]})"


def test_text_of_a_step_shows_formula_numbers_and_running_total():
    """h = σ(net) at net = 0: σ = 1/2, σ' = σ(1 − σ) = 1/4, so upstream 1 gives 0.25."""
    net = Value(0.0, label="net")
    h = net.sigmoid()
    h.label = "h"
    text = str(walkthrough(h))
    assert "Start: ∂h/∂h = 1" in text
    assert "h = σ(net):  upstream ∂h/∂h = 1" in text
    assert "→ net:  local ∂(σ(x))/∂x = σ(x)·(1 - σ(x)) = 0.25;  contribution 1 × 0.25 = 0.25" in text


def hand_example():
    """a = 2, b = -3; c = a·b = -6; d = c + a = -4; out = d·d = 16.

    Steps: out (d gets -4, then -8), d (c gets -8, a gets -8), c (a gets -8 × -3 = 24,
    total 16; b gets -8 × 2 = -16). So after step 2, a's gradient -8 is not final
    ("so far"); after step 3 it is 16.
    """
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = c + a
    d.label = "d"
    out = d * d
    out.label = "out"
    return out


def two_two_one_network():
    """A 2-2-1 sigmoid network and its squared error on one sample, built by hand with textbook names."""
    x = [Value(0.05, label="x₁", requires_grad=False), Value(0.10, label="x₂", requires_grad=False)]
    weights = [[0.15, 0.20, 0.35], [0.25, 0.30, 0.35]]
    hidden = []
    for j, (w1, w2, b) in enumerate(weights, 1):
        w = [Value(w1, label=f"w{j}1"), Value(w2, label=f"w{j}2")]
        net = sum_values([w[0] * x[0], w[1] * x[1], Value(b, label=f"b{j}")])
        net.label = f"net{j}"
        h = net.sigmoid()
        h.label = f"h{j}"
        hidden.append(h)
    v = [Value(0.40, label="v1"), Value(0.45, label="v2")]
    net = sum_values([v[0] * hidden[0], v[1] * hidden[1], Value(0.60, label="b3")])
    net.label = "net3"
    y = net.sigmoid()
    y.label = "ŷ"
    error = (y - Value(0.01, label="t", requires_grad=False)) ** 2
    error.label = "E"
    return error


def test_a_small_network_walks_through_in_well_under_a_second():
    error = two_two_one_network()
    started = time.perf_counter()
    w = walkthrough(error)
    assert time.perf_counter() - started < 0.5
    assert len(w.steps) == 14  # per neuron 2 products, 1 sum, 1 σ (3 neurons); then ŷ - t and its square
    assert w.gradients == engine_gradients(error)


def test_the_delta_of_the_output_neuron_is_its_upstream():
    """E = (ŷ − t)², ŷ = σ(net3): δ₃ = ∂E/∂net3 = 2(ŷ − t)·ŷ(1 − ŷ), by hand from the forward numbers."""
    error = two_two_one_network()
    w = walkthrough(error)
    y = next(s.node for s in w.steps if s.name == "ŷ")
    delta = 2 * (y.data - 0.01) * y.data * (1 - y.data)
    net3 = next(s for s in w.steps if s.name == "net3")
    assert net3.upstream == pytest.approx(delta, rel=1e-14)
    assert math.isfinite(net3.upstream)
