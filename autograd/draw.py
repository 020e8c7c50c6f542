"""`draw_graph`: the computation graph below a Value as a Graphviz picture.

Owns the picture only: node and edge styles, the gradient colour scale, and the
grouping of a model's nodes into neurons and layers, read from parameter labels
(never from `nn`, which this module does not import; `nn.draw_sample` adds the
textbook's names). Graphviz is optional: building the DOT source needs the
`graphviz` package, rendering needs `dot`.

Each Value is one node: ``label | data | grad``, and for a Value made by an
operation, a first row ``op | label`` with the operation's symbol from the rule
table. (Drawing operations as separate circles, as micrograd does, doubles the
number of columns: a 2-2-1 network would not fit a notebook cell.)
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Union

from .errors import AutogradError, InvalidArgumentError, InvalidTypeError
from .ops import FloatMath
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

# ColorBrewer Reds and Blues (9 classes, lightest first): reds for positive
# gradients, blues for negative ones. A graph's scale uses as many of them as
# its gradients span decades (at most `MAX_LEVELS`), spread from light to dark.
POSITIVE_COLORS = ("#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d")
NEGATIVE_COLORS = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b")
#: The palette entries a scale draws from (the first is too close to white to read as a colour).
USABLE = range(1, len(POSITIVE_COLORS))
#: The most shades a scale uses (interpolated between the palette's); more decades share shades.
MAX_LEVELS = 10
ZERO_COLOR = "#ffffff"
NONFINITE_COLOR = "#ffeb3b"

# How the kind of a value shows, independently of its fill colour.
KIND_STYLES: dict[str, dict[str, str]] = {
    "parameter": {"shape": "Mrecord", "penwidth": "2", "color": "#1b5e20", "style": "filled"},
    "constant": {"shape": "record", "color": "#757575", "style": "filled,dashed"},
    "value": {"shape": "record", "style": "filled"},
}
KIND_FILLS = {"parameter": "#e8f5e9", "constant": "#eeeeee", "value": "#ffffff"}
EdgeLabels = Union[None, Literal["local"]]


def draw_graph(
    root: Value,
    rankdir: str = "LR",
    precision: int = 3,
    color_by: str | None = None,
    cluster: ClusterMode = False,
    max_nodes: int = 500,
    *,
    legend: bool = True,
    edge_labels: EdgeLabels = None,
    grad_names: Mapping[Value, str] | None = None,
    caption: str | None = None,
) -> graphviz.Digraph:
    """The graph that computed ``root``, as a ``graphviz.Digraph``.

    Each Value is a record ``label | data | grad`` (``precision`` significant
    digits); a Value made by an operation has a first row ``op | label`` with
    the operation's symbol from the rule table, and an edge from each of its
    inputs (two from ``x`` in ``x·x``). Parameters (leaves that require grad)
    have a rounded, thick green border; constants (leaves that do not) a
    dashed grey one.

    Args:
        root: the output Value (typically a loss).
        rankdir: ``"LR"`` (inputs on the left) or ``"TB"`` (inputs on top).
        precision: significant digits of data and grad (3: the numbers of a
            2-2-1 network fit a notebook cell; pass 4 or more to compare digits).
        color_by: ``"grad"`` fills each Value by the sign (red +, blue -) and
            decade of its gradient. The scale is fitted to the graph: one
            shade per decade from its smallest to its largest nonzero |grad|
            (see `GradScale`), so layers whose gradients differ by a decade
            look different. None fills by kind only.
        cluster: True draws the neurons and layers of a model as labelled
            boxes; ``"collapse"`` draws each neuron as a single node. See
            `neuron_groups` for how nodes are assigned. Inputs read only by one
            layer are drawn inside that layer's box.
        max_nodes: the most Values allowed in the graph (with ``"collapse"``,
            the most nodes drawn); larger graphs raise instead of keeping
            Graphviz busy for minutes. The count stops at the first node over
            the limit, except with ``cluster="collapse"``, which must walk the
            whole graph to find its neurons.
        legend: with ``color_by="grad"``, explain the colours in a compact
            table under the picture; False leaves it out.
        edge_labels: ``"local"`` writes on each edge the local derivative of
            the operation with respect to that input, as the rule table writes
            it, and its value: ``∂(a·b)/∂a = b = -3``.
        grad_names: a name for the gradient of some nodes, shown instead of
            ``grad`` (`nn.draw_sample` names ∂E/∂net ``δ₁``).
        caption: text under the picture (one line per ``\\n``).

    Raises:
        InvalidArgumentError: the graph is larger than ``max_nodes`` (checked
            before anything is drawn), or an option has a wrong value.
        InvalidTypeError: an option has a wrong type (``precision=1.5``).
        ImportError: the `graphviz` package is missing.

    The result displays inline in Jupyter; ``.render("loss", format="svg")``
    writes a file and needs Graphviz's ``dot`` program.
    """
    if not isinstance(root, Value):
        raise InvalidTypeError(f"draw_graph: root must be a Value, got {type(root).__name__}")
    _check_options(rankdir, precision, color_by, cluster, max_nodes, legend, edge_labels, grad_names, caption)
    if cluster == "collapse":
        order = reading_order(root)
        groups = neuron_groups(order)
        drawn = _collapsed_node_count(order, groups)
        if drawn > max_nodes:
            raise _too_large(max_nodes, f"{drawn} nodes even with one box per neuron", collapse_helps=False)
    else:
        _check_size(root, max_nodes)
        order = reading_order(root)
        groups = neuron_groups(order) if cluster else {}
    drawing = _GraphDrawing(rankdir, precision, order, groups, collapse=cluster == "collapse")
    drawing.edge_labels = edge_labels == "local"
    drawing.grad_names = {id(node): name for node, name in (grad_names or {}).items()}
    if color_by == "grad":
        drawing.color_by_grad()
    return drawing.build(legend=legend, caption=caption)


def _check_int(name: str, value: object, smallest: int) -> None:
    """An int option: a float or a string is a wrong type, an int below ``smallest`` a wrong value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(f"draw_graph: {name} must be an int >= {smallest}, got {type(value).__name__} {value!r}")
    if value < smallest:
        raise InvalidArgumentError(f"draw_graph: {name} must be an int >= {smallest}, got {value!r}")


