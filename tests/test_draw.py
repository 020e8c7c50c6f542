"""`autograd.draw_graph`: the DOT source (labels, op symbols from the rule table,
kinds, colours, clusters, size limit) and, with Graphviz's `dot`, real SVG renders.

Expected gradients are derived by hand in docstrings; expected colour levels
follow the documented rule of `GradScale` (level 5 = the decade just below
10^ceil(log10 max|grad|), one level lighter per decade).
"""

from __future__ import annotations

import random
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_module

from autograd import AutogradError, Value, ops, sum_values, topological_order
from autograd.draw import (
    INSTALL_DOT,
    NEGATIVE_COLORS,
    NONFINITE_COLOR,
    POSITIVE_COLORS,
    ZERO_COLOR,
    GraphvizNotFoundError,
    digraph_class,
    draw_graph,
    neuron_groups,
)
from autograd.errors import InvalidArgumentError, InvalidTypeError
from autograd.value import apply

graphviz = require_module("graphviz", extra="viz")

ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')
NODE_LINE = re.compile(r"^\s*(\"[^\"]*\"|[\w.]+) \[(.*)\]$")
EDGE_LINE = re.compile(r"^\s*(\"[^\"]*\"|[\w.]+) -> (\"[^\"]*\"|[\w.]+)")


def _unquote(token: str) -> str:
    if token.startswith('"') and token.endswith('"'):
        return token[1:-1].replace('\\"', '"')
    return token


def parse_dot(source: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], dict[str, str | None]]:
    """Nodes (name -> attributes), edges, and the innermost cluster around each node and subgraph."""
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str]] = []
    cluster_of: dict[str, str | None] = {}
    stack: list[str] = []
    for line in source.splitlines():
        subgraph = re.match(r"^\s*subgraph (\"[^\"]*\"|\S+) \{", line)
        if subgraph:
            name = _unquote(subgraph.group(1))
            cluster_of[name] = stack[-1] if stack else None
            stack.append(name)
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        edge = EDGE_LINE.match(line)
        if edge:
            edges.append((_unquote(edge.group(1)), _unquote(edge.group(2))))
            continue
        node = NODE_LINE.match(line)
        if node and node.group(1) not in ("graph", "node", "edge"):
            name = _unquote(node.group(1))
            nodes[name] = {key: _unquote(value) for key, value in ATTRIBUTE.findall(node.group(2))}
            cluster_of[name] = stack[-1] if stack else None
    return nodes, edges, cluster_of


def node_labelled(nodes: dict[str, dict[str, str]], text: str) -> dict[str, str]:
    """The one node whose label contains ``text``."""
    found = [attrs for attrs in nodes.values() if text in attrs.get("label", "")]
    assert len(found) == 1, f"{len(found)} nodes labelled with {text!r}"
    return found[0]


def karpathy_example() -> Value:
    """L = (a·b + c)·f with a=2, b=-3, c=10 (a constant), f=-2.

    By hand: e = a·b = -6, d = e + c = 4, L = d·f = -8;
    dL/df = d = 4, dL/dd = f = -2, dL/de = dL/dc = -2, dL/da = -2·b = 6, dL/db = -2·a = -4.
    """
    a, b, f = Value(2.0, label="a"), Value(-3.0, label="b"), Value(-2.0, label="f")
    c = Value(10.0, label="c", requires_grad=False)
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    loss = d * f
    loss.label = "L"
    loss.backward()
    return loss


def tiny_mlp(sizes: list[int], seed: int = 0) -> list[list[tuple[list[Value], Value]]]:
    """Parameters of an MLP labelled as `nn` labels them (L1-based, N0-based, w1-based)."""
    rng = random.Random(seed)
    return [
        [
            (
                [Value(rng.uniform(-1, 1), label=f"L{i}.N{j}.w{k + 1}") for k in range(nin)],
                Value(0.1, label=f"L{i}.N{j}.b"),
            )
            for j in range(nout)
        ]
        for i, (nin, nout) in enumerate(zip(sizes, sizes[1:]), start=1)
    ]


