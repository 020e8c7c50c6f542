"""`autograd.draw_graph`: the DOT source (labels, op symbols from the rule table,
kinds, colours, clusters, size limit, escaping) and, with Graphviz's `dot`, real
renders (width of a 2-2-1 network, order of the layers).

Expected gradients are derived by hand in docstrings; expected colours follow
the documented rule of `GradScale` (decade k holds 10^(k-1) < |grad| <= 10^k;
one shade per decade from the graph's smallest to its largest nonzero |grad|).
"""

from __future__ import annotations

import math
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
    GradScale,
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
EDGE_LINE = re.compile(r"^\s*(\"[^\"]*\"|[\w.]+) -> (\"[^\"]*\"|[\w.]+)(?: \[(.*)\])?$")


def _unquote(token: str) -> str:
    if token.startswith('"') and token.endswith('"'):
        return token[1:-1].replace('\\"', '"')
    return token


def parse_dot(source: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], dict[str, str | None]]:
    """Nodes (name -> attributes), edges, and the label of the innermost cluster around each
    node and cluster (None: not in a cluster; clusters are keyed by their label)."""
    nodes, edges, cluster_of, _ = parse_dot_with_edge_labels(source)
    return nodes, edges, cluster_of


def parse_dot_with_edge_labels(
    source: str,
) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]], dict[str, str | None], dict[tuple[str, str], str]]:
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str]] = []
    edge_labels: dict[tuple[str, str], str] = {}
    cluster_of: dict[str, str | None] = {}
    stack: list[str] = []  # labels of the open clusters
    for line in source.splitlines():
        if re.match(r"^\s*subgraph (\"[^\"]*\"|\S+) \{", line):
            stack.append("")
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        graph_line = re.match(r"^\s*graph \[(.*)\]$", line)
        if graph_line and stack:
            label = dict((k, _unquote(v)) for k, v in ATTRIBUTE.findall(graph_line.group(1))).get("label", "")
            stack[-1] = label
            cluster_of[label] = stack[-2] if len(stack) > 1 else None
            continue
        edge = EDGE_LINE.match(line)
        if edge:
            pair = (_unquote(edge.group(1)), _unquote(edge.group(2)))
            edges.append(pair)
            attributes = {k: _unquote(v) for k, v in ATTRIBUTE.findall(edge.group(3) or "")}
            if "label" in attributes:
                edge_labels[pair] = attributes["label"]
            continue
        node = NODE_LINE.match(line)
        if node and node.group(1) not in ("graph", "node", "edge"):
            name = _unquote(node.group(1))
            nodes[name] = {key: _unquote(value) for key, value in ATTRIBUTE.findall(node.group(2))}
            cluster_of[name] = stack[-1] if stack else None
    return nodes, edges, cluster_of, edge_labels


def node_labelled(nodes: dict[str, dict[str, str]], text: str) -> dict[str, str]:
    """The one node whose label contains ``text``."""
    found = [attrs for attrs in nodes.values() if text in attrs.get("label", "")]
    assert len(found) == 1, f"{len(found)} nodes labelled with {text!r}"
    return found[0]


def name_in(label: str) -> str:
    """The name of a record label: ``"a | data 2 | grad 6"`` -> a, ``"{ * | e } | data -6 | …"`` -> e."""
    if label.startswith("{ ") and " } | " in label:
        return label.split(" } | ")[0].split(" | ")[-1]
    return label.split(" | ")[0]


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
    """In LR the fields of a record stack vertically (no braces); a result's first row is ``op | label``."""
    nodes, _, _ = parse_dot(draw_graph(karpathy_example()).source)
    assert node_labelled(nodes, "a |")["label"] == "a | data 2 | grad 6"
    assert node_labelled(nodes, "b |")["label"] == "b | data -3 | grad -4"
    assert node_labelled(nodes, "c |")["label"] == "c | data 10 | grad -2"
    assert node_labelled(nodes, "| L }")["label"] == "{ * | L } | data -8 | grad 1"


