"""`nn.draw_network` (circles for inputs and neurons, one arrow per weight, width by |w|,
colour by sign, the weight and its gradient in a box on the arrow) and `nn.draw_sample` /
`nn.sample_graph` (one sample's graph named as a textbook names it: x₁, net, h, ŷ, t, E, δ);
checked in the DOT source and in real renders.

The network is the worked example's 2-2-1 (w_ij: hidden neuron i, input j):
w11=0.4 w12=0.3 w21=0.6 w22=0.9, w31=0.5 w32=0.7, b1=0.1 b2=0.2 b3=0.3; `draw_network`'s
tests flip w22 to -0.9 so that both signs appear. Expected widths follow the documented
rule width = 0.4 + 3.6·|w| / max|w| with max|w| = 0.9; expected δ are derived by hand.
"""

from __future__ import annotations

import math
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_module

import autograd
import nn
from autograd import topological_order
from autograd.errors import InvalidArgumentError, InvalidTypeError
from nn.draw import NEGATIVE_WEIGHT, POSITIVE_WEIGHT, draw_network, draw_sample, sample_graph

require_module("graphviz", extra="viz")

WEIGHTS = {
    "L1.N0.w1": 0.4, "L1.N0.w2": 0.3, "L1.N0.b": 0.1,
    "L1.N1.w1": 0.6, "L1.N1.w2": -0.9, "L1.N1.b": 0.2,
    "L2.N0.w1": 0.5, "L2.N0.w2": 0.7, "L2.N0.b": 0.3,
}  # fmt: skip
EDGE = re.compile(r'^\s*("?[\w.]+"?) -> ("?[\w.]+"?) \[(.*)\]$')
ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def worked_example(w22: float = -0.9) -> nn.MLP:
    model = nn.MLP(2, [2, 1], activation="sigmoid", seed=0)
    for p in model.parameters():
        p.data = WEIGHTS[p.label]
    model.layers[0].neurons[1].w[1].data = w22
    return model


def edges(source: str) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for line in source.splitlines():
        match = EDGE.match(line)
        if match:
            attributes = {k: v.strip('"') for k, v in ATTRIBUTE.findall(match.group(3))}
            found[(match.group(1).strip('"'), match.group(2).strip('"'))] = attributes
    return found


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def svg_texts(svg: bytes) -> list[str]:
    return [(t.text or "").strip() for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]


def svg_width_px(svg: bytes) -> float:
    width = ET.fromstring(svg).get("width") or ""
    return float(width.removesuffix("pt")) * 96 / 72


# -- draw_network: weights and gradients on their arrows ------------------------------------


def test_each_weight_sits_in_a_box_on_its_own_arrow() -> None:
    """x_j -> [w] -> neuron: the box has one arrow in (from the weight's input) and one out."""
    drawn = edges(draw_network(worked_example()).source)
    expected = {
        ("x1", "L1N0"): "w 0.4", ("x2", "L1N0"): "w 0.3", ("x1", "L1N1"): "w 0.6", ("x2", "L1N1"): "w -0.9",
        ("L1N0", "L2N0"): "w 0.5", ("L1N1", "L2N0"): "w 0.7",
    }  # fmt: skip
    boxes = {box for (_, box) in drawn if "w" in box[4:]}
    assert len(boxes) == 6
    for (source, target), label in expected.items():
        (box,) = [b for (s, b) in drawn if s == source and (b, target) in drawn]
        assert drawn[(box, target)]["tooltip"].endswith(f"= {label[2:]}")
        assert drawn[(source, box)]["arrowhead"] == "none"  # one arrow, cut by its box
    source = draw_network(worked_example()).source
    for label in expected.values():
        assert f'label="{label}"' in source


def test_arrow_width_grows_with_abs_weight_and_colour_shows_sign() -> None:
    drawn = edges(draw_network(worked_example()).source)

    def arrow(source: str, target: str) -> dict[str, str]:
        (box,) = [b for (s, b) in drawn if s == source and (b, target) in drawn]
        assert drawn[(source, box)]["penwidth"] == drawn[(box, target)]["penwidth"]
        return drawn[(box, target)]

    assert float(arrow("x2", "L1N1")["penwidth"]) == pytest.approx(4.0, abs=0.005)  # |w| = max
    assert float(arrow("x1", "L1N0")["penwidth"]) == pytest.approx(0.4 + 3.6 * 0.4 / 0.9, abs=0.005)
    assert float(arrow("x2", "L1N0")["penwidth"]) == pytest.approx(0.4 + 3.6 * 0.3 / 0.9, abs=0.005)
    assert arrow("x2", "L1N1")["color"] == NEGATIVE_WEIGHT
    assert arrow("L1N0", "L2N0")["color"] == POSITIVE_WEIGHT
    assert arrow("x2", "L1N1")["tooltip"] == "L1.N1.w2 = -0.9"