def mlp_forward(layers: list[list[tuple[list[Value], Value]]], x: list[Value]) -> list[Value]:
    for layer in layers:
        x = [sum_values([w * xi for w, xi in zip(ws, x)] + [b]).sigmoid() for ws, b in layer]
    return x


def mlp_loss() -> tuple[Value, list[Value]]:
    """(ŷ - 0.6)² for a 2-2-1 sigmoid MLP on x = (0.5, 0.1); also returns the inputs."""
    x = [Value(0.5, label="x1", requires_grad=False), Value(0.1, label="x2", requires_grad=False)]
    (y,) = mlp_forward(tiny_mlp([2, 2, 1]), x)
    loss = (y - 0.6) ** 2
    loss.backward()
    return loss, x


# -- records, symbols, kinds -----------------------------------------------------


def test_value_records_show_label_data_and_grad() -> None:
    nodes, _, _ = parse_dot(draw_graph(karpathy_example()).source)
    assert node_labelled(nodes, "a |")["label"] == "{ a | data 2 | grad 6 }"
    assert node_labelled(nodes, "b |")["label"] == "{ b | data -3 | grad -4 }"
    assert node_labelled(nodes, "c |")["label"] == "{ c | data 10 | grad -2 }"
    assert node_labelled(nodes, "L |")["label"] == "{ L | data -8 | grad 1 }"


def test_four_significant_digits_by_default_and_precision_option() -> None:
    third = Value(1.0, label="t") / 3.0
    third.backward()  # d(t/3)/d(t/3) = 1; the value is 0.333…
    default, _, _ = parse_dot(draw_graph(third).source)
    short, _, _ = parse_dot(draw_graph(third, precision=2).source)
    assert "{ data 0.3333 | grad 1 }" in [n["label"] for n in default.values()]
    assert "{ data 0.33 | grad 1 }" in [n["label"] for n in short.values()]


def test_unlabelled_values_show_data_and_grad_only() -> None:
    nodes, _, _ = parse_dot(draw_graph(Value(1.5) * 2).source)
    labels = sorted(n["label"] for n in nodes.values() if n.get("shape") != "circle")
    assert labels == ["{ data 1.5 | grad 0 }", "{ data 2 | grad 0 }", "{ data 3 | grad 0 }"]


OP_RULES = [*ops.BINARY_RULES, *ops.UNARY_RULES, ops.power(2.0), ops.power(-0.5), ops.leaky_relu(0.1)]


@pytest.mark.parametrize("rule", OP_RULES, ids=lambda r: r.name)
def test_op_node_is_a_circle_with_the_symbol_from_the_rule_table(rule: ops.Rule) -> None:
    inputs = tuple(Value(x) for x in (0.5, 0.7)[: rule.arity])
    nodes, edges, _ = parse_dot(draw_graph(apply(rule, inputs)).source)
    (op_name,) = [name for name, attrs in nodes.items() if attrs.get("shape") == "circle"]
    assert nodes[op_name]["label"] == rule.symbol
    assert sum(1 for _, target in edges if target == op_name) == rule.arity
    assert sum(1 for source, _ in edges if source == op_name) == 1


def test_sum_node_uses_sigma_and_has_one_edge_per_input() -> None:
    total = sum_values([Value(1.0), Value(2.0), Value(3.0), Value(4.0)])
    nodes, edges, _ = parse_dot(draw_graph(total).source)
    (op_name,) = [name for name, attrs in nodes.items() if attrs.get("shape") == "circle"]
    assert nodes[op_name]["label"] == "Σ"
    assert sum(1 for _, target in edges if target == op_name) == 4


def test_same_parent_twice_gives_two_edges() -> None:
    x = Value(3.0, label="x")
    nodes, edges, _ = parse_dot(draw_graph(x * x).source)
    x_name = next(name for name, attrs in nodes.items() if attrs["label"].startswith("{ x |"))
    assert sum(1 for source, _ in edges if source == x_name) == 2