def test_three_significant_digits_by_default_and_precision_option() -> None:
    third = Value(1.0, label="t") / 3.0
    third.backward()  # d(t/3)/d(t/3) = 1; the value is 0.333…
    default, _, _ = parse_dot(draw_graph(third).source)
    longer, _, _ = parse_dot(draw_graph(third, precision=5).source)
    assert "/ | data 0.333 | grad 1" in [n["label"] for n in default.values()]
    assert "/ | data 0.33333 | grad 1" in [n["label"] for n in longer.values()]


def test_small_numbers_have_a_short_exponent() -> None:
    """6.526e-05 would be 9 characters; the picture writes 6.53e-5 (three significant digits)."""
    x = Value(6.526e-05, label="x")
    nodes, _, _ = parse_dot(draw_graph(x).source)
    assert node_labelled(nodes, "x |")["label"] == "x | data 6.53e-5 | grad 0"


def test_unlabelled_values_show_data_and_grad_only() -> None:
    nodes, _, _ = parse_dot(draw_graph(Value(1.5) * 2).source)
    labels = sorted(n["label"] for n in nodes.values())
    assert labels == ["* | data 3 | grad 0", "data 1.5 | grad 0", "data 2 | grad 0"]


def test_negative_zero_is_shown_as_zero() -> None:
    """IEEE: -0.72·0 = -0.0, the "data -0" of the old CLI picture; a gradient can be -0.0 too."""
    w, x = Value(-0.72, label="w"), Value(0.0, label="x", requires_grad=False)
    product = w * x
    product.label = "p"
    y = -product
    y.backward()
    w.grad = -0.0
    assert math.copysign(1.0, product.data) == -1.0  # the number really is -0.0
    source = draw_graph(y).source
    assert "-0 " not in source and "-0\"" not in source
    nodes, _, _ = parse_dot(source)
    assert node_labelled(nodes, "| p }")["label"] == "{ * | p } | data 0 | grad -1"
    assert node_labelled(nodes, "w |")["label"] == "w | data -0.72 | grad 0"


OP_RULES = [*ops.BINARY_RULES, *ops.UNARY_RULES, ops.power(2.0), ops.power(-0.5), ops.leaky_relu(0.1)]


@pytest.mark.parametrize("rule", OP_RULES, ids=lambda r: r.name)
def test_result_shows_the_symbol_from_the_rule_table_and_an_edge_per_input(rule: ops.Rule) -> None:
    inputs = tuple(Value(x) for x in (0.5, 0.7)[: rule.arity])
    result = apply(rule, inputs)
    nodes, edges, _ = parse_dot(draw_graph(result).source)
    symbol = rule.symbol
    for char in "\\{}|<>":
        symbol = symbol.replace(char, "\\" + char)
    (name,) = [name for name, attrs in nodes.items() if attrs["label"].startswith(symbol + " | data")]
    assert sum(1 for _, target in edges if target == name) == rule.arity
    assert len(nodes) == rule.arity + 1  # one node per Value: no separate operation nodes


def test_sum_node_uses_sigma_and_has_one_edge_per_input() -> None:
    total = sum_values([Value(1.0), Value(2.0), Value(3.0), Value(4.0)])
    nodes, edges, _ = parse_dot(draw_graph(total).source)
    (name,) = [name for name, attrs in nodes.items() if attrs["label"].startswith("Σ |")]
    assert sum(1 for _, target in edges if target == name) == 4


def test_same_parent_twice_gives_two_edges() -> None:
    x = Value(3.0, label="x")
    nodes, edges, _ = parse_dot(draw_graph(x * x).source)
    x_name = next(name for name, attrs in nodes.items() if attrs["label"].startswith("x |"))
    assert sum(1 for source, _ in edges if source == x_name) == 2