def test_neurons_show_bias_and_layers_show_activation() -> None:
    source = draw_network(worked_example()).source
    assert 'L1N1 [label="L1.N1\\nb 0.2"' in source
    assert 'label="L1: hidden, φ = sigmoid"' in source and 'label="L2: output, φ = sigmoid"' in source
    assert re.search(r"x1 \[label=\"?x₁", source) and re.search(r"x2 \[label=\"?x₂", source)


def test_show_grad_writes_each_gradient_under_its_weight() -> None:
    """The gradients written are the parameters' .grad: set here to known numbers."""
    model = worked_example()
    for k, p in enumerate(model.parameters()):
        p.grad = 0.001 * (k + 1)
    source = draw_network(model, show_grad=True).source
    assert 'label="w 0.4\\ngrad 0.001"' in source  # L1.N0.w1 is parameter 1
    assert 'label="w -0.9\\ngrad 0.005"' in source  # L1.N1.w2 is parameter 5
    assert 'label="w 0.7\\ngrad 0.008"' in source  # L2.N0.w2 is parameter 8
    assert 'L2N0 [label="L2.N0\\nb 0.3\\ngrad 0.009"' in source


def test_large_networks_draw_plain_arrows_unless_asked() -> None:
    """8 x 8 x 1: 2·8 + 8·8 + 8 = 88 weights, over LABELLED_WEIGHTS = 60: no boxes by default."""
    model = nn.MLP(2, [8, 8, 1], seed=0)
    plain = edges(draw_network(model).source)
    assert len(plain) == 88 and "label" not in next(iter(plain.values()))
    assert len(edges(draw_network(model, show_weights=True).source)) == 2 * 88
    assert len(edges(draw_network(worked_example(), show_weights=False).source)) == 6


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidTypeError, match="MLP"):
        draw_network([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="rankdir"):
        draw_network(worked_example(), rankdir="BT")
    with pytest.raises(InvalidArgumentError, match="6 weights.*max_edges=5"):
        draw_network(worked_example(), max_edges=5)
    with pytest.raises(InvalidTypeError, match="max_edges must be an int.*str 'x'"):
        draw_network(worked_example(), max_edges="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="precision"):
        draw_network(worked_example(), precision=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="precision"):
        draw_network(worked_example(), precision=0)
    with pytest.raises(InvalidTypeError, match="show_grad"):
        draw_network(worked_example(), show_grad="yes")  # type: ignore[arg-type]


def test_svg_render_shows_neurons_weights_and_gradients(dot_program: str, tmp_path: Path) -> None:
    model = worked_example()
    loss = (model([0.5, 0.1]) - 0.6) ** 2
    loss.backward()
    out = Path(draw_network(model, show_grad=True).render(tmp_path / "net", format="svg"))
    root = ET.parse(out).getroot()
    texts = [(t.text or "").strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for expected in ("x₁", "x₂", "L1.N0", "L1.N1", "L2.N0", "b 0.3", "L2: output, φ = sigmoid", "w -0.9"):
        assert expected in texts, expected
    assert sum(1 for t in texts if t.startswith("grad ")) == 6 + 3  # 6 weights, 3 biases
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in root.iter("{http://www.w3.org/2000/svg}a")]
    assert "L1.N1.w2 = -0.9" in titles


def test_each_weights_box_lies_between_its_two_neurons(dot_program: str) -> None:
    """In the rendered layout (dot -Tplain, LR) each box is placed between the columns of the
    neurons its arrow joins, so its numbers are read on that arrow and nowhere else."""
    graph = draw_network(worked_example(), show_grad=True)
    result = subprocess.run([dot_program, "-Tplain"], input=graph.source.encode(), capture_output=True, timeout=60)
    x_of = {p[1]: float(p[2]) for p in (line.split() for line in result.stdout.decode().splitlines()) if p[0] == "node"}
    drawn = edges(graph.source)
    for (source, box) in drawn:
        if "w" not in box[4:]:
            continue
        (target,) = [t for (b, t) in drawn if b == box]
        assert x_of[source] < x_of[box] < x_of[target]


def test_any_neuron_label_gives_dot_that_dot_accepts(dot_program: str) -> None:
    """Issue 11 item 27: labels ending in a backslash or holding NUL, in draw_network."""
    model = worked_example()
    model.layers[0].neurons[0].label = "ends\\"
    model.layers[1].neurons[0].label = "nul\x00"
    for p in model.parameters():
        p.label += "\\"
    source = draw_network(model, show_grad=True).source
    result = subprocess.run([dot_program, "-Tsvg"], input=source.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ends\\" in svg_texts(result.stdout) and "nul␀" in svg_texts(result.stdout)


# -- draw_sample: one sample's graph, named as in the textbook -------------------------------


def by_hand(w22: float = 0.9) -> dict[str, float]:
    """The worked example at x = (0.5, 0.1), t = 0.6, E = (ŷ - t)², neurons numbered 1, 2 (hidden), 3 (output).

    net1 = 0.4·0.5 + 0.3·0.1 + 0.1 = 0.33, net2 = 0.6·0.5 + w22·0.1 + 0.2, h_i = σ(net_i),
    net3 = 0.5·h1 + 0.7·h2 + 0.3, ŷ = σ(net3); δ3 = ∂E/∂net3 = 2(ŷ - t)·ŷ(1 - ŷ),
    δ1 = δ3·w31·h1(1 - h1), δ2 = δ3·w32·h2(1 - h2).
    """
    net1, net2 = 0.4 * 0.5 + 0.3 * 0.1 + 0.1, 0.6 * 0.5 + w22 * 0.1 + 0.2
    h1, h2 = sigmoid(net1), sigmoid(net2)
    net3 = 0.5 * h1 + 0.7 * h2 + 0.3
    y = sigmoid(net3)
    d3 = 2 * (y - 0.6) * y * (1 - y)
    return {"net1": net1, "net2": net2, "net3": net3, "h1": h1, "h2": h2, "y": y, "E": (y - 0.6) ** 2,
            "d1": d3 * 0.5 * h1 * (1 - h1), "d2": d3 * 0.7 * h2 * (1 - h2), "d3": d3}  # fmt: skip


def test_sample_graph_names_every_node_a_textbook_names() -> None:
    hand = by_hand()
    sample = sample_graph(worked_example(w22=0.9), [0.5, 0.1], 0.6)
    assert [x.label for x in sample.inputs] == ["x₁", "x₂"] and [t.label for t in sample.targets] == ["t"]
    assert [n.label for n in sample.nets] == ["net₁", "net₂", "net₃"]
    assert [h.label for h in sample.activations] == ["h₁", "h₂", "ŷ"]
    assert sample.error.label == "E" and sample.neurons == ["L1.N0", "L1.N1", "L2.N0"]
    for node, key in zip(sample.nets + sample.activations[:2], ["net1", "net2", "net3", "h1", "h2"]):
        assert node.data == pytest.approx(hand[key], rel=1e-12)
    assert sample.activations[2].data == pytest.approx(hand["y"], rel=1e-12)
    assert sample.error.data == pytest.approx(hand["E"], rel=1e-12)
    assert sample.deltas == pytest.approx([hand["d1"], hand["d2"], hand["d3"]], rel=1e-12)
    assert sample.nets[0].grad == sample.deltas[0]  # δ is ∂E/∂net, the net's own gradient


def test_draw_sample_shows_the_names_and_delta_on_each_net() -> None:
    hand = by_hand()
    source = draw_sample(worked_example(w22=0.9), [0.5, 0.1], 0.6).source
    for text in ("x₁ | data 0.5", "x₂ | data 0.1", "t | data 0.6", "{ σ | h₁ }", "{ σ | h₂ }", "{ σ |ŷ }",
                 "{ **2 | E }", "δᵢ = ∂E/∂netᵢ"):  # fmt: skip
        assert text in source, text
    for i, sub in zip((1, 2, 3), "₁₂₃"):
        assert f"{{ Σ | net{sub} }} | data {hand[f'net{i}']:.3g} |δ{sub} {hand[f'd{i}']:.3g}" in source
    assert "subgraph cluster" in source and "grad &gt; 0" in source  # clusters, and the colour legend


def test_draw_sample_of_a_2_2_1_network_fits_a_notebook_cell(dot_program: str) -> None:
    svg = draw_sample(worked_example(w22=0.9), [0.5, 0.1], 0.6).pipe(format="svg")
    assert svg_width_px(svg) <= 1000
    texts = svg_texts(svg)
    for name in ("x₁", "x₂", "net₁", "net₂", "net₃", "h₁", "h₂", "ŷ", "t", "E", "L1.N0.w1"):
        assert name in texts, name
    assert f"δ₁ {by_hand()['d1']:.3g}" in texts  # drawn with its blank (see autograd.draw._join_fields)


def test_a_linear_output_is_named_as_its_net_and_several_outputs_are_numbered() -> None:
    linear = nn.MLP(2, [2, 1], output_activation="linear", seed=1)
    sample = sample_graph(linear, [1.0, -1.0], 0.5)
    assert sample.activations[-1] is sample.nets[-1] and sample.nets[-1].label == "ŷ = net₃"
    two = sample_graph(nn.MLP(2, [3, 2], seed=1), [1.0, 2.0], [1.0, 0.0])
    assert [y.label for y in two.activations[-2:]] == ["ŷ₁", "ŷ₂"] and [t.label for t in two.targets] == ["t₁", "t₂"]
    assert [n.label for n in two.nets] == [f"net{k}" for k in "₁₂₃₄₅"]


def test_sample_graph_leaves_this_samples_gradients_in_the_model() -> None:
    """Each call starts from zero: ∂E/∂b3 = δ3 of this sample, not a sum over calls."""
    model = worked_example(w22=0.9)
    sample_graph(model, [0.5, 0.1], 0.6)
    sample_graph(model, [0.5, 0.1], 0.6)
    assert model.layers[1].neurons[0].b.grad == pytest.approx(by_hand()["d3"], rel=1e-12)


def test_sample_graph_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidTypeError, match="MLP"):
        sample_graph("model", [0.5, 0.1], 0.6)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="x must be a list"):
        sample_graph(worked_example(), "ab", 0.6)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="1 outputs but 2 target"):
        sample_graph(worked_example(), [0.5, 0.1], [0.6, 0.1])