def test_parameters_constants_and_results_look_different() -> None:
    nodes, _, _ = parse_dot(draw_graph(karpathy_example()).source)
    parameter, constant, result = node_labelled(nodes, "a |"), node_labelled(nodes, "c |"), node_labelled(nodes, "e |")
    assert parameter["shape"] == "Mrecord" and parameter["penwidth"] == "2"
    assert constant["shape"] == "record" and "dashed" in constant["style"]
    assert result["shape"] == "record" and "dashed" not in result["style"] and "penwidth" not in result
    assert len({parameter["fillcolor"], constant["fillcolor"], result["fillcolor"]}) == 3


def test_rankdir_left_to_right_by_default_and_top_to_bottom_on_request() -> None:
    loss = karpathy_example()
    assert "rankdir=LR" in draw_graph(loss).source
    top_down = draw_graph(loss, rankdir="TB")
    assert "rankdir=TB" in top_down.source
    # Records lay their fields side by side in both directions: braces only in LR.
    assert node_labelled(parse_dot(top_down.source)[0], "a |")["label"] == "a | data 2 | grad 6"


def test_record_special_characters_in_labels_are_escaped() -> None:
    nodes, _, _ = parse_dot(draw_graph(Value(1.0, label="a|b{c}<d>")).source)
    (attrs,) = nodes.values()
    assert attrs["label"] == r"{ a\|b\{c\}\<d\> | data 1 | grad 0 }"


def test_grad_that_is_a_value_is_shown_by_its_data() -> None:
    x = Value(2.0, label="x")
    x.grad = Value(0.25)
    nodes, _, _ = parse_dot(draw_graph(x).source)
    assert node_labelled(nodes, "x |")["label"] == "{ x | data 2 | grad 0.25 }"


# -- colours by gradient -----------------------------------------------------------


def test_color_by_grad_sign_and_decade() -> None:
    """L = a·b, a = 10, b = -0.02: dL/da = b = -0.02, dL/db = a = 10, dL/dL = 1.

    max |grad| = 10, top = ceil(log10 10) = 1: |10| is in (1, 10] -> level 5,
    |1| in (0.1, 1] -> level 4, |-0.02| in (0.01, 0.1] -> level 3 (blue).
    """
    a, b = Value(10.0, label="a"), Value(-0.02, label="b")
    loss = a * b
    loss.label = "L"
    loss.backward()
    nodes, _, _ = parse_dot(draw_graph(loss, color_by="grad").source)
    assert node_labelled(nodes, "b |")["fillcolor"] == POSITIVE_COLORS[4]
    assert node_labelled(nodes, "L |")["fillcolor"] == POSITIVE_COLORS[3]
    assert node_labelled(nodes, "a |")["fillcolor"] == NEGATIVE_COLORS[2]
    assert node_labelled(nodes, "b |")["fontcolor"] == "#ffffff"  # dark fill, light text
    assert node_labelled(nodes, "a |")["fontcolor"] == "#000000"


def test_vanishing_gradients_fade_to_the_lightest_level_and_zero_is_neutral() -> None:
    """y = 1e-9·u + 0·v + w: dy/du = 1e-9 (nine decades below dy/dw = 1), dy/dv = 0."""
    u, v, w = Value(1.0, label="u"), Value(1.0, label="v"), Value(1.0, label="w")
    y = sum_values([u * 1e-9, v * 0.0, w])
    y.backward()
    nodes, _, _ = parse_dot(draw_graph(y, color_by="grad").source)
    assert node_labelled(nodes, "u |")["fillcolor"] == POSITIVE_COLORS[0]
    assert node_labelled(nodes, "v |")["fillcolor"] == ZERO_COLOR
    assert node_labelled(nodes, "w |")["fillcolor"] == POSITIVE_COLORS[4]


def test_non_finite_gradient_has_its_own_colour() -> None:
    x = Value(1.0, label="x")
    x.grad = float("nan")
    nodes, _, _ = parse_dot(draw_graph(x, color_by="grad").source)
    assert node_labelled(nodes, "x |")["fillcolor"] == NONFINITE_COLOR


