"""The schedule of a tape: its nodes by level (`_nodes_by_level`), the dense layers found on it
(`_find_layers`, `_Pattern`, `_Stack`), and its cut into blocks (`_blocks`): groups, chains, layers
and selects, which `Trace` numbers into slots. Pure Python on Values: no numpy here.

Replaying the tape one scalar at a time would cost one numpy call per node
(hundreds per pass, each slower than the float it replaces). Instead the tape
is cut into *groups*: the operations with the same rule at the same depth
(level = 1 + the deepest parent's level, leaves at 0). Nodes of one level never
depend on each other, so a whole group is one call of the rule's forward on
(m, batch) blocks: parent j of every node in the group is gathered from ``S``
and the group's outputs are written to consecutive rows. Slots are numbered so
that these gathers are mostly strided slices (views, no copy): a group's
outputs are consecutive, and leaves are numbered in the order the groups read
them. A 2-16-16-1 MLP with its loss is seven groups and a chain of three nodes,
whatever the batch size (or, with its two hidden layers found as dense layers, see
below, two matrix products, three groups and the chain).

A deep graph has the opposite shape: a chain a million levels deep has one
node per level, and a group's gathers, scatters and bookkeeping would cost
many times its single numpy call. The nodes alone in their group (or two of
a kind: `SMALLEST_GROUP`) are therefore strung together, in level order, into
*chains* replayed node by node: the rule's forward on (1, batch) rows of
``S``, a few microseconds a node. Building the tape stays linear too: one
pass gives every node its level (a list per level, no sorting), one more
numbers the slots.

A dense layer is cut out of the tape before that: K sums of n products, each
product a parameter times one of the same n inputs x_1 … x_n read by every
sum (plus, optionally, one parameter per sum: the bias) are found on the tape,
whoever built them (`nn` or hand-written scalar code), and replayed as one
matrix product Y = W·X + b over the (inputs, batch) block, with Wᵀ·G and G·Xᵀ
backward (`_find_layers`, `_Layer`). Their weights are gathered into W from the
vector of parameters once per replay; a parameter read nowhere else gets no row
of ``S``. Anything that does not fit the pattern exactly keeps the grouped replay.
"""

from __future__ import annotations

from .. import ops
from ..ops import Rule
from ..value import Value

# Replaying a group of two costs about as much as replaying its two nodes one
# by one (measured on parallel chains), and building the group far more: pairs
# join a chain. From three nodes on, the group's single numpy call wins.
SMALLEST_GROUP = 3


#: The kind `_blocks` gives a level's select nodes.
SELECT_STEP = "select"


# Fusing is exact linear algebra of the tape's own nodes; the switch is for comparisons.
FUSE_LAYERS = True
# A "layer" of one neuron is a dot product: left to the grouped replay, unless it is the only
# candidate of its level and reads at least `LONE_NEURON_INPUTS` inputs (an MLP's output neuron):
# then the grouped replay would give its n weights n rows of S and its sum n parents in a chain,
# n numpy calls each way, where the matrix product of one row is a few (2-16-16-1 MLP: the
# replay's forward and backward take 10-20 % less with it fused).
SMALLEST_LAYER = 2
LONE_NEURON_INPUTS = 3


def _union_order(outputs: list[Value]) -> list[Value]:
    """A topological order of everything the outputs depend on (each node once), the parents of a node
    visited first to last, so that the nodes of a level keep the order the function made them in.

    (`autograd.topological_order`, made for the backward pass, visits them last to first.) In that order a
    layer's inputs h_1 … h_n get increasing slots, read as a slice in the order the layer's sums read
    them, and no weight matrix is read back to front (`_Layer.flipped`); a replay's anomaly report
    names, within a level, the node eager mode made first.
    """
    order: list[Value] = []
    expanded: set[Value] = set()
    for out in outputs:
        stack: list[Value | None] = [out]
        while stack:
            node = stack.pop()
            if node is None:  # all of the node below depends on is listed: list it
                order.append(stack.pop())  # type: ignore[arg-type]
                continue
            if node in expanded:
                continue
            expanded.add(node)
            parents = node.parents
            if not parents:
                order.append(node)
                continue
            stack += (node, None)
            stack.extend(reversed(parents))  # the first parent on top: visited first
    return order


