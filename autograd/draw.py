"""`draw_graph`: the computation graph below a Value as a Graphviz picture.

Owns the picture only: node and edge styles, the gradient colour scale, and the
grouping of a model's nodes into neurons and layers, read from parameter labels
(never from `nn`, which this module does not import). Graphviz is optional:
building the DOT source needs the `graphviz` package, rendering needs `dot`.
"""

from __future__ import annotations

import html
import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Union

from .backward import topological_order
from .errors import AutogradError, InvalidArgumentError, InvalidTypeError
from .value import Value

if TYPE_CHECKING:
    import graphviz

ClusterMode = Union[bool, Literal["collapse"]]

INSTALL_VIZ = "pip install 'textbook-autograd[viz]'"
INSTALL_DOT = (
    "Graphviz's `dot` program is needed to render the graph (the DOT source is ready: see .source). "
    "Install Graphviz and make sure `dot` is on PATH: `apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS), `conda install -c conda-forge graphviz`, "
    "or the installer from https://graphviz.org/download/ (Windows)."
)

# ColorBrewer RdBu: reds for positive gradients, blues for negative ones, from
# the faintest (smallest |grad|) to the darkest (the graph's largest |grad|).
POSITIVE_COLORS = ("#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f")
NEGATIVE_COLORS = ("#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061")
ZERO_COLOR = "#f7f7f7"
NONFINITE_COLOR = "#ffeb3b"
LEVELS = len(POSITIVE_COLORS)

# How the kind of a value shows, independently of its fill colour.
KIND_STYLES: dict[str, dict[str, str]] = {
    "parameter": {"shape": "Mrecord", "penwidth": "2", "color": "#1b5e20", "style": "filled"},
    "constant": {"shape": "record", "color": "#757575", "style": "filled,dashed"},
    "value": {"shape": "record", "style": "filled"},
}
KIND_FILLS = {"parameter": "#e8f5e9", "constant": "#eeeeee", "value": "#ffffff"}
OP_STYLE = {
    "shape": "circle",
    "width": "0.3",
    "margin": "0.03",
    "fontsize": "11",
    "style": "filled",
    "fillcolor": "#fff8e1",
}


def draw_graph(
    root: Value,
    rankdir: str = "LR",
    precision: int = 4,
    color_by: str | None = None,
    cluster: ClusterMode = False,
    max_nodes: int = 500,
) -> graphviz.Digraph:
    """The graph that computed ``root``, as a ``graphviz.Digraph``.

    Each Value is a record ``label | data | grad`` (``precision`` significant
    digits); each operation is a small circle showing its symbol from the rule
    table, with an edge from every input and one to its result. Parameters
    (leaves that require grad) have a rounded, thick green border; constants
    (leaves that do not) a dashed grey one.

    Args:
        root: the output Value (typically a loss).
        rankdir: ``"LR"`` (inputs on the left) or ``"TB"`` (inputs on top).
        precision: significant digits of data and grad.
        color_by: ``"grad"`` fills each Value by the sign (red +, blue -) and
            order of magnitude of its gradient relative to the graph's
            largest, and adds a legend; None fills by kind only.
        cluster: True draws the neurons and layers of a model as labelled
            boxes; ``"collapse"`` draws each neuron as a single node. See
            `neuron_groups` for how nodes are assigned.
        max_nodes: the most nodes (Values plus operations, as drawn) allowed;
            larger graphs raise instead of keeping Graphviz busy for minutes.
            The count stops at the first node over the limit, except with
            ``cluster="collapse"``, which must walk the whole graph to find
            its neurons and then counts what it would draw.

    Raises:
        InvalidArgumentError: the graph is larger than ``max_nodes`` (checked
            before anything is drawn), or an option is unknown.
        ImportError: the `graphviz` package is missing.

    The result displays inline in Jupyter; ``.render("loss", format="svg")``
    writes a file and needs Graphviz's ``dot`` program.
    """
    if not isinstance(root, Value):
        raise InvalidTypeError(f"draw_graph: root must be a Value, got {type(root).__name__}")
    _check_options(rankdir, precision, color_by, cluster, max_nodes)
    if cluster == "collapse":
        order = topological_order(root)
        groups = neuron_groups(order)
        drawn = _collapsed_node_count(order, groups)
        if drawn > max_nodes:
            raise _too_large(max_nodes, f"{drawn} nodes even with one box per neuron", collapse_helps=False)
    else:
        _check_size(root, max_nodes)
        order = topological_order(root)
        groups = neuron_groups(order) if cluster else {}
    drawing = _GraphDrawing(rankdir, precision, order, groups, collapse=cluster == "collapse")
    if color_by == "grad":
        drawing.color_by_grad()
    return drawing.build()