def test_legend_explains_colours_with_the_graphs_decades() -> None:
    """max |grad| = 6 in the example: top = 1, so the darkest level is 1 < |grad| ≤ 10."""
    source = draw_graph(karpathy_example(), color_by="grad").source
    assert "subgraph cluster_legend" in source
    for text in ("1 &lt; |grad| ≤ 10", "0 &lt; |grad| ≤ 0.001", "grad = 0", "nan or inf", "parameter", "constant"):
        assert text in source
    for color in POSITIVE_COLORS + NEGATIVE_COLORS:
        assert f'BGCOLOR="{color}"' in source


def test_no_legend_without_color_by() -> None:
    assert "legend" not in draw_graph(karpathy_example()).source


# -- neurons and layers --------------------------------------------------------------


def test_neuron_groups_follow_the_documented_rules() -> None:
    loss, _ = mlp_loss()
    order = topological_order(loss)
    groups = neuron_groups(order)
    by_label = {node.label: groups.get(id(node)) for node in order if node.label}
    assert by_label["L1.N0.w1"] == "L1.N0" and by_label["L1.N1.b"] == "L1.N1" and by_label["L2.N0.w2"] == "L2.N0"
    assert by_label["x1"] is None and by_label["x2"] is None
    sigmoid_nodes = [node for node in order if node.op == "sigmoid"]
    assert sorted(groups[id(node)] for node in sigmoid_nodes) == ["L1.N0", "L1.N1", "L2.N0"]
    # The products w·x of the second layer use the first layer's outputs: still layer 2.
    second_layer_products = [node for node in order if node.op == "mul" and groups.get(id(node)) == "L2.N0"]
    assert len(second_layer_products) == 2
    # The loss mixes the output with the target: not part of any neuron.
    assert groups.get(id(loss)) is None and groups.get(id(loss.parents[0])) is None


def test_activation_of_a_neuron_without_bias_written_with_binary_additions() -> None:
    """y = tanh(w1·x1 + w2·x2 + w3·x3): every node but the inputs is neuron L1.N0; y² is not."""
    ws = [Value(0.1 * k, label=f"L1.N0.w{k}") for k in (1, 2, 3)]
    xs = [Value(1.0, requires_grad=False) for _ in ws]
    y = (ws[0] * xs[0] + ws[1] * xs[1] + ws[2] * xs[2]).tanh()
    square = y * y
    groups = neuron_groups(topological_order(square))
    assert groups.get(id(y)) == "L1.N0"
    assert groups.get(id(square)) is None


def test_linear_output_neuron_keeps_the_loss_outside() -> None:
    """No activation: the loss's (z - y) mixes z with the target, so it stays ungrouped."""
    w, b = Value(0.5, label="L1.N0.w1"), Value(0.1, label="L1.N0.b")
    z = sum_values([w * 2.0, b])
    loss = (z - 1.0) ** 2
    groups = neuron_groups(topological_order(loss))
    assert groups[id(z)] == "L1.N0"
    assert groups.get(id(loss.parents[0])) is None


def test_weight_decay_terms_stay_in_their_neurons_and_their_sum_outside() -> None:
    """λ·Σ w²: each w² uses one neuron's parameter directly (rule 2); the Σ mixes neurons."""
    w1, w2 = Value(0.5, label="L1.N0.w1"), Value(0.3, label="L1.N1.w1")
    squares = [w1**2, w2**2]
    penalty = sum_values(squares) * 0.01
    groups = neuron_groups(topological_order(penalty))
    assert [groups.get(id(s)) for s in squares] == ["L1.N0", "L1.N1"]
    assert groups.get(id(penalty.parents[0])) is None and groups.get(id(penalty)) is None


def test_swish_activation_joins_its_neuron() -> None:
    """z·σ(z): both inputs belong to the neuron, z to its linear part (rule 3)."""
    z = sum_values([Value(0.5, label="L1.N0.w1") * 2.0, Value(0.1, label="L1.N0.b")])
    out = z * z.sigmoid()
    scaled = out * 3.0
    groups = neuron_groups(topological_order(scaled))
    assert groups[id(out)] == "L1.N0" and groups.get(id(scaled)) is None


