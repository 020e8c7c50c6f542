"""The walkthrough as pictures: one Graphviz drawing before the first step and one after each.

Owns the look of a frame only; every number comes from the steps. Each node
shows its name, data and gradient so far; the current node is highlighted, the
edges it sends gradient through are labelled ``upstream × local = contribution``,
and nodes no gradient has reached yet are grey. All frames of a walkthrough
share one layout (same node sizes, edge labels placed after layout), so
stepping through them moves nothing but the colours and numbers.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..draw import digraph_class
from ..errors import InvalidArgumentError
from ..value import Value
from .walkthrough import Step, Walkthrough, number, with_number

if TYPE_CHECKING:
    import graphviz

#: Pictures are drawn for graphs of at most this many Values (a frame per step of a
#: larger graph is neither readable nor quick); the steps themselves have no limit.
MAX_FRAME_NODES = 200

CURRENT = "#e66101"  # the node of this step, its edges and their labels
CURRENT_FILL = "#fee0b6"
GREY_TEXT = "#9e9e9e"
GREY_FILL = "#f5f5f5"
PARAMETER = "#1b7837"
USED_EDGE = "#404040"
UNUSED_EDGE = "#c8c8c8"
LEGEND = (
    f'<FONT POINT-SIZE="10" COLOR="#616161"><FONT COLOR="{CURRENT}">orange</FONT>: this step and the gradient'
    f' it sends back · grey: no gradient yet ·&#160;<FONT COLOR="{PARAMETER}">green border</FONT>: parameter'
    " · dashed: constant</FONT>"
)
FONT = "Arial"
FONT_SIZE = 11
# Width of a character at FONT_SIZE, in inches, rounded up (digits and most
# letters are narrower), to give each node one width in every frame.
CHAR_WIDTH = 0.085


@dataclass
class FrameState:
    """Where the pass stands after ``k`` steps (frame ``k``)."""

    k: int
    totals: dict[Value, float]  # gradients received so far
    pending: dict[Value, int]  # contributions still to come, per node
    done: set[Value]  # nodes whose own step has happened (the current one included)


def frame_states(walk: Walkthrough) -> list[FrameState]:
    """The state before the first step and after each step, read off the steps."""
    pending: dict[Value, int] = {}
    for step in walk.steps:
        for c in step.parents:
            pending[c.parent] = pending.get(c.parent, 0) + 1
    totals: dict[Value, float] = {walk.output: 1.0}
    done: set[Value] = set()
    states = [FrameState(0, dict(totals), dict(pending), set(done))]
    for k, step in enumerate(walk.steps, 1):
        done.add(step.node)
        for c in step.parents:
            totals[c.parent] = c.total
            pending[c.parent] -= 1
        states.append(FrameState(k, dict(totals), dict(pending), set(done)))
    return states


def node_id(k: int, index: int) -> str:
    """The id of node number ``index`` (in ``walk.order``) in frame ``k``: unique in a page of frames."""
    return f"f{k}_n{index}"


def check_size(walk: Walkthrough) -> None:
    if len(walk.order) > MAX_FRAME_NODES:
        raise InvalidArgumentError(
            f"walkthrough frames: the graph has {len(walk.order)} Values; pictures are drawn for at most "
            f"{MAX_FRAME_NODES} (a picture per step of a larger graph is unreadable). The steps are all in "
            "w.steps and print(w); walk through a smaller expression (e.g. one neuron, or one sample's loss)."
        )


def draw_frames(walk: Walkthrough) -> list[graphviz.Digraph]:
    """One ``graphviz.Digraph`` per frame: frame 0 before the first step, frame k after step k."""
    check_size(walk)
    drawing = FrameDrawing(walk)
    return [drawing.draw(state) for state in frame_states(walk)]


def frame_svgs(walk: Walkthrough) -> list[str]:
    """Every frame as inline SVG (see `inline_svg`), all on one canvas.

    Edge labels are placed after layout, and one sticking out on the left or
    at the top widens that frame's picture and moves everything in it. Each
    frame's view box is shifted back by that much and all get the largest
    size, so that on screen no node moves from frame to frame.
    """
    check_size(walk)
    drawing = FrameDrawing(walk)
    states = frame_states(walk)
    svgs = [inline_svg(drawing.draw(state), drawing, state) for state in states]
    anchors = [_anchor(svg, state.k) for svg, state in zip(svgs, states)]
    boxes = [_view_box(svg) for svg in svgs]
    left = max(x for x, _ in anchors)
    top = max(y for _, y in anchors)
    width = max(w - x for (x, _), (w, _) in zip(anchors, boxes)) + left
    height = max(h - y for (_, y), (_, h) in zip(anchors, boxes)) + top
    aligned = []
    for svg, (x, y) in zip(svgs, anchors):
        svg = re.sub(r'<svg width="[\d.]+pt" height="[\d.]+pt"\s+viewBox="[^"]*"',
                     f'<svg width="{width:.2f}pt" height="{height:.2f}pt" '
                     f'viewBox="{x - left:.2f} {y - top:.2f} {width:.2f} {height:.2f}"', svg, count=1)  # fmt: skip
        aligned.append(svg)
    return aligned


def _view_box(svg: str) -> tuple[float, float]:
    found = re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+)"', svg)
    if found is None:
        raise ValueError("dot wrote an SVG without a viewBox")
    return float(found.group(1)), float(found.group(2))


def _anchor(svg: str, k: int) -> tuple[float, float]:
    """Where the first node's first text sits in the picture (view box units)."""
    translate = re.search(r'class="graph" transform="[^"]*translate\(([-\d.]+) ([-\d.]+)\)"', svg)
    text = re.search(rf'id="{node_id(k, 0)}".*?<text[^>]* x="([-\d.]+)" y="([-\d.]+)"', svg, re.S)
    if translate is None or text is None:
        raise ValueError("dot wrote an SVG this page cannot align")
    return float(translate.group(1)) + float(text.group(1)), float(translate.group(2)) + float(text.group(2))


