"""`walkthrough`: the backward pass recorded as a list of steps, to be read or shown.

One more interpreter over the graph: it walks the engine's backward order and,
where the engine only adds ``local · upstream`` into each parent's ``.grad``,
writes down each step instead (node, upstream gradient, and per parent the
rule's local derivative, formula and number, the contribution and the parent's
running total). The views (`frames`, `html`, `widget`) only render that list.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backward import cached_topological_order, local_derivatives
from ..errors import InvalidTypeError
from ..ops import SUM, Rule
from ..value import Value

if TYPE_CHECKING:
    import graphviz


@dataclass(frozen=True)
class Contribution:
    """What one parent receives from a step: ``contribution = upstream × local``.

    ``formula`` is the rule table's text of the local derivative (``"∂(a·b)/∂a = b"``),
    ``local`` its number at this node's inputs, and ``total`` the parent's
    gradient after adding ``contribution`` (a parent used several times, or by
    several nodes, sums its contributions: ∂E/∂x = Σ over its uses).
    """

    parent: Value
    parent_name: str
    index: int  # which input of the rule the parent is (``a`` is 0, ``b`` is 1)
    formula: str
    local: float
    contribution: float
    total: float


@dataclass(frozen=True)
class Step:
    """One node of the backward pass: its gradient ``upstream = ∂output/∂node`` is
    complete, and goes back to each parent through the chain rule."""

    node: Value
    name: str
    equation: str  # the node's forward computation with its parents' names, e.g. "h₁ = σ(net₁)"
    upstream: float
    parents: list[Contribution]
    constants: tuple[str, ...] = ()  # the inputs that are constants: they receive nothing


    def describe(self, output_name: str) -> str:
        """The step as a few lines of text, with every number the chain rule uses."""
        lines = [f"{self.equation}:  upstream ∂{output_name}/∂{self.name} = {number(self.upstream)}"]
        for c in self.parents:
            lines.append(
                f"  → {c.parent_name}:  local {with_number(c.formula, c.local)};  "
                f"contribution {number(self.upstream)} × {number(c.local)} = {number(c.contribution)};  "
                f"∂{output_name}/∂{c.parent_name} so far {number(c.total)}"
            )
        if self.constants:
            lines.append(f"  ({', '.join(self.constants)}: constant, needs no gradient)")
        return "\n".join(lines)


def number(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits, as a person writes it (no ``-0``, no ``1e+00``)."""
    if x == 0.0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def with_number(formula: str, local: float) -> str:
    """``"∂(a·b)/∂a = b = 3"``; ``"∂(a + b)/∂a = 1"`` when the formula is already that number."""
    text = number(local)
    return formula if formula.endswith(f" = {text}") else f"{formula} = {text}"


class Walkthrough:
    """The backward pass from ``output``, step by step (see `walkthrough`).

    ``steps`` in the engine's order, ``gradients`` (node -> ∂output/∂node),
    ``names`` (node -> its label or automatic name) and ``order`` (every
    node, parents first). ``print(w)`` shows every step as text; in Jupyter
    the object shows itself as a stepper (`widget`).
    """

    def __init__(self, output: Value, order: list[Value], names: dict[Value, str], steps: list[Step]) -> None:
        self.output = output
        self.order = order  # every node, each after its parents (the output last)
        self.names = names
        self.steps = steps
        gradients: dict[Value, float] = {output: 1.0}
        for step in steps:
            for c in step.parents:
                gradients[c.parent] = c.total
        self.gradients = gradients

    @property
    def output_name(self) -> str:
        return self.names[self.output]

    def __repr__(self) -> str:
        return f"Walkthrough({self.output_name}: {len(self.steps)} steps, {len(self.gradients)} gradients)"

    def __str__(self) -> str:
        start = f"Start: ∂{self.output_name}/∂{self.output_name} = 1"
        count = len(self.steps)
        steps = [f"Step {k} of {count}: {step.describe(self.output_name)}" for k, step in enumerate(self.steps, 1)]
        return "\n".join([start, *steps])

    # -- views ---------------------------------------------------------------
    def frames(self) -> list[graphviz.Digraph]:
        """One Graphviz picture before the first step and one after each step (see `viz.frames`).

        Drawn for graphs of up to 200 Values; a larger one raises InvalidArgumentError
        (``self.steps`` and ``print(self)`` still hold every step).
        """
        from .frames import draw_frames

        return draw_frames(self)

    def save_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML page that steps through the pass (see `viz.html`).

        Open it in any browser (no server, no network): Previous / Next / Play,
        a slider and the ← → keys. Needs Graphviz, as `frames` does.
        """
        from .html import save_html

        return save_html(self, Path(path))

    def widget(self) -> Any:
        """An ipywidgets stepper: Previous / Next / Play, a slider, the picture and the step's text."""
        from .widget import stepper

        return stepper(self)

    def _ipython_display_(self) -> None:
        from .widget import display_walkthrough

        display_walkthrough(self)