def test_cluster_true_nests_neurons_in_layers() -> None:
    loss, _ = mlp_loss()
    source = draw_graph(loss, cluster=True).source
    nodes, _, cluster_of = parse_dot(source)
    assert re.search(r'subgraph cluster_L1 \{\n\s*graph \[[^\]]*label=L1', source)
    assert re.search(r'subgraph "cluster_L1.N0" \{\n\s*graph \[[^\]]*label="L1.N0"', source)
    assert cluster_of["cluster_L1.N0"] == cluster_of["cluster_L1.N1"] == "cluster_L1"
    assert cluster_of["cluster_L2.N0"] == "cluster_L2"
    assert cluster_of["cluster_L1"] is None and cluster_of["cluster_L2"] is None
    w = next(name for name, attrs in nodes.items() if "L2.N0.w1" in attrs.get("label", ""))
    assert cluster_of[w] == "cluster_L2.N0"
    sigmoid_ops = [name for name, attrs in nodes.items() if attrs.get("label") == "σ"]
    assert sorted(cluster_of[name] for name in sigmoid_ops) == ["cluster_L1.N0", "cluster_L1.N1", "cluster_L2.N0"]
    loss_node = next(name for name, attrs in nodes.items() if "grad 1 }" in attrs.get("label", ""))
    x1 = next(name for name, attrs in nodes.items() if "x1 |" in attrs.get("label", ""))
    assert cluster_of[loss_node] is None and cluster_of[x1] is None


def test_cluster_false_draws_no_clusters() -> None:
    loss, _ = mlp_loss()
    assert "subgraph" not in draw_graph(loss).source


def test_collapse_draws_one_box_per_neuron() -> None:
    loss, _ = mlp_loss()
    nodes, edges, cluster_of = parse_dot(draw_graph(loss, cluster="collapse").source)
    boxes = {name: attrs for name, attrs in nodes.items() if name.startswith("neuron ")}
    assert sorted(boxes) == ["neuron L1.N0", "neuron L1.N1", "neuron L2.N0"]
    assert cluster_of["neuron L1.N0"] == "cluster_L1" and cluster_of["neuron L2.N0"] == "cluster_L2"
    assert not any("L1.N0.w1" in attrs.get("label", "") for attrs in nodes.values())
    assert ("neuron L1.N0", "neuron L2.N0") in edges and ("neuron L1.N1", "neuron L2.N0") in edges
    x1 = next(name for name, attrs in nodes.items() if "x1 |" in attrs.get("label", ""))
    assert (x1, "neuron L1.N0") in edges and (x1, "neuron L1.N1") in edges
    assert "3 parameters" in boxes["neuron L2.N0"]["label"]
    output = loss.parents[0].parents[0]  # ŷ, the output neuron's sigmoid
    assert f"out {output.data:.4g}" in boxes["neuron L2.N0"]["label"]
    # Ungrouped: x1, x2, the target 0.6, and (ŷ - 0.6) and its square with their ops = 7 nodes, plus 3 boxes.
    assert len(nodes) == 10


# -- size limit ------------------------------------------------------------------------


def test_max_nodes_counts_values_and_operations() -> None:
    """a·b draws 4 nodes: a, b, the product and its '*' circle."""
    y = Value(1.0) * Value(2.0)
    draw_graph(y, max_nodes=4)
    with pytest.raises(InvalidArgumentError, match=r"max_nodes=.*cluster='collapse'"):
        draw_graph(y, max_nodes=3)


def test_collapse_is_held_to_max_nodes_too() -> None:
    """The collapsed 2-2-1 graph has 10 nodes (see test_collapse_draws_one_box_per_neuron)."""
    loss, _ = mlp_loss()
    draw_graph(loss, cluster="collapse", max_nodes=10)
    with pytest.raises(InvalidArgumentError, match="max_nodes=") as caught:
        draw_graph(loss, cluster="collapse", max_nodes=9)
    assert "cluster='collapse'" not in str(caught.value)