def test_sample_graph_takes_a_numpy_row_and_target() -> None:
    np = pytest.importorskip("numpy")
    sample = sample_graph(worked_example(w22=0.9), np.array([0.5, 0.1]), np.float64(0.6))
    assert sample.deltas == pytest.approx([by_hand()["d1"], by_hand()["d2"], by_hand()["d3"]], rel=1e-12)


def test_the_output_error_is_named_e_for_the_difference_the_loss_forms() -> None:
    """mse forms ŷ − t, sse_half t − ŷ (nn/losses.py): each difference is the node named e (eₖ with several outputs)."""
    sample = sample_graph(worked_example(w22=0.9), [0.5, 0.1], 0.6)
    (e,) = sample.error.parents
    assert e.label == "e" and [p.label for p in e.parents] == ["ŷ", "t"]
    assert e.data == pytest.approx(by_hand()["y"] - 0.6, rel=1e-12)
    half = sample_graph(worked_example(w22=0.9), [0.5, 0.1], 0.6, loss=nn.losses.sse_half)
    named = [v for v in topological_order(half.error) if v.label == "e"]
    assert len(named) == 1 and [p.label for p in named[0].parents] == ["t", "ŷ"]
    two = sample_graph(nn.MLP(2, [3, 2], seed=1), [1.0, 2.0], [1.0, 0.0])
    errors = [v for v in topological_order(two.error) if v.label.startswith("e")]
    assert [(e.label, [p.label for p in e.parents]) for e in errors] in (
        [("e₁", ["ŷ₁", "t₁"]), ("e₂", ["ŷ₂", "t₂"])],
        [("e₂", ["ŷ₂", "t₂"]), ("e₁", ["ŷ₁", "t₁"])],
    )
    assert [step.equation for step in autograd.walkthrough(sample.error).steps][:2] == ["E = e^2", "e = ŷ - t"]


