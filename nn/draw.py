"""The textbook's pictures of an MLP.

`draw_sample` (built on `sample_graph`): the computation graph of one sample's
error, every node named as a textbook names it (x₁, net, h, ŷ, t, E, δ); the
drawing itself is `autograd.draw_graph`'s, `nn` only adds the names.

`draw_network`: the architecture, one circle per neuron, one arrow per weight;
arrow width grows with |w|, red for w > 0, blue for w < 0 (the colours of
`draw_graph`), each arrow marked with its weight (and gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autograd import Value, topological_order
from autograd.draw import digraph_class, dot_text, draw_graph, format_number
from autograd.errors import InvalidArgumentError, InvalidTypeError
from autograd.value import as_float

from .losses import CLASS_INDEX_LOSSES, mse
from .module import MLP

if TYPE_CHECKING:
    import graphviz

#: What the names of `SampleGraph.draw` mean, under the picture.
CAPTION = "grad = ∂E/∂(node);  δᵢ = ∂E/∂netᵢ, the error term of neuron i"
_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def subscript(n: int) -> str:
    """``12`` -> ``"₁₂"``."""
    return str(n).translate(_SUBSCRIPTS)


@dataclass
class SampleGraph:
    """The graph of one sample's error E, after ``E.backward()``, its nodes named as in a textbook.

    Neurons are numbered 1, 2, … through the network, layer after layer (the
    worked example's numbering: hidden neurons 1 and 2, output neuron 3); the
    lists below are in that order.

    Attributes:
        error: E, the loss of this one sample (a Value labelled ``E``).
        inputs: x₁, x₂, … (constants).
        targets: t (or t₁, t₂, …) (constants).
        nets: net_i = Σ_j w_ij·x_j + b_i of each neuron (labelled ``net₁``, …).
        activations: h_i = φ(net_i) (labelled ``h₁``, …; the outputs ``ŷ``, or
            ``ŷ₁``, … with several).
        neurons: the label of each neuron's parameters (``"L1.N0"``), in the same order.
        deltas: δ_i = ∂E/∂net_i, the gradient of each net (the "error term" of neuron i).
    """

    error: Value
    inputs: list[Value]
    targets: list[Value]
    nets: list[Value]
    activations: list[Value]
    neurons: list[str]
    deltas: list[float] = field(default_factory=list)

    def draw(self, **options: Any) -> graphviz.Digraph:
        """`autograd.draw_graph` of E with clusters per neuron, colours by gradient and δ_i on each net.

        ``options`` go to `draw_graph` (e.g. ``edge_labels="local"``,
        ``legend=False``, ``rankdir="TB"``, ``precision=3``).
        """
        grad_names = {net: f"δ{subscript(i)}" for i, net in enumerate(self.nets, start=1)}
        settings: dict[str, Any] = {
            "color_by": "grad", "cluster": True, "grad_names": grad_names,
            "caption": CAPTION,
        }  # fmt: skip
        settings.update(options)
        return draw_graph(self.error, **settings)


def sample_graph(
    model: MLP,
    x: Sequence[float],
    t: float | Sequence[float],
    loss: Callable[[Any, Any], Value] = mse,
) -> SampleGraph:
    """Run ``model`` on one sample (x, t), back-propagate ``loss``, and name every node a textbook names.

    E = loss(ŷ, t) for ŷ = model(x); t is a number, one per output, or, with a loss that
    takes a class index (`nn.losses.cross_entropy` of K outputs), the sample's class: a
    node t holding it, from which the loss selects its logit. The model's parameters get their
    gradients of this one sample (``.grad`` is overwritten: call
    ``model.zero_grad()`` before training on). Names go on the nodes of this
    sample's graph only (x₁, net₁, h₁, ŷ, t, the output error e = ŷ − t or t − ŷ when
    the loss forms it, E); the parameters keep theirs
    (``L1.N0.w1``).

    >>> model = MLP(2, [2, 1], seed=0)
    >>> sample = sample_graph(model, [0.5, 0.1], 0.6)
    >>> [v.label for v in sample.nets], sample.activations[-1].label, sample.error.label
    (['net₁', 'net₂', 'net₃'], 'ŷ', 'E')
    """
    if not isinstance(model, MLP):
        raise InvalidTypeError(f"sample_graph: expected an nn.MLP, got {type(model).__name__}")
    if isinstance(x, (str, bytes)) or not hasattr(x, "__iter__"):
        raise InvalidTypeError(f"sample_graph: x must be a list of {model.nin} numbers, got {type(x).__name__}")
    x = list(x)  # a list, a tuple or a numpy row
    many = not isinstance(t, (int, float)) or isinstance(t, bool)
    targets = list(t) if many else [t]  # type: ignore[arg-type]
    count = len(targets)
    # A class index for K outputs (cross_entropy): one target node, the class, for all K outputs.
    class_index = loss in CLASS_INDEX_LOSSES and not many and model.nouts[-1] > 1
    inputs = [
        Value(as_float(xj, f"sample_graph (x[{j}])"), requires_grad=False, label=f"x{subscript(j + 1)}")
        for j, xj in enumerate(x)
    ]
    target_values = [
        Value(as_float(tk, f"sample_graph (t[{k}])"), requires_grad=False, label="t" + _index(k + 1, count))
        for k, tk in enumerate(targets)
    ]
    nets: list[Value] = []
    activations: list[Value] = []
    neurons: list[str] = []
    values: Any = inputs
    for layer in model.layers:
        outputs = layer(values)
        for neuron, h in zip(layer.neurons, outputs):
            nets.append(_net_of(h, neuron.b))
            activations.append(h)
            neurons.append(neuron.label)
        values = outputs
    predictions = values
    if class_index:
        count = len(predictions)  # ŷ₁ … ŷ_K, and the one target t (the class)
        target_values[0].label = "t"
        error = loss(predictions, target_values[0])
    elif len(predictions) != count:
        raise InvalidArgumentError(
            f"sample_graph: the model has {len(predictions)} outputs but {count} target(s) were given"
        )
    else:
        error = loss(predictions if many else predictions[0], target_values if many else target_values[0])
    for i, (net, h) in enumerate(zip(nets, activations), start=1):
        net.label = f"net{subscript(i)}"
        if h is not net:
            h.label = f"h{subscript(i)}"
    for k, y in enumerate(predictions):
        name = "ŷ" + _index(k + 1, count)
        y.label = f"{name} = {y.label}" if y.label.startswith("net") else name  # a linear output is its net
    error.label = "E"
    _name_output_errors(error, predictions, target_values)
    model.zero_grad()
    error.backward()
    return SampleGraph(error, inputs, target_values, nets, activations, neurons, [net.grad for net in nets])


def _name_output_errors(error: Value, predictions: list[Value], targets: list[Value]) -> None:
    """Name the loss's differences of ŷₖ and tₖ eₖ, the output error, if the loss forms them.

    mse forms ŷ − t, sse_half t − ŷ (as the textbook); the node's equation shows which.
    Other unnamed nodes of the loss keep the automatic names of the views (v1, v2, …).
    """
    count = len(predictions)
    pairs: dict[tuple[int, int], int] = {}
    for k, (y, t) in enumerate(zip(predictions, targets), start=1):
        pairs[id(y), id(t)] = pairs[id(t), id(y)] = k
    for node in topological_order(error):
        if node.label or node._rule is None or node._rule.name != "sub" or len(node.parents) != 2:
            continue
        output = pairs.get((id(node.parents[0]), id(node.parents[1])))
        if output is not None:
            node.label = "e" + _index(output, count)


def _index(k: int, count: int) -> str:
    """A subscript when there are several (t₁, t₂), none for one (t)."""
    return subscript(k) if count > 1 else ""


def _net_of(h: Value, bias: Value) -> Value:
    """The neuron's net input: the node of its output's graph that adds the bias."""
    for node in reversed(topological_order(h)):
        if any(parent is bias for parent in node.parents):
            return node
    return h


def draw_sample(
    model: MLP,
    x: Sequence[float],
    t: float | Sequence[float],
    loss: Callable[[Any, Any], Value] = mse,
    **options: Any,
) -> graphviz.Digraph:
    """The labelled graph of one sample's error: ``sample_graph(model, x, t, loss).draw(**options)``.

    Leaves the model's gradients of this sample in ``.grad`` (see `sample_graph`).
    """
    return sample_graph(model, x, t, loss).draw(**options)

POSITIVE_WEIGHT = "#b2182b"
NEGATIVE_WEIGHT = "#2166ac"
ZERO_WEIGHT = "#9e9e9e"
NEURON_FILLS = {"input": "#eeeeee", "hidden": "#fff8e1", "output": "#e8f5e9"}
#: Arrow widths (points) for w = 0 and for the largest |w| of the network.
MIN_WIDTH, MAX_WIDTH = 0.4, 4.0


#: Without ``show_weights=``, arrows carry their numbers up to this many weights (beyond, they would not be readable).
LABELLED_WEIGHTS = 60


def draw_network(
    model: MLP,
    show_grad: bool = False,
    precision: int = 3,
    rankdir: str = "LR",
    max_edges: int = 2000,
    show_weights: bool | None = None,
) -> graphviz.Digraph:
    """The network ``model`` as circles (inputs x_j, then each layer's neurons) and weighted arrows.

    The arrow from x_j (or from neuron i of the previous layer) to neuron
    ``Lk.Nn`` is the weight ``Lk.Nn.wj``: its width is
    ``MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH)·|w| / max|w|``, its colour the sign
    of w. The numbers of a weight sit in a small box on its own arrow (not
    beside it, where arrows cross): ``w`` and, with ``show_grad``, ``grad``.
    Each neuron shows its bias b; each layer its activation φ. Hovering an
    arrow in SVG shows the weight's name and value.

    Args:
        model: an `nn.MLP`.
        show_grad: write each weight's ∂E/∂w (its ``.grad``, after
            ``backward()``) on its arrow, and each bias's on its neuron.
        precision: significant digits of the numbers shown.
        rankdir: ``"LR"`` (inputs on the left) or ``"TB"`` (inputs on top).
        max_edges: the most weights drawn; a larger network raises
            `InvalidArgumentError` instead of keeping Graphviz busy.
        show_weights: write each weight's value on its arrow; by default,
            when the network has at most `LABELLED_WEIGHTS` weights.

    Raises:
        InvalidTypeError: ``model`` is not an MLP, or an option has a wrong type.
        InvalidArgumentError: an option has a wrong value, or the network is over ``max_edges``.
    """
    if not isinstance(model, MLP):
        raise InvalidTypeError(f"draw_network: expected an nn.MLP, got {type(model).__name__}")
    if rankdir not in ("LR", "TB"):
        raise InvalidArgumentError(f"draw_network: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    _check_int("precision", precision)
    _check_int("max_edges", max_edges)
    for name, flag in (("show_grad", show_grad), ("show_weights", show_weights)):
        if not isinstance(flag, bool) and not (name == "show_weights" and flag is None):
            raise InvalidTypeError(f"draw_network: {name} must be True or False, got {type(flag).__name__} {flag!r}")
    edges = sum(layer.nin * layer.nout for layer in model.layers)
    if edges > max_edges:
        raise InvalidArgumentError(
            f"draw_network: the network has {edges} weights, more than max_edges={max_edges}; "
            "pass a larger max_edges= to draw it anyway"
        )
    labelled = edges <= LABELLED_WEIGHTS if show_weights is None else show_weights

    def number(x: float) -> str:
        return format_number(x, precision)

    largest = max((abs(w.data) for layer in model.layers for n in layer.neurons for w in n.w), default=0.0)
    graph = digraph_class()(
        name="network",
        graph_attr={
            "rankdir": rankdir, "ranksep": "0.5" if labelled else "1.2", "nodesep": "0.15",
            "fontname": "Helvetica", "newrank": "true",
        },  # fmt: skip
        node_attr={"shape": "circle", "style": "filled", "fontname": "Helvetica", "fontsize": "10", "width": "0.7"},
        edge_attr={"arrowsize": "0.5", "fontname": "Helvetica", "fontsize": "9"},
    )
    previous = [f"x{j + 1}" for j in range(model.nin)]
    with graph.subgraph(name="cluster_inputs", graph_attr=_column_style("inputs")) as column:
        for j, name in enumerate(previous, start=1):
            column.node(name, label=f"x{subscript(j)}", fillcolor=NEURON_FILLS["input"])
    last = len(model.layers)
    for k, layer in enumerate(model.layers, start=1):
        kind = "output" if k == last else "hidden"
        title = f"L{k}: {'output' if k == last else 'hidden'}, φ = {layer.activation}"
        ids = [f"L{k}N{i}" for i in range(len(layer.neurons))]
        with graph.subgraph(name=f"cluster_L{k}", graph_attr=_column_style(dot_text(title))) as column:
            for node_id, neuron in zip(ids, layer.neurons):
                lines = [neuron.label, f"b {number(neuron.b.data)}"]
                if show_grad:
                    lines.append(f"grad {number(_grad(neuron.b))}")
                label = "\\n".join(str(dot_text(line)) for line in lines)
                column.node(node_id, label=label, fillcolor=NEURON_FILLS[kind], tooltip=dot_text(neuron.label))
        for node_id, neuron in zip(ids, layer.neurons):
            for j, (source, w) in enumerate(zip(previous, neuron.w), start=1):
                style: dict[str, Any] = {"penwidth": f"{_width(w.data, largest):.2f}", "color": _weight_color(w.data)}
                tooltip = dot_text(f"{w.label} = {number(w.data)}")
                if not labelled:
                    graph.edge(source, node_id, tooltip=tooltip, **style)
                    continue
                # The weight's numbers in a box on its arrow: the arrow runs into the box and out of it.
                box = f"{node_id}w{j}"
                lines = [f"w {number(w.data)}"] + ([f"grad {number(_grad(w))}"] if show_grad else [])
                graph.node(
                    box, label="\\n".join(lines), shape="box", style="rounded,filled", fillcolor="#ffffff",
                    color=style["color"], fontcolor=style["color"], fontsize="8", width="0", height="0",
                    margin="0.04,0.02", penwidth="0.8", tooltip=tooltip,
                )
                graph.edge(source, box, arrowhead="none", tooltip=tooltip, **style)
                graph.edge(box, node_id, tooltip=tooltip, **style)
        previous = ids
    return graph


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"draw_network: {name} must be an int >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise InvalidArgumentError(f"draw_network: {name} must be an int >= 1, got {value!r}")


def _column_style(label: Any) -> dict[str, Any]:
    return {"label": label, "style": "rounded,dashed", "color": "#bdbdbd", "fontsize": "11", "rank": "same"}


def _width(w: float, largest: float) -> float:
    return MIN_WIDTH if largest == 0.0 else MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * abs(w) / largest


def _weight_color(w: float) -> str:
    return POSITIVE_WEIGHT if w > 0 else NEGATIVE_WEIGHT if w < 0 else ZERO_WEIGHT


def _grad(parameter: Any) -> float:
    grad = parameter.grad
    return float(grad.data if hasattr(grad, "data") else grad)