def test_parameters_constants_and_results_look_different() -> None:
    nodes, _, _ = parse_dot(draw_graph(karpathy_example()).source)
    parameter, constant = node_labelled(nodes, "a |"), node_labelled(nodes, "c |")
    result = node_labelled(nodes, "| e }")
    assert parameter["shape"] == "Mrecord" and parameter["penwidth"] == "2"
    assert constant["shape"] == "record" and "dashed" in constant["style"]
    assert result["shape"] == "record" and "dashed" not in result["style"] and "penwidth" not in result
    assert len({parameter["fillcolor"], constant["fillcolor"], result["fillcolor"]}) == 3


def test_rankdir_left_to_right_by_default_and_top_to_bottom_on_request() -> None:
    loss = karpathy_example()
    assert "rankdir=LR" in draw_graph(loss).source
    top_down = draw_graph(loss, rankdir="TB")
    assert "rankdir=TB" in top_down.source
    # Fields stack vertically in both directions: braces flip a record's direction in TB.
    assert node_labelled(parse_dot(top_down.source)[0], "a |")["label"] == "{ a | data 2 | grad 6 }"


def test_record_special_characters_in_labels_are_escaped() -> None:
    nodes, _, _ = parse_dot(draw_graph(Value(1.0, label="a|b{c}<d>")).source)
    (attrs,) = nodes.values()
    assert attrs["label"] == r"a\|b\{c\}\<d\> | data 1 | grad 0"


def test_grad_that_is_a_value_is_shown_by_its_data() -> None:
    x = Value(2.0, label="x")
    x.grad = Value(0.25)
    nodes, _, _ = parse_dot(draw_graph(x).source)
    assert node_labelled(nodes, "x |")["label"] == "x | data 2 | grad 0.25"


def test_grad_names_rename_the_gradient_field() -> None:
    """`nn` names ∂E/∂net "δ"; the number is the node's own .grad (-2 for e in the example)."""
    loss = karpathy_example()
    e = loss.parents[0].parents[0]
    nodes, _, _ = parse_dot(draw_graph(loss, grad_names={e: "δ₁"}).source)
    # No blank after the bar before a non-ASCII field: Graphviz would then drop the blank in "δ₁ -2".
    assert node_labelled(nodes, "| e }")["label"] == "{ * | e } | data -6 |δ₁ -2"


# -- edge labels: the local derivative from the rule table ------------------------------


def test_edge_labels_local_show_the_rule_tables_derivative_and_its_value() -> None:
    """Example: e = a·b, d = e + c, L = d·f. ∂e/∂a = b = -3, ∂e/∂b = a = 2, ∂d/∂c = 1, ∂L/∂d = f = -2."""
    source = draw_graph(karpathy_example(), edge_labels="local").source
    nodes, _, _, labels = parse_dot_with_edge_labels(source)
    name = {name_in(attrs["label"]): n for n, attrs in nodes.items()}
    assert labels[(name["a"], name["e"])] == "∂(a·b)/∂a = b = -3"
    assert labels[(name["b"], name["e"])] == "∂(a·b)/∂b = a = 2"
    assert labels[(name["c"], name["d"])] == "∂(a + b)/∂b = 1"  # the formula is already the number
    assert labels[(name["d"], name["L"])] == "∂(a·b)/∂a = b = -2"
    assert not parse_dot_with_edge_labels(draw_graph(karpathy_example()).source)[3]


def test_edge_label_of_an_undefined_derivative_is_a_question_mark() -> None:
    """d√x/dx = 1/(2√x) is undefined at x = 0: the picture says "?" instead of raising."""
    x = Value(0.0, label="x")
    y = x.sqrt()
    _, _, _, labels = parse_dot_with_edge_labels(draw_graph(y, edge_labels="local").source)
    assert list(labels.values()) == ["∂(√x)/∂x = 1/(2·√x) = ?"]


# -- colours by gradient -----------------------------------------------------------


