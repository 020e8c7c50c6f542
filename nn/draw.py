"""`draw_network`: the textbook picture of an MLP, one circle per neuron, one arrow per weight.

The computation graph of a loss (`autograd.draw_graph`) shows every operation;
this view shows only the architecture and the current weights: arrow width
grows with |w|, red for w > 0, blue for w < 0 (the colours of `draw_graph`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autograd.draw import digraph_class
from autograd.errors import InvalidArgumentError, InvalidTypeError

from .module import MLP

if TYPE_CHECKING:
    import graphviz

POSITIVE_WEIGHT = "#b2182b"
NEGATIVE_WEIGHT = "#2166ac"
ZERO_WEIGHT = "#9e9e9e"
NEURON_FILLS = {"input": "#eeeeee", "hidden": "#fff8e1", "output": "#e8f5e9"}
#: Arrow widths (points) for w = 0 and for the largest |w| of the network.
MIN_WIDTH, MAX_WIDTH = 0.4, 4.0


def draw_network(
    model: MLP,
    show_grad: bool = False,
    precision: int = 3,
    rankdir: str = "LR",
    max_edges: int = 2000,
) -> graphviz.Digraph:
    """The network ``model`` as circles (inputs x_j, then each layer's neurons) and weighted arrows.

    The arrow from x_j (or from neuron i of the previous layer) to neuron
    ``Lk.Nn`` is the weight ``Lk.Nn.wj``: its width is
    ``MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH)·|w| / max|w|``, its colour the sign
    of w. Each neuron shows its bias b; each layer its activation φ. Hovering
    an arrow in SVG shows the weight's name and value.

    Args:
        model: an `nn.MLP`.
        show_grad: write each weight's ∂E/∂w (its ``.grad``, after
            ``backward()``) on its arrow, and each bias's on its neuron.
        precision: significant digits of the numbers shown.
        rankdir: ``"LR"`` (inputs on the left) or ``"TB"`` (inputs on top).
        max_edges: the most weights drawn; a larger network raises
            `InvalidArgumentError` instead of keeping Graphviz busy.
    """
    if not isinstance(model, MLP):
        raise InvalidTypeError(f"draw_network: expected an nn.MLP, got {type(model).__name__}")
    if rankdir not in ("LR", "TB"):
        raise InvalidArgumentError(f"draw_network: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
        raise InvalidArgumentError(f"draw_network: precision must be an int >= 1, got {precision!r}")
    edges = sum(layer.nin * layer.nout for layer in model.layers)
    if edges > max_edges:
        raise InvalidArgumentError(
            f"draw_network: the network has {edges} weights, more than max_edges={max_edges}; "
            "pass a larger max_edges= to draw it anyway"
        )
    def number(x: float) -> str:
        return f"{x:.{precision}g}"

    largest = max((abs(w.data) for layer in model.layers for n in layer.neurons for w in n.w), default=0.0)
    graph = digraph_class()(
        name="network",
        graph_attr={"rankdir": rankdir, "ranksep": "1.4", "nodesep": "0.3", "splines": "line", "fontname": "Helvetica"},
        node_attr={"shape": "circle", "style": "filled", "fontname": "Helvetica", "fontsize": "10", "width": "0.8"},
        edge_attr={"arrowsize": "0.5", "fontname": "Helvetica", "fontsize": "9"},
    )
    previous = [f"x{j + 1}" for j in range(model.nin)]
    with graph.subgraph(name="cluster_inputs", graph_attr=_column_style("inputs")) as column:
        for name in previous:
            column.node(name, label=name, fillcolor=NEURON_FILLS["input"])
    last = len(model.layers)
    for k, layer in enumerate(model.layers, start=1):
        kind = "output" if k == last else "hidden"
        title = f"L{k}: {'output' if k == last else 'hidden'}, φ = {layer.activation}"
        with graph.subgraph(name=f"cluster_L{k}", graph_attr=_column_style(title)) as column:
            for neuron in layer.neurons:
                lines = [neuron.label, f"b {number(neuron.b.data)}"]
                if show_grad:
                    lines.append(f"grad {number(_grad(neuron.b))}")
                column.node(neuron.label, label="\\n".join(lines), fillcolor=NEURON_FILLS[kind])
        for neuron in layer.neurons:
            for source, w in zip(previous, neuron.w):
                attributes: dict[str, Any] = {
                    "penwidth": f"{_width(w.data, largest):.2f}",
                    "color": _weight_color(w.data),
                    "tooltip": f"{w.label} = {number(w.data)}",
                }
                if show_grad:
                    # With many arrows crossing, a label joined to its arrow (decorate) stays readable.
                    attributes.update(label=f"grad {number(_grad(w))}", fontcolor=attributes["color"], decorate="true")
                graph.edge(source, neuron.label, **attributes)
        previous = [neuron.label for neuron in layer.neurons]
    return graph


def _column_style(label: str) -> dict[str, str]:
    return {"label": label, "style": "rounded,dashed", "color": "#bdbdbd", "fontsize": "11", "rank": "same"}


def _width(w: float, largest: float) -> float:
    return MIN_WIDTH if largest == 0.0 else MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * abs(w) / largest


def _weight_color(w: float) -> str:
    return POSITIVE_WEIGHT if w > 0 else NEGATIVE_WEIGHT if w < 0 else ZERO_WEIGHT


def _grad(parameter: Any) -> float:
    grad = parameter.grad
    return float(grad.data if hasattr(grad, "data") else grad)