def _nodes_by_level(order: list[Value]) -> tuple[list[Value], list[list[Value]]]:
    """The leaves, and the operation nodes of each level 1, 2, ...: level = 1 + the deepest parent's level.

    Nodes of one level never depend on each other; every list keeps the topological order.
    """
    level: dict[Value, int] = {}
    leaves: list[Value] = []
    by_level: list[list[Value]] = [leaves]
    for v in order:
        depth = 0
        # A loop rather than max(): this runs once per node of graphs a million deep.
        for p in v.parents:
            if level[p] >= depth:
                depth = level[p] + 1
        level[v] = depth
        if depth < len(by_level):
            by_level[depth].append(v)
        else:
            by_level.append([v])
    return leaves, by_level[1:]


def _blocks(
    levels: list[list[Value]], patterns: dict[int, list[_Pattern]]
) -> list[tuple[list[Value], bool | _Pattern | str]]:
    """Cut the levels into (nodes, kind): groups of one rule and arity (True), chains (False), layers and selects.

    A group holds at least `SMALLEST_GROUP` nodes of one level; the nodes in
    between (a level of one node, two parallel chains, the few nodes of a rule
    in a level) are strung together, in level order, into one chain. The fused
    layers of a level (``patterns``, their sums no longer in ``levels``) come
    first in their level, as a kind of their own, then the level's selects
    (`SELECT_STEP`, however few: a gather, see `_Select`).
    """
    blocks: list[tuple[list[Value], bool | _Pattern | str]] = []
    chain: list[Value] = []
    for depth, nodes in enumerate(levels):
        for pattern in patterns.get(depth, ()):
            if chain:
                blocks.append((chain, False))
                chain = []
            blocks.append((pattern.sums, pattern))
        selects = [v for v in nodes if v._rule is ops.SELECT]
        if selects:
            if chain:
                blocks.append((chain, False))
                chain = []
            blocks.append((selects, SELECT_STEP))
            nodes = [v for v in nodes if v._rule is not ops.SELECT]
        if len(nodes) < SMALLEST_GROUP:
            chain.extend(nodes)
            continue
        members: dict[tuple[Rule, int], list[Value]] = {}
        for v in nodes:
            members.setdefault((v._rule, len(v.parents)), []).append(v)  # type: ignore[arg-type]
        for group in members.values():
            if len(group) < SMALLEST_GROUP:
                chain.extend(group)
            else:
                if chain:
                    blocks.append((chain, False))
                    chain = []
                blocks.append((group, True))
    if chain:
        blocks.append((chain, False))
    return blocks


class _Pattern:
    """A layer found on the tape: K sums (``sums``) of n products each, read in the same order.

    ``weights`` holds the K·n weights row by row (w_ij = weights[i·n + j]), ``xs``
    the n inputs shared by every neuron, ``biases`` one parameter per neuron (or
    none), added at term position ``bias_at`` of every sum; ``w_first[i·n + j]`` says
    whether the product was written w·x (else x·w): only error messages need it.
    """

    __slots__ = ("sums", "xs", "weights", "biases", "bias_at", "w_first")

    def __init__(self, xs: tuple[Value, ...], bias_at: int | None) -> None:
        self.sums: list[Value] = []
        self.xs = xs
        self.weights: list[Value] = []
        self.biases: list[Value] = []
        self.bias_at = bias_at
        self.w_first: list[bool] = []


class _Stack(_Pattern):
    """Layers of one level with the same weights (and biases) over different inputs: one product W·[X₁ … X_P].

    A sequence model applies each weight matrix at every position: P layers that
    `_find_layers` finds side by side in one level (the positions do not depend on
    each other there). ``parts`` are the P layers; as a `_Pattern` the stack has
    their sums and inputs one after the other and their shared weights and biases.
    """

    __slots__ = ("parts",)

    def __init__(self, parts: list[_Pattern]) -> None:
        first = parts[0]
        super().__init__(tuple(x for part in parts for x in part.xs), first.bias_at)
        self.parts = parts
        self.sums = [v for part in parts for v in part.sums]
        self.weights, self.biases, self.w_first = first.weights, first.biases, first.w_first