def test_scale_bounds_are_the_graphs_own_smallest_and_largest_decades() -> None:
    """|grad| in {0.03, 0.004, 2e-5}: 0.03 lies in (0.01, 0.1] (decade -1), 2e-5 in (1e-5, 1e-4]
    (decade -4): four levels, one per decade, whatever the absolute size."""
    scale = GradScale([0.03, -0.004, 2e-5, 0.0])
    assert (scale.low, scale.high, scale.levels) == (-4, -1, 4)
    assert scale.bounds(4) == "0.01 < |grad| ≤ 0.1"
    assert scale.bounds(1) == "10⁻⁵ < |grad| ≤ 10⁻⁴"
    assert [scale.level(g) for g in (0.03, -0.004, 2e-5)] == [4, 3, 1]
    assert scale.color(0.03) == POSITIVE_COLORS[-1]  # the largest decade: the darkest shade
    assert scale.color(2e-5) == POSITIVE_COLORS[1]  # the smallest: the lightest usable shade
    assert brightness(scale.color(-0.004)) < brightness(NEGATIVE_COLORS[1]) and scale.color(0.0) == ZERO_COLOR
    # Darker with every decade: the four levels' reds get steadily darker.
    reds = [brightness(scale.color(g)) for g in (2e-5, 4e-4, 0.004, 0.03)]
    assert reds == sorted(reds, reverse=True) and len(set(reds)) == 4


def brightness(color: str) -> int:
    """R + G + B of a ``#rrggbb`` colour: lower is darker."""
    return sum(int(color[i : i + 2], 16) for i in (1, 3, 5))


def test_powers_of_ten_sit_at_the_top_of_their_decade() -> None:
    """Decade k holds 10^(k-1) < |grad| <= 10^k: 1 is in (0.1, 1], 1e-3 in (1e-4, 1e-3]."""
    scale = GradScale([1.0, 1e-3])
    assert (scale.low, scale.high) == (-3, 0)


def test_color_by_grad_sign_and_decade() -> None:
    """L = a·b, a = 10, b = -0.02: dL/da = b = -0.02, dL/db = a = 10, dL/dL = 1.

    Decades: 10 in (1, 10] (k = 1), 1 in (0.1, 1] (k = 0), 0.02 in (0.01, 0.1] (k = -1):
    three levels; b the darkest red, L the middle red, a the lightest blue.
    """
    a, b = Value(10.0, label="a"), Value(-0.02, label="b")
    loss = a * b
    loss.label = "L"
    loss.backward()
    nodes, _, _ = parse_dot(draw_graph(loss, color_by="grad").source)
    assert node_labelled(nodes, "b |")["fillcolor"] == POSITIVE_COLORS[-1]
    middle = node_labelled(nodes, "| L }")["fillcolor"]
    assert brightness(POSITIVE_COLORS[-1]) < brightness(middle) < brightness(POSITIVE_COLORS[1])
    assert node_labelled(nodes, "a |")["fillcolor"] == NEGATIVE_COLORS[1]
    assert node_labelled(nodes, "b |")["fontcolor"] == "#ffffff"  # dark fill, light text
    assert node_labelled(nodes, "a |")["fontcolor"] == "#000000"


def test_vanishing_gradients_two_decades_apart_get_different_shades() -> None:
    """L = 1e-5·a + 1e-7·b + c: dL/da = 1e-5, dL/db = 1e-7, dL/dc = 1 (notebook 04's layers 2 and 1).

    The scale spans decades -7 .. 0: eight levels, one per decade, so a and b differ
    (a fixed five-decade scale under the largest gradient gave both its faintest shade)."""
    a, b, c = Value(1.0, label="a"), Value(1.0, label="b"), Value(1.0, label="c")
    loss = sum_values([a * 1e-5, b * 1e-7, c])
    loss.backward()
    nodes, _, _ = parse_dot(draw_graph(loss, color_by="grad").source)
    colors = [node_labelled(nodes, f"{name} |")["fillcolor"] for name in "abc"]
    assert len(set(colors)) == 3
    assert colors[1] == POSITIVE_COLORS[1] and colors[2] == POSITIVE_COLORS[-1]
    assert GradScale([1e-5, 1e-7, 1.0]).levels == 8