def _check_options(
    rankdir: str,
    precision: int,
    color_by: str | None,
    cluster: object,
    max_nodes: int,
    legend: object,
    edge_labels: object,
    grad_names: object,
    caption: object,
) -> None:
    if rankdir not in ("LR", "TB"):
        raise InvalidArgumentError(f"draw_graph: rankdir must be 'LR' or 'TB', got {rankdir!r}")
    _check_int("precision", precision, 1)
    if color_by not in (None, "grad"):
        raise InvalidArgumentError(f"draw_graph: color_by must be None or 'grad', got {color_by!r}")
    if cluster not in (False, True, "collapse") or not isinstance(cluster, (bool, str)):
        raise InvalidArgumentError(f"draw_graph: cluster must be False, True or 'collapse', got {cluster!r}")
    _check_int("max_nodes", max_nodes, 1)
    if not isinstance(legend, bool):
        raise InvalidTypeError(f"draw_graph: legend must be True or False, got {type(legend).__name__} {legend!r}")
    if edge_labels not in (None, "local") or not isinstance(edge_labels, (str, type(None))):
        raise InvalidArgumentError(f"draw_graph: edge_labels must be None or 'local', got {edge_labels!r}")
    if grad_names is not None and not (
        isinstance(grad_names, Mapping)
        and all(isinstance(k, Value) and isinstance(v, str) for k, v in grad_names.items())
    ):
        raise InvalidTypeError("draw_graph: grad_names must map Values to names (str)")
    if caption is not None and not isinstance(caption, str):
        raise InvalidTypeError(f"draw_graph: caption must be a str, got {type(caption).__name__}")


def _check_size(root: Value, max_nodes: int) -> None:
    """Count the Values of the graph, stopping past ``max_nodes``."""
    seen = {id(root)}
    stack = [root]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
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
        f"draw_graph: the graph has {found} (Values); {advice}, "
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