def _stacks(layers: list[_Pattern]) -> list[_Pattern]:
    """The layers of one level, those with the same weights and biases (in the same order) as one `_Stack`."""
    same: dict[tuple[tuple[int, ...], tuple[int, ...], int | None], list[_Pattern]] = {}
    for layer in layers:
        same.setdefault((tuple(map(id, layer.weights)), tuple(map(id, layer.biases)), layer.bias_at), []).append(layer)
    return [parts[0] if len(parts) == 1 else _Stack(parts) for parts in same.values()]


def _find_layers(
    levels: list[list[Value]], outputs: list[Value], traced_inputs: set[Value]
) -> dict[int, list[_Pattern]]:
    """The dense layers of each level (index into ``levels``); their products are removed from ``levels``.

    A sum joins a layer when each of its terms is either a product (mul) of
    exactly one parameter with a non-parameter, used by this sum alone (it is
    never computed, so nothing else may read it), or, once, a parameter: the
    bias. Sums of one level with the same inputs x_1 … x_n (the same Values in
    the same order) and the bias at the same place form a layer, if there are
    at least `SMALLEST_LAYER` of them (or one alone in its level, see
    `LONE_NEURON_INPUTS`). Sums of one level never depend on each
    other, so a layer replaces them at their level, and everything else keeps
    its level. Anything else (two parameters or none in a product, a product
    read twice, an extra term, different inputs) stays on the grouped path.
    """
    uses: dict[Value, int] = dict.fromkeys(outputs, 1)
    for nodes in levels:
        for v in nodes:
            for p in v.parents:
                uses[p] = uses.get(p, 0) + 1

    def is_parameter(v: Value) -> bool:
        return v._rule is None and v not in traced_inputs

    patterns: dict[int, list[_Pattern]] = {}
    fused_products: set[Value] = set()
    for depth, nodes in enumerate(levels):
        candidates: dict[tuple[tuple[int, ...], int | None], _Pattern] = {}
        for v in nodes:
            if v._rule is not ops.SUM:
                continue
            xs: list[Value] = []
            weights: list[Value] = []
            w_first: list[bool] = []
            bias: Value | None = None
            bias_at: int | None = None
            for position, term in enumerate(v.parents):
                if term._rule is ops.MUL and uses[term] == 1:
                    a, b = term.parents
                    if is_parameter(a) != is_parameter(b):
                        w, x = (a, b) if is_parameter(a) else (b, a)
                        weights.append(w)
                        xs.append(x)
                        w_first.append(w is a)
                        continue
                if bias is None and is_parameter(term):
                    bias, bias_at = term, position
                    continue
                break
            else:
                if xs:
                    # Values compare by identity, but keys compare them with ==: use ids.
                    key = (tuple(map(id, xs)), bias_at)
                    pattern = candidates.get(key)
                    if pattern is None:
                        pattern = candidates[key] = _Pattern(tuple(xs), bias_at)
                    pattern.sums.append(v)
                    pattern.weights.extend(weights)
                    pattern.w_first.extend(w_first)
                    if bias is not None:
                        pattern.biases.append(bias)
        layers = [pattern for pattern in candidates.values() if len(pattern.sums) >= SMALLEST_LAYER]
        if not layers and len(candidates) == 1:
            lone = next(iter(candidates.values()))
            if len(lone.sums) == 1 and len(lone.xs) >= LONE_NEURON_INPUTS:
                layers = [lone]
        if layers:
            patterns[depth] = _stacks(layers)
            fused = {v for pattern in layers for v in pattern.sums}
            levels[depth] = [v for v in nodes if v not in fused]
            fused_products.update(p for v in fused for p in v.parents if p._rule is ops.MUL)
    if fused_products:
        for depth, nodes in enumerate(levels):
            levels[depth] = [v for v in nodes if v not in fused_products]
    return patterns


def _read_from_rows(blocks: list[tuple[list[Value], bool | _Pattern | str]], outputs: list[Value]) -> set[Value]:
    """The Values some step reads from a row of S (or that are outputs); a layer's weights and biases are not."""
    read = set(outputs)
    for members, kind in blocks:
        if isinstance(kind, _Pattern):
            read.update(kind.xs)
        else:
            for v in members:
                read.update(v.parents)
    return read