def test_more_decades_than_shades_share_levels() -> None:
    """y = 1e-11·u + 0·v + w: twelve decades (-11 .. 0) over at most 10 shades: two decades per
    level, six levels."""
    u, v, w = Value(1.0, label="u"), Value(1.0, label="v"), Value(1.0, label="w")
    y = sum_values([u * 1e-11, v * 0.0, w])
    y.backward()
    scale = GradScale([1e-11, 0.0, 1.0])
    assert (scale.decades_per_level, scale.levels) == (2, 6)
    assert GradScale([1e-9, 1.0]).levels == 10  # ten decades: still one shade each
    nodes, _, _ = parse_dot(draw_graph(y, color_by="grad").source)
    assert node_labelled(nodes, "u |")["fillcolor"] == POSITIVE_COLORS[1]
    assert node_labelled(nodes, "v |")["fillcolor"] == ZERO_COLOR
    assert node_labelled(nodes, "w |")["fillcolor"] == POSITIVE_COLORS[-1]


def test_non_finite_gradient_has_its_own_colour() -> None:
    x = Value(1.0, label="x")
    x.grad = float("nan")
    nodes, _, _ = parse_dot(draw_graph(x, color_by="grad").source)
    assert node_labelled(nodes, "x |")["fillcolor"] == NONFINITE_COLOR


def test_gradient_near_the_largest_float_and_inf_are_drawn_without_overflow() -> None:
    """max |grad| = 1.5e308 lies in (1e308, 1e309], 2e307 in (1e307, 1e308]: the bound 1e309 is
    not a float (10.0**309 overflows), so it must be written, not computed; inf is coloured as
    non-finite and left out of the scale."""
    x, z = Value(1.0, label="x"), Value(1.0, label="z")
    y = x * z
    x.grad, z.grad, y.grad = 1.5e308, float("inf"), 2e307
    source = draw_graph(y, color_by="grad").source
    assert "<TD>10³⁰⁹</TD><TD>10³⁰⁸</TD>" in source and "lightest shade: 10³⁰⁷ &lt; |grad| ≤ 10³⁰⁸" in source
    assert "nan or inf" in source
    nodes, _, _ = parse_dot(source)
    assert node_labelled(nodes, "x |")["fillcolor"] == POSITIVE_COLORS[-1]
    assert node_labelled(nodes, "z |")["fillcolor"] == NONFINITE_COLOR


def test_subnormal_gradient_has_a_nonzero_bound() -> None:
    """5e-324 (the smallest subnormal) lies in (1e-324, 1e-323]: the legend never says "≤ 0"."""
    x = Value(1.0, label="x")
    x.grad = 5e-324
    source = draw_graph(x, color_by="grad").source
    assert "lightest shade: 10⁻³²⁴ &lt; |grad| ≤ 10⁻³²³" in source and "<TD>10⁻³²³</TD>" in source
    assert "≤ 0<" not in source and "<TD>0</TD>" not in source
    assert GradScale([5e-324]).bounds(1) == "10⁻³²⁴ < |grad| ≤ 10⁻³²³"


def test_legend_is_compact_and_explains_only_what_the_graph_uses() -> None:
    """The example's gradients (see karpathy_example) are 6, -4, -2, -2, -2, 4 and 1.

    By hand: 6, 4 and 2 lie in (1, 10] (k = 1); 1 in (0.1, 1] (k = 0): two columns.
    Signs: + (6, 4, 1) and - (-4, -2): both rows; no zero and no nan: no keys for them."""
    source = draw_graph(karpathy_example(), color_by="grad").source
    assert "<TD ALIGN=\"RIGHT\">|grad| ≤</TD><TD>10</TD><TD>1</TD></TR>" in source  # two columns
    assert "lightest shade: 0.1 &lt; |grad| ≤ 1" in source
    assert "grad &gt; 0" in source and "grad &lt; 0" in source
    assert "grad = 0" not in source and "nan or inf" not in source
    assert "parameter" in source and "constant" in source
    assert "labelloc=b" in source  # under the picture, not beside it: it adds no width