def _check_options(rankdir: str, precision: int, color_by: str | None, cluster: object, max_nodes: int) -> None:
    if rankdir not in ("LR", "TB"):
        raise InvalidArgumentError(f"draw_graph: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
        raise InvalidArgumentError(f"draw_graph: precision must be an int >= 1, got {precision!r}")
    if color_by not in (None, "grad"):
        raise InvalidArgumentError(f"draw_graph: color_by must be None or 'grad', got {color_by!r}")
    if cluster not in (False, True, "collapse") or not isinstance(cluster, (bool, str)):
        raise InvalidArgumentError(f"draw_graph: cluster must be False, True or 'collapse', got {cluster!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise InvalidArgumentError(f"draw_graph: max_nodes must be an int >= 1, got {max_nodes!r}")


def _check_size(root: Value, max_nodes: int) -> None:
    """Count drawn nodes (a Value, plus its operation if it has one), stopping past ``max_nodes``."""
    seen = {id(root)}
    stack = [root]
    count = 0
    while stack:
        node = stack.pop()
        count += 1 if node.is_leaf else 2
        if count > max_nodes:
            raise _too_large(max_nodes, f"more than {max_nodes} nodes", collapse_helps=True)
        for parent in node.parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)


def _too_large(max_nodes: int, found: str, collapse_helps: bool) -> InvalidArgumentError:
    advice = f"pass max_nodes= a larger number (now {max_nodes}) if you really want to wait for Graphviz"
    if collapse_helps:
        advice += ", or cluster='collapse' to draw each neuron of a model as one box"
    return InvalidArgumentError(
        f"draw_graph: the graph has {found} (Values and operations); {advice}, "
        "or draw a smaller expression (e.g. the loss of one sample)."
    )


# -- grouping nodes into neurons and layers ------------------------------------


def parameter_group(node: Value) -> str | None:
    """The module path of a parameter: ``"L2.N0"`` for a leaf labelled ``"L2.N0.w1"``.

    Only leaves that require grad and carry a dotted label count as parameters
    of a module; the label minus its last part names the neuron, and each
    shorter prefix an enclosing module (``"L2"``, the layer).
    """
    if not node.is_leaf or not node.requires_grad or "." not in node.label:
        return None
    return node.label.rsplit(".", 1)[0]


def neuron_groups(order: list[Value]) -> dict[int, str]:
    """Assign nodes to neurons (``id(node) -> "L1.N0"``), from parameter labels alone.

    ``order`` is topological (parents first). A neuron computes
    ``act(Σ_i w_i·x_i + b)``; its nodes are found by three rules:

    1. A parameter belongs to the neuron named by its label (`parameter_group`).
    2. An operation with parameters among its direct inputs belongs to their
       neuron if they all name the same one (``w·x``, ``Σ(…, b)``); inputs
       coming from other neurons (``x`` = the previous layer's output) do not
       count. Such a node, and a sum of only such nodes (``w1·x1 + w2·x2``
       when there is no bias), is the neuron's *linear part*.
    3. An operation without direct parameters belongs to neuron P when all of
       its inputs belong to P and one of them is in P's linear part: the
       activation ``act(z)``, or ``z·σ(z)``.

    Everything else stays ungrouped; in particular the loss, whose inputs mix
    the output neuron with targets or constants (``(ŷ - y)²``), and any node
    downstream of the activation. Limits: an operation applied to a linear
    output neuron alone (``exp(z)`` for a softmax) is taken as its activation.
    """
    groups: dict[int, str] = {}
    linear: set[int] = set()
    for node in order:
        parents = node.parents
        if not parents:
            path = parameter_group(node)
            if path is not None:
                groups[id(node)] = path
            continue
        direct = {parameter_group(p) for p in parents if p.is_leaf} - {None}
        if direct:
            if len(direct) == 1:
                groups[id(node)] = direct.pop()  # type: ignore[assignment]
                linear.add(id(node))
            continue
        paths = {groups.get(id(p)) for p in parents}
        path = paths.pop() if len(paths) == 1 else None
        in_linear_part = [id(p) in linear for p in parents]
        if path is None or not any(in_linear_part):
            continue
        groups[id(node)] = path
        if len(parents) >= 2 and all(in_linear_part):
            linear.add(id(node))
    return groups


def _collapsed_node_count(order: list[Value], groups: dict[int, str]) -> int:
    ungrouped = sum(1 if node.is_leaf else 2 for node in order if id(node) not in groups)
    return ungrouped + len(set(groups.values()))


def _enclosing_paths(path: str) -> list[str]:
    """``"L1.N0"`` -> ``["L1", "L1.N0"]``: every module that contains the neuron."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# -- colours -------------------------------------------------------------------


class GradScale:
    """Fill colours for gradients: sign by hue, order of magnitude by depth.

    With ``top = ceil(log10(max |grad|))`` over the graph, level 5 (darkest)
    holds ``10^(top-1) < |grad| <= 10^top``, each lighter level one decade
    less, and level 1 everything nonzero up to ``10^(top-4)``: vanishing
    gradients fade, exploding ones show in the legend's numbers.
    """

    def __init__(self, grads: list[float]) -> None:
        magnitudes = [abs(g) for g in grads if math.isfinite(g) and g != 0.0]
        self.top = math.ceil(math.log10(max(magnitudes))) if magnitudes else 0

    def level(self, grad: float) -> int:
        """1 (faintest) to `LEVELS` (darkest) for a finite nonzero gradient."""
        decades_below_top = self.top - math.log10(abs(grad))
        return max(1, min(LEVELS, LEVELS - math.floor(decades_below_top)))

    def color(self, grad: float) -> str:
        if not math.isfinite(grad):
            return NONFINITE_COLOR
        if grad == 0.0:
            return ZERO_COLOR
        palette = POSITIVE_COLORS if grad > 0 else NEGATIVE_COLORS
        return palette[self.level(grad) - 1]

    def text_color(self, grad: float) -> str:
        """White on the two darkest levels, black elsewhere."""
        dark = math.isfinite(grad) and grad != 0.0 and self.level(grad) > LEVELS - 2
        return "#ffffff" if dark else "#000000"

    def bounds(self, level: int) -> str:
        """The magnitudes a level covers, e.g. ``"0.1 < |grad| ≤ 1"``."""
        upper = 10.0 ** (self.top - LEVELS + level)
        if level == 1:
            return f"0 < |grad| ≤ {upper:g}"
        return f"{upper / 10:g} < |grad| ≤ {upper:g}"

    def legend_label(self) -> str:
        """An HTML-like Graphviz label: one coloured row per level and sign, plus the kinds."""
        rows = ['<TR><TD COLSPAN="2"><B>fill: grad</B></TD></TR>']
        for sign, palette in (("+", POSITIVE_COLORS), ("−", NEGATIVE_COLORS)):
            for level in range(LEVELS, 0, -1):
                text = html.escape(f"{sign}  {self.bounds(level)}")
                rows.append(f'<TR><TD BGCOLOR="{palette[level - 1]}" WIDTH="24"></TD><TD ALIGN="LEFT">{text}</TD></TR>')
            if sign == "+":
                rows.append(f'<TR><TD BGCOLOR="{ZERO_COLOR}"></TD><TD ALIGN="LEFT">grad = 0</TD></TR>')
        rows.append(f'<TR><TD BGCOLOR="{NONFINITE_COLOR}"></TD><TD ALIGN="LEFT">nan or inf</TD></TR>')
        rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">rounded, thick green border: parameter</TD></TR>')
        rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">dashed grey border: constant</TD></TR>')
        return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">' + "".join(rows) + "</TABLE>>"


# -- building the DOT source ---------------------------------------------------


def _record_escape(text: str) -> str:
    """Escape the characters that structure a Graphviz record label."""
    for char in "\\{}|<>":
        text = text.replace(char, "\\" + char)
    return text


def _grad_float(node: Value) -> float:
    grad = node.grad
    return grad.data if isinstance(grad, Value) else float(grad)


def _kind(node: Value) -> str:
    if not node.is_leaf:
        return "value"
    return "parameter" if node.requires_grad else "constant"


class _GraphDrawing:
    """Collects the nodes and edges of one drawing, then writes them into a Digraph."""

    def __init__(
        self, rankdir: str, precision: int, order: list[Value], groups: dict[int, str], collapse: bool
    ) -> None:
        self.rankdir = rankdir
        self.precision = precision
        self.order = order
        self.groups = groups
        self.collapse = collapse
        self.scale: GradScale | None = None
        self.names = {id(node): f"v{i}" for i, node in enumerate(order)}

    def color_by_grad(self) -> None:
        self.scale = GradScale([_grad_float(node) for node in self.order])

    def record_label(self, fields: list[str]) -> str:
        label = " | ".join(_record_escape(field) for field in fields)
        # In a left-to-right layout the fields of a record stack vertically unless braced.
        return "{ " + label + " }" if self.rankdir == "LR" else label

    def number(self, x: float) -> str:
        return f"{x:.{self.precision}g}"

    def value_attributes(self, node: Value, kind: str) -> dict[str, str]:
        fields = [node.label] if node.label else []
        fields += [f"data {self.number(node.data)}", f"grad {self.number(_grad_float(node))}"]
        attributes = {"label": self.record_label(fields), **KIND_STYLES[kind]}
        if self.scale is None:
            attributes["fillcolor"] = KIND_FILLS[kind]
        else:
            attributes["fillcolor"] = self.scale.color(_grad_float(node))
            attributes["fontcolor"] = self.scale.text_color(_grad_float(node))
        return attributes

    def group_outputs(self) -> dict[str, dict[int, Value]]:
        """For each neuron, its nodes used outside it (or the root itself), by id."""
        outputs: dict[str, dict[int, Value]] = {}
        for node in self.order:
            for parent in node.parents:
                path = self.groups.get(id(parent))
                if path is not None and self.groups.get(id(node)) != path:
                    outputs.setdefault(path, {})[id(parent)] = parent
        root = self.order[-1]
        root_path = self.groups.get(id(root))
        if root_path is not None:
            outputs.setdefault(root_path, {})[id(root)] = root
        return outputs

    def build(self) -> graphviz.Digraph:
        graph = digraph_class()(
            name="autograd",
            graph_attr={"rankdir": self.rankdir, "fontname": "Helvetica", "nodesep": "0.25", "ranksep": "0.35"},
            node_attr={"fontname": "Helvetica", "fontsize": "10", "height": "0.3"},
            edge_attr={"arrowsize": "0.6", "color": "#555555"},
        )
        clusters: dict[str, Any] = {}

        def container(path: str | None) -> Any:
            if path is None:
                return graph
            for enclosing in _enclosing_paths(path):
                if enclosing not in clusters:
                    clusters[enclosing] = digraph_class()(
                        name=f"cluster_{enclosing}",
                        graph_attr={"label": enclosing, "style": "rounded", "color": "#9e9e9e", "fontsize": "11"},
                    )
            return clusters[path]

        boxes = self.draw_collapsed(container) if self.collapse else {}
        for node in self.order:
            key = id(node)
            if key in boxes:
                continue
            name = self.names[key]
            where = container(self.groups.get(key))
            where.node(name, **self.value_attributes(node, _kind(node)))
            if node.is_leaf:
                continue
            rule = node.rule
            where.node(name + "op", label=rule.symbol if rule is not None else "?", **OP_STYLE)
            where.edge(name + "op", name)
            for parent in node.parents:
                graph.edge(boxes.get(id(parent), self.names[id(parent)]), name + "op")
        for path in sorted(clusters, key=lambda p: (-p.count("."), _natural_key(p))):
            parent_path = path.rsplit(".", 1)[0] if "." in path else None
            (clusters[parent_path] if parent_path is not None else graph).subgraph(clusters[path])
        if self.scale is not None:
            with graph.subgraph(name="cluster_legend", graph_attr={"label": "legend", "color": "#bdbdbd"}) as legend:
                legend.node("legend", label=self.scale.legend_label(), shape="plaintext")
        return graph

    def draw_collapsed(self, container: Any) -> dict[int, str]:
        """One record per neuron (with its output when it has one); returns node id -> box name."""
        boxes = {key: f"neuron {path}" for key, path in self.groups.items()}
        parameters: dict[str, int] = {}
        for node in self.order:
            if node.is_leaf and id(node) in self.groups:
                parameters[self.groups[id(node)]] = parameters.get(self.groups[id(node)], 0) + 1
        outputs = self.group_outputs()
        for path in sorted(set(self.groups.values()), key=_natural_key):
            fields = [path, f"{parameters.get(path, 0)} parameters"]
            colors = {"fillcolor": KIND_FILLS["value"]}
            if len(outputs.get(path, {})) == 1:
                (out,) = outputs[path].values()
                fields[1:1] = [f"out {self.number(out.data)}", f"grad {self.number(_grad_float(out))}"]
                if self.scale is not None:
                    colors = {
                        "fillcolor": self.scale.color(_grad_float(out)),
                        "fontcolor": self.scale.text_color(_grad_float(out)),
                    }
            container(path.rsplit(".", 1)[0] if "." in path else None).node(
                f"neuron {path}", label=self.record_label(fields), shape="record", style="filled,bold", **colors
            )
        edges: set[tuple[str, str]] = set()
        for node in self.order:
            box = boxes.get(id(node))
            if box is None:
                continue
            for parent in node.parents:
                source = boxes.get(id(parent), self.names[id(parent)])
                if source != box and (source, box) not in edges:
                    edges.add((source, box))
                    container(None).edge(source, box)
        return boxes


def _natural_key(path: str) -> list[Any]:
    """Sort ``L2.N10`` after ``L2.N9``."""
    return [(int(part[1:]) if part[1:].isdigit() else part) for part in path.split(".")]


class GraphvizNotFoundError(AutogradError, RuntimeError):
    """Graphviz's `dot` program, needed to render a drawing, is not installed (or not on PATH)."""


@lru_cache(maxsize=1)
def digraph_class() -> type:
    """``graphviz.Digraph`` whose rendering explains how to install Graphviz when `dot` is missing.

    Every drawing of the project (`draw_graph`, `nn.draw_network`) is one of these.
    """
    try:
        import graphviz
    except ImportError as exc:
        raise ImportError(f"drawing graphs needs the graphviz package: {INSTALL_VIZ}") from exc

    class DotNotFound(GraphvizNotFoundError, graphviz.ExecutableNotFound):
        """Also a ``graphviz.ExecutableNotFound``, for code that already catches that."""

        def __init__(self, message: str) -> None:
            RuntimeError.__init__(self, message)  # not ExecutableNotFound's, which formats a command line

    class Drawing(graphviz.Digraph):  # type: ignore[misc]
        """A ``graphviz.Digraph`` that names the fix when `dot` is missing."""

        def render(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().render(*args, **kwargs)
            except graphviz.ExecutableNotFound:
                raise DotNotFound(INSTALL_DOT) from None

        def pipe(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().pipe(*args, **kwargs)
            except graphviz.ExecutableNotFound:
                raise DotNotFound(INSTALL_DOT) from None

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
            # In Jupyter a missing `dot` should explain itself, not end the cell with a traceback.
            try:
                return dict(super()._repr_mimebundle_(include, exclude, **kwargs))
            except GraphvizNotFoundError:
                return {"text/plain": INSTALL_DOT + "\n\n" + self.source}

    return Drawing