def walkthrough(output: Value) -> Walkthrough:
    """Record the backward pass from ``output`` as steps, without touching any ``.grad``.

    The nodes come in the engine's backward order (`backward.backward`): the
    output first, with ∂output/∂output = 1; each node's gradient is complete
    when its step comes. A step sends it to each parent through the chain rule,

        contribution = upstream × local,   local = ∂node/∂parent (from the rule table),

    and the parent's total is the sum of the contributions it has received so
    far. ``w.gradients`` holds each node's final total: what ``.grad`` holds
    after ``output.backward()`` (from zeroed gradients), bit for bit, since
    the sums are added in the same order.

    Constants (numbers mixed into expressions, ``requires_grad=False``) get no
    contribution and no entry in ``w.gradients``: nothing learns from them.
    The pictures show them with their number only.

    >>> from autograd import Value, walkthrough
    >>> x = Value(3.0, label="x")
    >>> w = walkthrough(x * x)
    >>> [(c.formula, c.local, c.total) for c in w.steps[0].parents]
    [('∂(a·b)/∂a = b', 3.0, 3.0), ('∂(a·b)/∂b = a', 3.0, 6.0)]
    """
    if not isinstance(output, Value):
        raise InvalidTypeError(f"walkthrough: output must be a Value, got {type(output).__name__}")
    order = cached_topological_order(output)
    names = automatic_names(order)
    totals: dict[Value, float] = {output: 1.0}
    steps: list[Step] = []
    # The engine's own order: the nodes made by operations, walked from the output back.
    # Leaves have no step: they only receive.
    for node in reversed(cached_topological_order(output, leaves=False)):
        rule: Rule = node._rule  # type: ignore[assignment]
        upstream = totals.get(node, 0.0)
        parents = node.parents
        # The engine's numbers by the engine's numeric policy (a pole raises its named error).
        locals_ = local_derivatives(rule, [p.data for p in parents], node.data)
        received = []
        for i, (parent, local) in enumerate(zip(parents, locals_)):
            if not parent.requires_grad:
                continue
            contribution = local * upstream  # the engine's product, in the engine's order
            total = totals.get(parent, 0.0) + contribution
            totals[parent] = total
            received.append(
                Contribution(parent, names[parent], i, rule.local_derivative(i), local, contribution, total)
            )
        constants = tuple(names[p] for p in parents if not p.requires_grad)
        steps.append(Step(node, names[node], equation(node, rule, names), upstream, received, constants))
    return Walkthrough(output, order, names, steps)


def automatic_names(order: list[Value]) -> dict[Value, str]:
    """Each node's label, or ``v1``, ``v2``, … in forward order; a constant is named by its number."""
    used = {node.label for node in order}
    names: dict[Value, str] = {}
    count = 0
    for node in order:
        if node.label:
            names[node] = node.label
        elif not node.requires_grad:
            names[node] = number(node.data)
        else:
            count += 1
            while f"v{count}" in used:
                count += 1
            names[node] = f"v{count}"
    return names


def equation(node: Value, rule: Rule, names: dict[Value, str]) -> str:
    """``name = expression`` with the parents' names put in the rule's input names: ``h₁ = σ(net₁)``."""
    parents = [names[p] for p in node.parents]
    if rule is SUM:  # a sum of any number of terms
        return f"{names[node]} = " + " + ".join(parents)
    if rule.arity == 0:  # another variadic row (select): its name applied to the parents
        return f"{names[node]} = {rule.name}({', '.join(parents)})"
    mapping = dict(zip(rule.inputs, parents))
    pattern = r"(?<![\w])(" + "|".join(re.escape(name) for name in mapping) + r")(?![\w])"
    expression = re.sub(pattern, lambda match: mapping[match.group(1)], rule.expression)
    return f"{names[node]} = {expression}"