def reading_order(root: Value) -> list[Value]:
    """Every node below ``root``, each after its parents, the parents taken in argument order.

    Graphviz keeps the order in which nodes are declared where it can: in
    this order ``w1·x1`` comes before ``w2·x2`` and neuron 1 before neuron 2,
    so the picture reads top to bottom as the formula reads left to right.
    (`topological_order` visits the parents last to first.) Iterative, like it.
    """
    order: list[Value] = []
    done: set[int] = set()
    stack: list[tuple[Value, int]] = [(root, 0)]
    while stack:
        node, next_parent = stack.pop()
        parents = node.parents
        while next_parent < len(parents) and id(parents[next_parent]) in done:
            next_parent += 1
        if next_parent < len(parents):
            stack.append((node, next_parent + 1))
            parent = parents[next_parent]
            done.add(id(parent))  # claimed now: reached again, it is already on the stack
            stack.append((parent, 0))
        else:
            order.append(node)
    done.add(id(root))
    return order


def _collapsed_node_count(order: list[Value], groups: dict[int, str]) -> int:
    ungrouped = sum(1 for node in order if id(node) not in groups)
    return ungrouped + len(set(groups.values()))


def _enclosing_paths(path: str) -> list[str]:
    """``"L1.N0"`` -> ``["L1", "L1.N0"]``: every module that contains the neuron."""
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# -- colours -------------------------------------------------------------------