def test_a_class_index_target_is_one_node_t_from_which_cross_entropy_selects() -> None:
    """K = 3 linear outputs and the class t = 2: E = −log softmax(ŷ)_t, so by hand
    δ_k = ∂E/∂net_k of output k = softmax(ŷ)_k − [k = t] (the output nets are the ŷ)."""
    model = nn.MLP(2, [3, 3], output_activation="linear", seed=4)
    sample = sample_graph(model, [0.3, -0.8], 2, loss=nn.losses.cross_entropy)
    logits = [y.data for y in sample.activations[-3:]]
    total = sum(math.exp(z) for z in logits)
    softmax = [math.exp(z) / total for z in logits]
    assert sample.error.data == pytest.approx(-math.log(softmax[2]), rel=1e-12)
    assert sample.deltas[-3:] == pytest.approx([softmax[0], softmax[1], softmax[2] - 1.0], rel=1e-12, abs=1e-15)
    assert [t.label for t in sample.targets] == ["t"] and sample.targets[0].data == 2.0
    assert [y.label for y in sample.activations[-3:]] == ["ŷ₁ = net₄", "ŷ₂ = net₅", "ŷ₃ = net₆"]
    assert sample.targets[0] in topological_order(sample.error)  # the class is in the graph
    with pytest.raises(InvalidArgumentError, match="3 outputs but 1 target"):
        sample_graph(model, [0.3, -0.8], 2)  # mse takes one number per output