def test_deep_chain_is_drawn_without_recursion() -> None:
    x = Value(0.5, label="x")
    for _ in range(3000):
        x = -x
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        graph = draw_graph(x, max_nodes=10_000)
    finally:
        sys.setrecursionlimit(limit)
    assert len(parse_dot(graph.source)[0]) == 3001 + 3000


@pytest.mark.slow
def test_chain_of_a_million_fails_fast_with_the_max_nodes_error() -> None:
    x = Value(0.5)
    for _ in range(1_000_000):
        x = -x
    with pytest.raises(InvalidArgumentError, match="more than 500 nodes"):
        draw_graph(x)


@pytest.mark.parametrize(
    "options",
    [{"rankdir": "RL"}, {"precision": 0}, {"precision": 2.5}, {"color_by": "data"}, {"cluster": "yes"},
     {"cluster": 1}, {"max_nodes": 0}, {"max_nodes": True}],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(options))):
        draw_graph(Value(1.0), **options)  # type: ignore[arg-type]


def test_root_must_be_a_value() -> None:
    with pytest.raises(InvalidTypeError, match="float"):
        draw_graph(1.0)  # type: ignore[arg-type]


# -- optional dependencies ---------------------------------------------------------------


def test_missing_graphviz_package_names_the_viz_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    digraph_class.cache_clear()
    monkeypatch.setitem(sys.modules, "graphviz", None)
    try:
        with pytest.raises(ImportError, match=r"textbook-autograd\[viz\]"):
            draw_graph(Value(1.0))
    finally:
        digraph_class.cache_clear()


def test_missing_dot_program_explains_how_to_install_graphviz(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` in an empty folder
    graph = draw_graph(karpathy_example())
    assert "data -8" in graph.source  # the DOT source needs no `dot`
    with pytest.raises(graphviz.ExecutableNotFound, match="apt-get install graphviz") as caught:
        graph.render(tmp_path / "loss", format="svg")
    assert isinstance(caught.value, AutogradError)
    with pytest.raises(GraphvizNotFoundError, match="brew install graphviz"):
        graph.pipe(format="svg")
    bundle = graph._repr_mimebundle_()
    assert bundle["text/plain"].startswith(INSTALL_DOT) and "data -8" in bundle["text/plain"]


# -- real renders --------------------------------------------------------------------------


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [(element.text or "").strip() for element in root.iter("{http://www.w3.org/2000/svg}text")]


def test_svg_render_shows_labels_values_and_symbols(dot_program: str, tmp_path: Path) -> None:
    out = draw_graph(karpathy_example()).render(tmp_path / "loss", format="svg")
    texts = svg_texts(Path(out))
    for expected in ("a", "data 2", "grad 6", "b", "grad -4", "c", "data 10", "L", "data -8", "grad 1", "*", "+"):
        assert expected in texts, expected


def test_svg_render_of_clusters_collapse_and_legend(dot_program: str, tmp_path: Path) -> None:
    loss, _ = mlp_loss()
    clustered = svg_texts(Path(draw_graph(loss, cluster=True, color_by="grad").render(tmp_path / "c", format="svg")))
    for expected in ("L1", "L2", "L1.N0", "L1.N1", "L2.N0", "L2.N0.w1", "σ", "Σ", "legend", "nan or inf"):
        assert expected in clustered, expected
    collapsed = svg_texts(Path(draw_graph(loss, cluster="collapse").render(tmp_path / "k", format="svg")))
    assert "L2.N0" in collapsed and "3 parameters" in collapsed and "L2.N0.w1" not in collapsed


def test_svg_render_keeps_escaped_characters(dot_program: str, tmp_path: Path) -> None:
    texts = svg_texts(Path(draw_graph(Value(1.0, label="a|b{c}")).render(tmp_path / "e", format="svg")))
    assert "a|b{c}" in texts


def test_jupyter_display_is_svg(dot_program: str) -> None:
    bundle = draw_graph(karpathy_example())._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