_SUPERSCRIPTS = str.maketrans("-+0123456789", "⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(k: int) -> str:
    """``10^k`` as short text, without computing it (10.0 ** 309 overflows): ``0.01``, ``1``, ``10⁻⁷``, ``10³⁰⁹``."""
    return f"{10.0 ** k:g}" if -2 <= k <= 2 else "10" + str(k).translate(_SUPERSCRIPTS)


def _decade(magnitude: float) -> int:
    """The k with 10^(k-1) < magnitude <= 10^k, for a finite magnitude > 0 (subnormals too)."""
    k = math.ceil(math.log10(magnitude))
    # log10 is rounded: correct by one where it lands on the wrong side of a power of ten.
    if -300 < k < 300:
        if magnitude > 10.0**k:
            k += 1
        elif magnitude <= 10.0 ** (k - 1):
            k -= 1
    return k


def _interpolate(colors: tuple[str, ...], fraction: float) -> str:
    """The colour a ``fraction`` (0 to 1) of the way along ``colors``, mixed linearly in RGB."""
    position = fraction * (len(colors) - 1)
    k = min(int(position), len(colors) - 2)
    weight = position - k
    low, high = (tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in (colors[k], colors[k + 1]))
    return "#" + "".join(f"{round(a + (b - a) * weight):02x}" for a, b in zip(low, high))


class GradScale:
    """Fill colours for gradients: sign by hue, decade of |grad| by depth, fitted to one graph.

    Decade ``k`` holds ``10^(k-1) < |grad| <= 10^k``. The scale runs from the
    decade of the graph's smallest nonzero finite |grad| (``low``) to that of
    its largest (``high``): one level per decade, lightest for ``low``,
    darkest for ``high``, so a gradient that vanishes layer by layer changes
    shade at every decade it loses. Over `MAX_LEVELS` decades, each level
    covers several (``decades_per_level``). Zero is white, NaN and ±inf yellow.
    """

    def __init__(self, grads: list[float]) -> None:
        magnitudes = [abs(g) for g in grads if math.isfinite(g) and g != 0.0]
        self.empty = not magnitudes
        self.high = _decade(max(magnitudes)) if magnitudes else 0
        self.low = _decade(min(magnitudes)) if magnitudes else 0
        self.decades_per_level = max(1, math.ceil((self.high - self.low + 1) / MAX_LEVELS))
        self.levels = (self.high - self.low) // self.decades_per_level + 1
        self.has_zero = any(g == 0.0 for g in grads)
        self.has_nonfinite = any(not math.isfinite(g) for g in grads)
        self.signs = sorted({g > 0 for g in grads if math.isfinite(g) and g != 0.0}, reverse=True)

    def level(self, grad: float) -> int:
        """1 (faintest, the graph's smallest decade) to ``self.levels`` (darkest) for a finite nonzero gradient."""
        k = min(max(_decade(abs(grad)), self.low), self.high)
        return self.levels - (self.high - k) // self.decades_per_level

    def depth(self, level: int) -> float:
        """How dark a level is: 0 (the lightest usable shade) to 1 (the darkest)."""
        return 0.75 if self.levels == 1 else (level - 1) / (self.levels - 1)

    def shade(self, positive: bool, level: int) -> str:
        """The level's colour, interpolated along the palette's usable shades."""
        palette = POSITIVE_COLORS if positive else NEGATIVE_COLORS
        return _interpolate(palette[USABLE.start :], self.depth(level))

    def color(self, grad: float) -> str:
        if not math.isfinite(grad):
            return NONFINITE_COLOR
        if grad == 0.0:
            return ZERO_COLOR
        return self.shade(grad > 0, self.level(grad))

    def text_color(self, grad: float) -> str:
        """White on the darkest shades, black elsewhere."""
        dark = math.isfinite(grad) and grad != 0.0 and self.depth(self.level(grad)) >= 0.6
        return "#ffffff" if dark else "#000000"

    def decades(self, level: int) -> tuple[int, int]:
        """(b, t): the level holds 10^b < |grad| <= 10^t."""
        top = self.high - (self.levels - level) * self.decades_per_level
        return max(top - self.decades_per_level, self.low - 1), top

    def bounds(self, level: int) -> str:
        """The magnitudes a level covers, e.g. ``"0.01 < |grad| ≤ 0.1"``, ``"10⁻⁸ < |grad| ≤ 10⁻⁷"``."""
        bottom, top = self.decades(level)
        return f"{_power_of_ten(bottom)} < |grad| ≤ {_power_of_ten(top)}"


    def legend_label(self, kinds: bool = True, caption: str | None = None) -> str:
        """An HTML-like Graphviz label: each level's upper bound on top, one row of shades per sign, then the rest.

        Compact: one narrow column per level, only the signs that occur, and
        the white (zero) and yellow (nan or inf) keys only when used.
        """
        span = self.levels + 1
        rows = []
        if not self.empty:
            tops = "".join(f"<TD>{_power_of_ten(self.decades(level)[1])}</TD>" for level in range(self.levels, 0, -1))
            rows.append(f'<TR><TD ALIGN="RIGHT">|grad| ≤</TD>{tops}</TR>')
            for positive in self.signs:
                shades = "".join(
                    f'<TD BGCOLOR="{self.shade(positive, level)}"> </TD>' for level in range(self.levels, 0, -1)
                )
                rows.append(f'<TR><TD ALIGN="RIGHT">{"grad &gt; 0" if positive else "grad &lt; 0"}</TD>{shades}</TR>')
        notes = [html.escape(f"lightest shade: {self.bounds(1)}")] if not self.empty else []
        if self.has_zero:
            notes.append("white: grad = 0")
        if self.has_nonfinite:
            notes.append("yellow: nan or inf")
        if kinds:
            notes.append("green rounded border: parameter, dashed: constant")
        if caption:
            notes += [html.escape(_visible(line)) for line in caption.split("\n")]
        for note in notes:
            rows.append(f'<TR><TD COLSPAN="{span}" ALIGN="LEFT">{note}</TD></TR>')
        return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"
# -- building the DOT source ---------------------------------------------------

# Control characters (NUL, newline, ...) cannot stand in a DOT label: show their
# Unicode pictures (␀, ␊, ...) instead, so a label is always drawn verbatim.
_CONTROL_PICTURES = {code: 0x2400 + code for code in range(32)} | {127: 0x2421}


def _visible(text: str) -> str:
    return text.translate(_CONTROL_PICTURES)


def _record_escape(text: str) -> str:
    """Escape the characters that structure a Graphviz record label (and a DOT string)."""
    text = _visible(text)
    for char in '\\{}|<>"':
        text = text.replace(char, "\\" + char)
    return text


def nohtml(text: str) -> Any:
    """``text`` marked as a plain DOT string, never an HTML-like label (even ``<b>``)."""
    from graphviz import nohtml as plain

    return plain(text)


def _join_fields(fields: list[str]) -> str:
    """``a | b``, but ``a |δ₁ 0.1`` before a field that starts with a non-ASCII character:
    after ``| `` Graphviz (2.43) drops the first blank following such a character (``δ₁0.1``)."""
    label = fields[0]
    for field in fields[1:]:
        label += (" | " if field[:1].isascii() else " |") + field
    return label


def dot_text(text: str) -> Any:
    """``text`` as a plain DOT label or id, drawn verbatim: backslashes and quotes escaped,
    control characters made visible, never read as an HTML-like label (``<b>``)."""
    return nohtml(_visible(text).replace("\\", "\\\\").replace('"', '\\"'))


def _grad_float(node: Value) -> float:
    grad = node.grad
    return grad.data if isinstance(grad, Value) else float(grad)


def _kind(node: Value) -> str:
    if not node.is_leaf:
        return "value"
    return "parameter" if node.requires_grad else "constant"


def format_number(x: float, precision: int) -> str:
    """``x`` to ``precision`` significant digits: ``0.00653``, ``6.53e-5`` (no zero in the exponent).

    -0.0 (e.g. -0.72·0) is shown as 0: the sign of a zero is an artefact of IEEE
    arithmetic, not something a reader of the graph should puzzle over.
    """
    return f"{x + 0.0:.{precision}g}".replace("e-0", "e-").replace("e+0", "e+")


def local_derivatives(node: Value) -> list[float | None]:
    """∂node/∂parent for each parent, from the rule table (None where it is undefined)."""
    rule = node.rule
    if rule is None:
        return []
    try:
        return [float(d) for d in rule.derivative(FloatMath, *[p.data for p in node.parents], node.data)]
    except (ArithmeticError, ValueError):
        return [None] * len(node.parents)


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
        self.edge_labels = False
        self.grad_names: dict[int, str] = {}

    def color_by_grad(self) -> None:
        self.scale = GradScale([_grad_float(node) for node in self.order])

    def record_label(self, fields: list[str]) -> str:
        """Fields stacked vertically in both directions (a record flips its fields with the layout)."""
        label = _join_fields(fields)
        return label if self.rankdir == "LR" else "{ " + label + " }"

    def number(self, x: float) -> str:
        return format_number(x, self.precision)

    def value_attributes(self, node: Value, kind: str) -> dict[str, str]:
        label = _record_escape(node.label)
        if node.rule is not None:
            symbol = _record_escape(node.rule.symbol)
            fields = ["{ " + _join_fields([symbol, label]) + " }" if label else symbol]
        else:
            fields = [label] if label else []
        grad_name = _record_escape(self.grad_names.get(id(node), "grad"))
        fields += [f"data {self.number(node.data)}", f"{grad_name} {self.number(_grad_float(node))}"]
        attributes = {"label": self.record_label(fields), **KIND_STYLES[kind]}
        if self.scale is None:
            attributes["fillcolor"] = KIND_FILLS[kind]
        else:
            attributes["fillcolor"] = self.scale.color(_grad_float(node))
            attributes["fontcolor"] = self.scale.text_color(_grad_float(node))
        return attributes

    def edge_attributes(self, node: Value, i: int, local: list[float | None]) -> dict[str, Any]:
        if not self.edge_labels or node.rule is None:
            return {}
        value = local[i] if i < len(local) else None
        text = node.rule.local_derivative(i)
        number = "?" if value is None else self.number(value)
        if text.rsplit(" = ", 1)[-1] != number:  # "∂(a + b)/∂a = 1" needs no "= 1" after it
            text += " = " + number
        return {"label": dot_text(text), "fontsize": "8", "fontcolor": "#37474f"}

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

    def input_homes(self) -> dict[int, str]:
        """Ungrouped leaves read only by one layer (``x`` by layer 1): that layer's path."""
        readers: dict[int, set[str | None]] = {}
        for node in self.order:
            path = self.groups.get(id(node))
            for parent in node.parents:
                if parent.is_leaf and id(parent) not in self.groups:
                    readers.setdefault(id(parent), set()).add(path.split(".")[0] if path else None)
        return {key: paths.pop() for key, paths in readers.items() if len(paths) == 1 and None not in paths}  # type: ignore[misc]

    def build(self, legend: bool = True, caption: str | None = None) -> graphviz.Digraph:
        graph_attr = {
            "rankdir": self.rankdir, "fontname": "Helvetica", "fontsize": "10",
            "nodesep": "0.08", "ranksep": "0.13", "newrank": "true",
        }  # fmt: skip
        notes = self.scale.legend_label(caption=caption) if self.scale is not None and legend else None
        if notes is None and caption:
            notes = nohtml("\\l".join(str(dot_text(line)) for line in caption.split("\n")) + "\\l")
        if notes is not None:
            graph_attr.update(label=notes, labelloc="b", labeljust="l")
        graph = digraph_class()(
            name="autograd",
            graph_attr=graph_attr,
            node_attr={"fontname": "Helvetica", "fontsize": "9", "height": "0.2", "margin": "0.03,0.01"},
            edge_attr={"arrowsize": "0.5", "color": "#555555", "fontname": "Helvetica"},
        )
        clusters: dict[str, Any] = {}

        def container(path: str | None) -> Any:
            if path is None:
                return graph
            for enclosing in _enclosing_paths(path):
                if enclosing not in clusters:
                    clusters[enclosing] = digraph_class()(
                        name=f"cluster_{len(clusters)}",
                        graph_attr={
                            "label": dot_text(enclosing), "style": "rounded", "color": "#9e9e9e",
                            "fontsize": "10", "labeljust": "l", "margin": "4",
                        },
                    )
            return clusters[path]

        # Clusters are created in layer order, so that Graphviz draws layer 1 before layer 2.
        for path in sorted(set(self.groups.values()), key=_natural_key):
            container(path)
        homes = self.input_homes() if self.groups else {}
        edges: list[tuple[str, str, dict[str, Any]]] = []
        boxes = self.draw_collapsed(container, homes, edges) if self.collapse else {}
        for node in self.order:
            key = id(node)
            if key in boxes:
                continue
            name = self.names[key]
            container(self.groups.get(key, homes.get(key))).node(name, **self.value_attributes(node, _kind(node)))
            if node.is_leaf:
                continue
            local = local_derivatives(node) if self.edge_labels else []
            for i, parent in enumerate(node.parents):
                source = boxes.get(id(parent), self.names[id(parent)])
                edges.append((source, name, self.edge_attributes(node, i, local)))
        # Nodes first, then edges. Graphviz stacks sibling clusters bottom-up in an LR picture:
        # declared last to first, neuron 1 is drawn above neuron 2 (and layer 1 first).
        by_path = sorted(clusters, key=_natural_key, reverse=True)
        for path in sorted(by_path, key=lambda p: -p.count(".")):
            parent_path = path.rsplit(".", 1)[0] if "." in path else None
            (clusters[parent_path] if parent_path is not None else graph).subgraph(clusters[path])
        for source, target, attributes in edges:
            graph.edge(source, target, **attributes)
        return graph

    def draw_collapsed(
        self, container: Any, homes: dict[int, str], edges: list[tuple[str, str, dict[str, Any]]]
    ) -> dict[int, str]:
        """One record per neuron (with its output when it has one); returns node id -> box name."""
        paths = sorted(set(self.groups.values()), key=_natural_key)
        box_names = {path: f"neuron{k}" for k, path in enumerate(paths)}
        boxes = {key: box_names[path] for key, path in self.groups.items()}
        parameters: dict[str, int] = {}
        for node in self.order:
            if node.is_leaf and id(node) in self.groups:
                parameters[self.groups[id(node)]] = parameters.get(self.groups[id(node)], 0) + 1
        outputs = self.group_outputs()
        for path in reversed(paths):  # declared last to first, like the clusters (see build): N0 on top
            fields = [_record_escape(path), f"{parameters.get(path, 0)} parameters"]
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
                box_names[path], label=self.record_label(fields), shape="record", style="filled,bold", **colors
            )
        drawn: set[tuple[str, str]] = set()
        for node in self.order:
            box = boxes.get(id(node))
            if box is None:
                continue
            for parent in node.parents:
                source = boxes.get(id(parent), self.names[id(parent)])
                if source != box and (source, box) not in drawn:
                    drawn.add((source, box))
                    edges.append((source, box, {}))
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