def test_legend_can_be_left_out_and_a_caption_added() -> None:
    loss = karpathy_example()
    assert "<TABLE" not in draw_graph(loss, color_by="grad", legend=False).source
    with_caption = draw_graph(loss, color_by="grad", legend=False, caption="E = (ŷ - t)²\nsecond line").source
    assert "E = (ŷ - t)²\\lsecond line\\l" in with_caption
    assert "E = (ŷ - t)²" in draw_graph(loss, color_by="grad", caption="E = (ŷ - t)²").source


def test_no_legend_without_color_by() -> None:
    assert "<TABLE" not in draw_graph(karpathy_example()).source


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


def test_cluster_true_nests_neurons_in_layers_with_the_inputs_in_layer_1() -> None:
    loss, _ = mlp_loss()
    nodes, _, cluster_of = parse_dot(draw_graph(loss, cluster=True).source)
    assert cluster_of["L1.N0"] == cluster_of["L1.N1"] == "L1"
    assert cluster_of["L2.N0"] == "L2"
    assert cluster_of["L1"] is None and cluster_of["L2"] is None
    w = next(name for name, attrs in nodes.items() if "L2.N0.w1" in attrs.get("label", ""))
    assert cluster_of[w] == "L2.N0"
    sigmoids = [name for name, attrs in nodes.items() if attrs["label"].startswith("σ |")]
    assert sorted(cluster_of[name] for name in sigmoids) == ["L1.N0", "L1.N1", "L2.N0"]
    loss_node = next(name for name, attrs in nodes.items() if attrs["label"].endswith("grad 1"))
    assert cluster_of[loss_node] is None
    # x1 and x2 are read by layer 1 only: drawn inside its box, beside its neurons.
    for x in ("x1 |", "x2 |"):
        name = next(name for name, attrs in nodes.items() if attrs["label"].startswith(x))
        assert cluster_of[name] == "L1"
    target = next(name for name, attrs in nodes.items() if attrs["label"].startswith("data 0.6 |"))
    assert cluster_of[target] is None  # read by the loss: outside every layer


def test_cluster_false_draws_no_clusters() -> None:
    loss, _ = mlp_loss()
    assert "subgraph" not in draw_graph(loss).source


def test_collapse_draws_one_box_per_neuron() -> None:
    loss, _ = mlp_loss()
    nodes, edges, cluster_of = parse_dot(draw_graph(loss, cluster="collapse").source)
    boxes = {attrs["label"].split(" | ")[0]: name for name, attrs in nodes.items() if "parameters" in attrs["label"]}
    assert sorted(boxes) == ["L1.N0", "L1.N1", "L2.N0"]
    assert cluster_of[boxes["L1.N0"]] == "L1" and cluster_of[boxes["L2.N0"]] == "L2"
    assert not any("L1.N0.w1" in attrs.get("label", "") for attrs in nodes.values())
    assert (boxes["L1.N0"], boxes["L2.N0"]) in edges and (boxes["L1.N1"], boxes["L2.N0"]) in edges
    x1 = next(name for name, attrs in nodes.items() if attrs["label"].startswith("x1 |"))
    assert (x1, boxes["L1.N0"]) in edges and (x1, boxes["L1.N1"]) in edges
    assert cluster_of[x1] == "L1"
    label = nodes[boxes["L2.N0"]]["label"]
    assert "3 parameters" in label
    output = loss.parents[0].parents[0]  # ŷ, the output neuron's sigmoid
    assert f"out {output.data:.3g}" in label
    # Ungrouped: x1, x2, the target 0.6, ŷ - 0.6 and its square = 5 nodes, plus 3 boxes.
    assert len(nodes) == 8


