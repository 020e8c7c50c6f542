"""Training plots with matplotlib (the `viz` extra): learning curves and decision boundaries.

Each function returns a ``matplotlib.figure.Figure``: it displays once in
Jupyter (the figure is closed in pyplot, so it is not shown twice) and saves
with ``fig.savefig("loss.png")``. Without a display, the Agg backend is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from autograd import Value, no_grad
from autograd.draw import GraphvizNotFoundError, draw_graph
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError

from .module import MLP

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .trainer import History

INSTALL_VIZ = "pip install 'textbook-autograd[viz]'"
#: Colours of classes 0 and 1 (and of the regions a model assigns to them).
CLASS_COLORS = ("#2166ac", "#b2182b")

Histories = Union["History", Mapping[str, "History"]]


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend when there is no display and no backend was chosen."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: {INSTALL_VIZ}") from exc
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Histories, title: str | None = None) -> Figure:
    """Loss per epoch (left) and accuracy per epoch (right, when recorded).

    Training curves are solid, validation curves dashed. ``history`` is one
    `History` from `Trainer.fit`, or a mapping ``{name: History}`` to compare
    runs on the same axes: one colour per run, explained in a legend beside
    the panels (each line keeps its own label, e.g. ``"Adam: validation"``).
    """
    runs = _runs(history)
    with_accuracy = any(run.accuracy for run in runs.values())
    with_validation = any(run.val_loss for run in runs.values())
    plt = pyplot()
    width = (10 if with_accuracy else 5.5) + (1.5 if len(runs) > 1 else 0)
    fig, axes = plt.subplots(1, 2 if with_accuracy else 1, figsize=(width, 4), squeeze=False, layout="constrained")
    plt.close(fig)
    panels: list[tuple[Axes, str, Callable[[Any], tuple[Sequence[float], Sequence[float]]]]] = [
        (axes[0][0], "loss", lambda run: (run.loss, run.val_loss))
    ]
    if with_accuracy:
        panels.append((axes[0][1], "accuracy", lambda run: (run.accuracy, run.val_accuracy)))
    for ax, quantity, curves in panels:
        for k, (name, run) in enumerate(runs.items()):
            prefix = f"{name}: " if len(runs) > 1 else ""
            train, validation = curves(run)
            if train:
                ax.plot(range(1, len(train) + 1), train, color=f"C{k}", label=f"{prefix}train")
            if validation:
                epochs = range(1, len(validation) + 1)
                ax.plot(epochs, validation, color=f"C{k}", linestyle="--", label=f"{prefix}validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(quantity)
        ax.grid(alpha=0.3)
        if len(runs) == 1:
            ax.legend(fontsize="small")
    if len(runs) > 1:
        # Colours name the runs and line styles the data sets: n + 2 entries instead of 2n.
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=f"C{k}", label=name) for k, name in enumerate(runs)]
        handles.append(Line2D([], [], color="grey", label="train"))
        if with_validation:
            handles.append(Line2D([], [], color="grey", linestyle="--", label="validation"))
        fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _runs(history: Histories) -> dict[str, Any]:
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    if not runs:
        raise InvalidArgumentError("plot_history: no history to plot")
    for name, run in runs.items():
        if not hasattr(run, "loss") or not hasattr(run, "val_loss"):
            raise InvalidTypeError(
                f"plot_history: expected a History from Trainer.fit for {name!r}, got {type(run).__name__}"
            )
    return runs


def plot_decision_boundary(
    model: Callable[[list[float]], Value | list[Value]],
    X: Sequence[Sequence[float]],
    y: Sequence[float],
    resolution: int = 50,
    ax: Axes | None = None,
    title: str | None = None,
    threshold: float | None = None,
) -> Figure:
    """The model's output over the plane, its decision boundary, and the points (X, y).

    For one output o, the background shows o on a grid of ``resolution²``
    points and the boundary is the level o = ``threshold``: by default
    (y_min + y_max)/2 of the labels plotted (0.5 for labels 0/1, 0 for labels
    -1/+1); pass ``trainer.threshold`` to draw the boundary the trainer's
    accuracy uses (a test set may hold one class only); for several outputs each point of the
    grid takes the colour of its argmax. Pass ``ax`` to draw into an existing
    Axes (e.g. one panel of a comparison; no colour bar is added then); the
    Figure returned is its figure.
    """
    points, labels = _check_points(X, y)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise InvalidArgumentError(f"plot_decision_boundary: resolution must be an int >= 2, got {resolution!r}")
    plt = pyplot()
    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
        plt.close(fig)
    xs = _span([p[0] for p in points], resolution)
    ys = _span([p[1] for p in points], resolution)
    classes = sorted(set(labels))
    flat = model_outputs(model, [[u, v] for v in ys for u in xs])
    outputs = [flat[i : i + len(xs)] for i in range(0, len(flat), len(xs))]
    if isinstance(outputs[0][0], float):
        z = outputs
        if threshold is None:
            threshold = (classes[0] + classes[-1]) / 2
        low, high = min(min(row) for row in z), max(max(row) for row in z)
        # Limits symmetric about the threshold put it at the palette's neutral middle.
        reach = max(high - threshold, threshold - low)
        filled = ax.contourf(
            xs, ys, z, levels=20, cmap="RdBu_r", alpha=0.55, vmin=threshold - reach, vmax=threshold + reach
        )
        if low < threshold < high:
            ax.contour(xs, ys, z, levels=[threshold], colors="black", linewidths=1.5)
        if own_figure:
            ax.figure.colorbar(filled, ax=ax, label="model output")
    else:
        z = [[float(row.index(max(row))) for row in line] for line in outputs]  # type: ignore[union-attr]
        count = len(outputs[0][0])  # type: ignore[arg-type]
        ax.contourf(xs, ys, z, levels=[k - 0.5 for k in range(count + 1)], cmap="tab10", alpha=0.35)
    for k, label in enumerate(classes):
        chosen = [p for p, t in zip(points, labels) if t == label]
        color = CLASS_COLORS[k] if len(classes) == 2 else f"C{k}"
        ax.scatter(
            [p[0] for p in chosen], [p[1] for p in chosen], s=18, color=color, edgecolors="white", linewidths=0.5,
            label=f"class {label:g}",
        )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize="small", loc="upper right")
    if title:
        ax.set_title(title)
    return ax.figure  # type: ignore[return-value]


def model_outputs(model: Callable[[list[float]], Value | list[Value]], points: list[list[float]]) -> list[Any]:
    """The model's outputs at many points: a float per point (one output) or a list of floats.

    An `nn.MLP` is traced once and replayed over all points with numpy
    (`autograd.trace`, a few hundred times faster); any other callable, or
    an MLP without numpy, is evaluated point by point under `no_grad`.
    """
    if isinstance(model, MLP):
        from autograd.trace import trace

        try:
            return list(trace(model, points[0]).forward(points).tolist())
        except ImportError:  # numpy is missing: evaluate point by point below
            pass
    with no_grad():
        outputs = [model(point) for point in points]
    return [o.data if isinstance(o, Value) else [v.data for v in o] for o in outputs]


def _check_points(X: Sequence[Sequence[float]], y: Sequence[float]) -> tuple[list[list[float]], list[float]]:
    if len(X) != len(y):
        raise ShapeError(f"plot_decision_boundary: {len(X)} points but {len(y)} targets")
    if len(X) == 0:  # not `not X`: X may be a numpy array
        raise InvalidArgumentError("plot_decision_boundary: no points to plot")
    points = [[float(c) for c in p] for p in X]
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ShapeError(f"plot_decision_boundary: needs 2-D points, X[{i}] has {len(p)} coordinates")
    return points, [float(t) for t in y]


def _span(coordinates: list[float], count: int) -> list[float]:
    """``count`` evenly spaced values covering the data and a 10% margin on each side."""
    low, high = min(coordinates), max(coordinates)
    margin = 0.1 * (high - low) or 0.5
    low, high = low - margin, high + margin
    return [low + (high - low) * k / (count - 1) for k in range(count)]


def save_training_plots(
    out: Path,
    model: MLP,
    history: History,
    X: Sequence[Sequence[float]],
    y: Sequence[float],
    loss: Callable[[Any, Any], Value],
) -> tuple[list[Path], list[str]]:
    """Write ``loss.png``, ``boundary.png`` (2-D inputs) and ``graph.svg`` into ``out``.

    ``graph.svg`` is the graph of the loss of the first sample ``(X[0], y[0])``,
    coloured by gradient, with one cluster per neuron (one box per neuron when
    that is over `draw_graph`'s ``max_nodes``). A file whose optional
    dependency is missing (matplotlib; graphviz or its `dot` program), or
    whose graph is too large even collapsed, is skipped.

    Returns:
        The paths written, and one line per skipped file saying why.
    """
    written: list[Path] = []
    skipped: list[str] = []
    try:
        written.append(_save_figure(plot_history(history), out / "loss.png"))
        if len(X[0]) == 2:
            written.append(_save_figure(plot_decision_boundary(model, X, y), out / "boundary.png"))
    except ImportError as exc:
        skipped.append(f"loss.png and boundary.png skipped: {exc}")
    try:
        graph = _one_sample_graph(model, X[0], y[0], loss)
        (out / "graph.svg").write_bytes(graph.pipe(format="svg"))
        written.append(out / "graph.svg")
    except GraphvizNotFoundError:
        skipped.append("graph.svg skipped: Graphviz's `dot` program is not installed (e.g. apt-get install graphviz)")
    except (ImportError, InvalidArgumentError) as exc:
        skipped.append(f"graph.svg skipped: {exc}")
    return written, skipped


def _save_figure(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


def _one_sample_graph(model: MLP, x: Sequence[float], t: Any, loss: Callable[[Any, Any], Value]) -> Any:
    model.zero_grad()
    error = loss(model(x), t)
    error.backward()
    try:
        return draw_graph(error, color_by="grad", cluster=True)
    except InvalidArgumentError:  # over max_nodes: one box per neuron instead
        return draw_graph(error, color_by="grad", cluster="collapse")
    finally:
        model.zero_grad()