def inline_svg(graph: Any, drawing: FrameDrawing, state: FrameState) -> str:
    """The frame rendered by `dot`, ready to put in a page: no XML prolog, no tooltips
    with internal names, and each node's name in ``data-name`` and gradient so far
    in ``data-grad`` (full precision; empty when none yet; none on constants)."""
    svg = graph.pipe(format="svg").decode("utf-8")
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<title>[^<]*</title>\n?", "", svg)
    for node, index in drawing.index.items():
        extra = f' data-name="{html.escape(drawing.walk.names[node])}"'
        if node.requires_grad:  # a constant has no gradient to show
            total = state.totals.get(node)
            extra += f' data-grad="{"" if total is None else repr(total)}"'
        found = f'id="{node_id(state.k, index)}"'
        svg = svg.replace(found, found + extra, 1)
    return svg


def _table(rows: list[str]) -> str:
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _boxed(text: str) -> str:
    """An edge label on a white ground, so that the lines it lies on do not cross its digits."""
    return f'<<TABLE BORDER="0" BGCOLOR="white" CELLPADDING="1" CELLSPACING="0"><TR><TD>{text}</TD></TR></TABLE>>'


class FrameDrawing:
    """The parts of a frame that do not change from step to step: names, sizes, layout."""

    def __init__(self, walk: Walkthrough) -> None:
        self.walk = walk
        self.index = {node: i for i, node in enumerate(walk.order)}
        self.equations = {step.node: step.equation for step in walk.steps}
        self.caption_lines = max([2] + [1 + min(len(step.parents), 7) for step in walk.steps])
        # Every gradient text a node will show: its running totals "(so far)", then its gradient.
        totals: dict[Value, list[float]] = {walk.output: [1.0]}
        for step in walk.steps:
            for c in step.parents:
                totals.setdefault(c.parent, []).append(c.total)
        shown = {
            node: [f"grad {number(total)} (so far)" for total in seen[:-1]] + [f"grad {number(seen[-1])}"]
            for node, seen in totals.items()
        }
        self.widths = {node: self._width(node, shown.get(node, [])) for node in walk.order}

    def _width(self, node: Value, grads: list[str]) -> float:
        """Inches: wide enough for the longest text the node shows in any frame."""
        texts = [self.title_text(node), f"data {number(node.data)}", *grads]
        return max(0.6, 0.15 + CHAR_WIDTH * max(len(text) for text in texts))

    def title_text(self, node: Value) -> str:
        """The node's name, and for a node made by an operation its equation: ``h₁ = σ(net₁)``."""
        if not node.requires_grad and node.label:
            return f"{node.label} = {number(node.data)}"
        return self.equations.get(node, self.walk.names[node])

    def node_label(self, node: Value, state: FrameState, grey: bool) -> str:
        name = html.escape(self.walk.names[node])
        if not node.requires_grad:  # "x₁ = 0.5", or "2" for a number in an expression
            value = f"&#160;= {number(node.data)}" if node.label else ""
            return _table([f"<B>{name}</B>{value}", "constant"])
        title = f"<B>{name}</B>"
        if node in self.equations:  # "h₁ = σ(net₁)": the name in bold, then what computed it
            # a no-break space: SVG viewers drop an ordinary one at the start of a text run
            title += "&#160;" + html.escape(self.equations[node][len(self.walk.names[node]) + 1 :])
        rows = [title, f"data {html.escape(number(node.data))}"]
        total = state.totals.get(node)
        if total is None or grey:
            rows.append("grad ?")
        else:
            grad = f"grad {html.escape(number(total))}"
            if state.pending.get(node, 0) > 0:
                grad += " <I>(so far)</I>"
            in_this_step = self.is_current(node, state) or node in self.current_parents(state)
            rows.append(f"<B>{grad}</B>" if in_this_step else grad)
        return _table(rows)

    def current_step(self, state: FrameState) -> Step | None:
        return self.walk.steps[state.k - 1] if state.k > 0 else None

    def is_current(self, node: Value, state: FrameState) -> bool:
        step = self.current_step(state)
        return node is self.walk.output if step is None else node is step.node

    def current_parents(self, state: FrameState) -> set[Value]:
        step = self.current_step(state)
        return set() if step is None else {c.parent for c in step.parents}

    def node_attributes(self, node: Value, state: FrameState) -> dict[str, str]:
        attributes = {
            "id": node_id(state.k, self.index[node]),
            "shape": "box",
            "style": "rounded,filled",
            "width": f"{self.widths[node]:.2f}",
            "fillcolor": "#ffffff",
            "color": "#606060",
            "penwidth": "1",
        }
        grey = node.requires_grad and node not in state.totals
        if not node.requires_grad:
            attributes.update(style="rounded,filled,dashed", fillcolor="#eeeeee", color="#9e9e9e",
                              fontcolor="#616161")  # fmt: skip
        elif self.is_current(node, state):
            attributes.update(fillcolor=CURRENT_FILL, color=CURRENT, penwidth="3")
        elif node in self.current_parents(state):
            attributes.update(color=CURRENT, penwidth="2")
        elif grey:
            attributes.update(fillcolor=GREY_FILL, color=UNUSED_EDGE, fontcolor=GREY_TEXT)
        elif node.is_leaf:
            attributes.update(color=PARAMETER, penwidth="2")
        attributes["label"] = self.node_label(node, state, grey)
        return attributes

    def caption(self, state: FrameState) -> str:
        """The frame's title: where the pass stands, with the step's numbers."""
        out = html.escape(self.walk.output_name)
        step = self.current_step(state)
        if step is None:
            lines = [
                f"<B>Start</B>: ∂{out}/∂{out} = 1",
                "Next: each node, output first, passes its gradient back to its inputs.",
            ]
        else:
            lines = [
                f"<B>Step {state.k} of {len(self.walk.steps)}</B>: {html.escape(step.equation)},"
                f"  upstream ∂{out}/∂{html.escape(step.name)} = {number(step.upstream)}"
            ]
            for c in step.parents[:6]:
                lines.append(
                    f"→ {html.escape(c.parent_name)}: {html.escape(with_number(c.formula, c.local))};  "
                    f"{number(step.upstream)} × {number(c.local)} = {number(c.contribution)}"
                )
            if len(step.parents) > 6:
                lines.append(f"… and {len(step.parents) - 6} more")
        # Every frame's caption has as many lines, so the picture below it never moves.
        lines += [" "] * (self.caption_lines - len(lines))
        lines.append(LEGEND)
        return "<" + '<BR ALIGN="LEFT"/>'.join(lines) + '<BR ALIGN="LEFT"/>>'

    def draw(self, state: FrameState) -> graphviz.Digraph:
        graph = digraph_class()(
            name=f"frame{state.k}",
            graph_attr={
                "rankdir": "BT",
                "id": f"f{state.k}",
                "label": self.caption(state),
                "labelloc": "t",
                "labeljust": "l",
                "fontname": FONT,
                "fontsize": "12",
                "nodesep": "0.25",
                "ranksep": "0.45",
                "forcelabels": "true",
                "bgcolor": "white",
                "pad": "0.1",
            },
            node_attr={"fontname": FONT, "fontsize": str(FONT_SIZE), "margin": "0.05,0.03"},
            edge_attr={"arrowsize": "0.6", "fontname": FONT, "fontsize": "10"},
        )
        for node in self.walk.order:
            graph.node(f"n{self.index[node]}", **self.node_attributes(node, state))
        step = self.current_step(state)
        sending = {c.index: c for c in step.parents} if step is not None else {}
        edge = 0
        for node in self.walk.order:
            for i, parent in enumerate(node.parents):
                edge += 1
                attributes = {"id": f"f{state.k}_e{edge}", "color": UNUSED_EDGE}
                if not parent.requires_grad:
                    attributes["style"] = "dashed"
                elif step is not None and node is step.node and i in sending:
                    c = sending[i]
                    text = f"{number(step.upstream)} × {number(c.local)} = {number(c.contribution)}"
                    attributes.update(color=CURRENT, penwidth="2.5", dir="back", fontcolor=CURRENT,
                                      xlabel=_boxed(f"<B>{html.escape(text)}</B>"))  # fmt: skip
                elif node in state.done:
                    attributes["color"] = USED_EDGE
                graph.edge(f"n{self.index[parent]}", f"n{self.index[node]}", **attributes)
        return graph