# -- size limit ------------------------------------------------------------------------


def test_max_nodes_counts_values() -> None:
    """a·b draws 3 nodes: a, b and the product (its operation is a row of the product's record)."""
    y = Value(1.0) * Value(2.0)
    draw_graph(y, max_nodes=3)
    with pytest.raises(InvalidArgumentError, match=r"max_nodes=.*cluster='collapse'"):
        draw_graph(y, max_nodes=2)


def test_collapse_is_held_to_max_nodes_too() -> None:
    """The collapsed 2-2-1 graph has 8 nodes (see test_collapse_draws_one_box_per_neuron)."""
    loss, _ = mlp_loss()
    draw_graph(loss, cluster="collapse", max_nodes=8)
    with pytest.raises(InvalidArgumentError, match="max_nodes=") as caught:
        draw_graph(loss, cluster="collapse", max_nodes=7)
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
    assert len(parse_dot(graph.source)[0]) == 3001


@pytest.mark.slow
def test_chain_of_a_million_fails_fast_with_the_max_nodes_error() -> None:
    x = Value(0.5)
    for _ in range(1_000_000):
        x = -x
    with pytest.raises(InvalidArgumentError, match="more than 500 nodes"):
        draw_graph(x)


@pytest.mark.parametrize(
    "options",
    [{"rankdir": "RL"}, {"precision": 0}, {"color_by": "data"}, {"cluster": "yes"}, {"cluster": 1},
     {"max_nodes": 0}, {"edge_labels": "all"}],
)
def test_bad_option_values_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(options))):
        draw_graph(Value(1.0), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [{"precision": 1.5}, {"precision": "4"}, {"max_nodes": True}, {"max_nodes": 10.0}, {"legend": "yes"},
     {"grad_names": {"x": "δ"}}, {"caption": 3}],
)
def test_options_of_a_wrong_type_are_type_errors(options: dict[str, object]) -> None:
    """Issue 11 item 29: a wrong type is an InvalidTypeError (precision=1.5 is not an int at all)."""
    with pytest.raises(InvalidTypeError, match=next(iter(options))):
        draw_graph(Value(1.0), **options)  # type: ignore[arg-type]


def test_root_must_be_a_value() -> None:
    with pytest.raises(InvalidTypeError, match="float"):
        draw_graph(1.0)  # type: ignore[arg-type]


def test_a_mean_over_one_sample_draws_no_division_by_one() -> None:
    """mse of one prediction is (ŷ - t)² itself: the old "/ 1" node of the CLI's graph is gone
    (and with two predictions the mean divides by 2)."""
    from nn.losses import binary_cross_entropy, hinge, mse

    y = Value(0.7)
    for loss in (mse(y, 0.6), hinge(y, 1.0), binary_cross_entropy(y, 1.0)):
        assert all(node.op != "div" for node in topological_order(loss))
    two = mse([Value(0.7), Value(0.2)], [0.6, 0.0])
    assert two.op == "div" and two.data == pytest.approx((0.1**2 + 0.2**2) / 2, abs=1e-15)


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
    for expected in ("L1", "L2", "L1.N0", "L1.N1", "L2.N0", "L2.N0.w1", "σ", "Σ", "grad > 0", "|grad| ≤"):
        assert expected in clustered, expected
    collapsed = svg_texts(Path(draw_graph(loss, cluster="collapse").render(tmp_path / "k", format="svg")))
    assert "L2.N0" in collapsed and "3 parameters" in collapsed and "L2.N0.w1" not in collapsed


def svg_width_px(svg: bytes) -> float:
    """The width of an SVG from Graphviz, which writes points: 1 pt = 96/72 px in a browser."""
    width = ET.fromstring(svg).get("width") or ""
    assert width.endswith("pt"), width
    return float(width[:-2]) * 96 / 72


