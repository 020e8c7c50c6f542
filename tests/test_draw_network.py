"""`nn.draw_network`: circles for inputs and neurons, one arrow per weight, width by |w|,
colour by sign, gradients on request; checked in the DOT source and in a real SVG.

The network is the worked example's 2-2-1 (w_ij: hidden neuron i, input j):
w11=0.4 w12=0.3 w21=0.6 w22=0.9, w31=0.5 w32=0.7, b1=0.1 b2=0.2 b3=0.3, with w22
flipped to -0.9 so that both signs appear. Expected widths follow the documented
rule width = 0.4 + 3.6·|w| / max|w| with max|w| = 0.9.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_module

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError
from nn.draw import NEGATIVE_WEIGHT, POSITIVE_WEIGHT, draw_network

require_module("graphviz", extra="viz")

WEIGHTS = {
    "L1.N0.w1": 0.4, "L1.N0.w2": 0.3, "L1.N0.b": 0.1,
    "L1.N1.w1": 0.6, "L1.N1.w2": -0.9, "L1.N1.b": 0.2,
    "L2.N0.w1": 0.5, "L2.N0.w2": 0.7, "L2.N0.b": 0.3,
}  # fmt: skip
EDGE = re.compile(r'^\s*("?[\w.]+"?) -> ("?[\w.]+"?) \[(.*)\]$')
ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def worked_example() -> nn.MLP:
    model = nn.MLP(2, [2, 1], activation="sigmoid", seed=0)
    for p in model.parameters():
        p.data = WEIGHTS[p.label]
    return model


def edges(source: str) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for line in source.splitlines():
        match = EDGE.match(line)
        if match:
            attributes = {k: v.strip('"') for k, v in ATTRIBUTE.findall(match.group(3))}
            found[(match.group(1).strip('"'), match.group(2).strip('"'))] = attributes
    return found


def test_one_arrow_per_weight_from_inputs_and_previous_layer() -> None:
    drawn = edges(draw_network(worked_example()).source)
    assert set(drawn) == {
        ("x1", "L1.N0"), ("x2", "L1.N0"), ("x1", "L1.N1"), ("x2", "L1.N1"),
        ("L1.N0", "L2.N0"), ("L1.N1", "L2.N0"),
    }  # fmt: skip
    assert drawn[("x2", "L1.N1")]["tooltip"] == "L1.N1.w2 = -0.9"


def test_arrow_width_grows_with_abs_weight_and_colour_shows_sign() -> None:
    drawn = edges(draw_network(worked_example()).source)
    assert float(drawn[("x2", "L1.N1")]["penwidth"]) == pytest.approx(4.0, abs=0.005)  # |w| = max
    assert float(drawn[("x1", "L1.N0")]["penwidth"]) == pytest.approx(0.4 + 3.6 * 0.4 / 0.9, abs=0.005)
    assert float(drawn[("x2", "L1.N0")]["penwidth"]) == pytest.approx(0.4 + 3.6 * 0.3 / 0.9, abs=0.005)
    assert drawn[("x2", "L1.N1")]["color"] == NEGATIVE_WEIGHT
    assert drawn[("L1.N0", "L2.N0")]["color"] == POSITIVE_WEIGHT
    assert "label" not in drawn[("x1", "L1.N0")]


def test_neurons_show_bias_and_layers_show_activation() -> None:
    source = draw_network(worked_example()).source
    assert '"L1.N1" [label="L1.N1\\nb 0.2"' in source
    assert 'label="L1: hidden, φ = sigmoid"' in source and 'label="L2: output, φ = sigmoid"' in source
    assert re.search(r"x1 \[label=x1", source) and re.search(r"x2 \[label=x2", source)


def test_show_grad_puts_each_gradient_on_its_arrow() -> None:
    """The gradients written are the parameters' .grad: set here to known numbers."""
    model = worked_example()
    for k, p in enumerate(model.parameters()):
        p.grad = 0.001 * (k + 1)
    source = draw_network(model, show_grad=True).source
    drawn = edges(source)
    assert drawn[("x1", "L1.N0")]["label"] == "grad 0.001"  # L1.N0.w1 is parameter 1
    assert drawn[("x2", "L1.N1")]["label"] == "grad 0.005"  # L1.N1.w2 is parameter 5
    assert drawn[("L1.N1", "L2.N0")]["label"] == "grad 0.008"
    assert '"L2.N0" [label="L2.N0\\nb 0.3\\ngrad 0.009"' in source


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidTypeError, match="MLP"):
        draw_network([1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="rankdir"):
        draw_network(worked_example(), rankdir="BT")
    with pytest.raises(InvalidArgumentError, match="6 weights.*max_edges=5"):
        draw_network(worked_example(), max_edges=5)


def test_svg_render_shows_neurons_and_gradients(dot_program: str, tmp_path: Path) -> None:
    model = worked_example()
    loss = (model([0.5, 0.1]) - 0.6) ** 2
    loss.backward()
    out = Path(draw_network(model, show_grad=True).render(tmp_path / "net", format="svg"))
    root = ET.parse(out).getroot()
    texts = [(t.text or "").strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for expected in ("x1", "x2", "L1.N0", "L1.N1", "L2.N0", "b 0.3", "L2: output, φ = sigmoid"):
        assert expected in texts, expected
    assert sum(1 for t in texts if t.startswith("grad ")) == 6 + 3  # 6 weights, 3 biases
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in root.iter("{http://www.w3.org/2000/svg}a")]
    assert "L1.N1.w2 = -0.9" in titles