def test_a_2_2_1_networks_graph_fits_a_notebook_cell(dot_program: str) -> None:
    """A notebook's output cell is about 1,000 px wide: the whole clustered, coloured graph of a
    2-2-1 network's loss (legend included) must fit it, with no scrolling."""
    loss, _ = mlp_loss()
    assert svg_width_px(draw_graph(loss, color_by="grad", cluster=True).pipe(format="svg")) <= 1000
    assert svg_width_px(draw_graph(loss).pipe(format="svg")) <= 1000


def plain_positions(graph: object, dot_program: str) -> dict[str, tuple[float, float]]:
    """Node centres (x, y in inches) from `dot -Tplain`."""
    import subprocess

    result = subprocess.run([dot_program, "-Tplain"], input=graph.source.encode(), capture_output=True, timeout=60)  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stderr
    positions = {}
    for line in result.stdout.decode().splitlines():
        parts = line.split()
        if parts[0] == "node":
            positions[parts[1].strip('"')] = (float(parts[2]), float(parts[3]))
    return positions


def test_layers_are_drawn_left_to_right_with_the_inputs_beside_layer_1(dot_program: str) -> None:
    """Ranks of the 2-2-1 graph, from `dot -Tplain`: inputs and layer-1 weights, then layer 1's
    σ, then layer 2's weights and σ, then the loss."""
    loss, _ = mlp_loss()
    graph = draw_graph(loss, color_by="grad", cluster=True)
    nodes, _, _ = parse_dot(graph.source)
    x_of = {name: xy[0] for name, xy in plain_positions(graph, dot_program).items()}

    def xs(*prefixes: str) -> list[float]:
        return [x_of[name] for name, attrs in nodes.items() if attrs["label"].startswith(prefixes)]

    sigmoids = sorted(xs("σ |"))
    layer1_sigmoids, layer2_sigmoid = sigmoids[:2], sigmoids[2]
    inputs, first_weights, second_weights = xs("x1 |", "x2 |"), xs("L1.N0.w", "L1.N1.w"), xs("L2.N0.w")
    loss_x = x_of[next(name for name, attrs in nodes.items() if attrs["label"].endswith("grad 1"))]
    assert max(inputs + first_weights) < min(layer1_sigmoids)
    assert max(layer1_sigmoids) <= min(second_weights) < layer2_sigmoid < loss_x


HOSTILE_LABELS = ["ends in a backslash\\", "a\x00NUL", '"quoted\\"', "<b>html</b>", "{record|field}", "\\"]


@pytest.mark.parametrize("cluster", [True, "collapse", False], ids=["clusters", "collapse", "plain"])
@pytest.mark.parametrize("hostile", HOSTILE_LABELS)
def test_any_label_gives_dot_that_dot_accepts(dot_program: str, hostile: str, cluster: object) -> None:
    """Issue 11 item 27: labels are data. A neuron path (and so a cluster id and label) made of a
    label ending in a backslash or holding NUL must still be valid DOT, drawn verbatim (NUL as ␀)."""
    import subprocess

    w, b = Value(0.5, label=f"{hostile}.w1"), Value(0.1, label=f"{hostile}.b")
    y = sum_values([w * 2.0, b]).tanh()
    y.label = hostile
    loss = (y - 1.0) ** 2
    loss.label = hostile
    loss.backward()
    graph = draw_graph(loss, cluster=cluster, color_by="grad", caption=hostile)  # type: ignore[arg-type]
    result = subprocess.run([dot_program, "-Tsvg"], input=graph.source.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    texts = [(t.text or "").strip() for t in ET.fromstring(result.stdout).iter("{http://www.w3.org/2000/svg}text")]
    shown = hostile.replace("\x00", "␀").strip()
    assert shown in texts, (shown, texts)


def test_jupyter_display_is_svg(dot_program: str) -> None:
    bundle = draw_graph(karpathy_example())._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
