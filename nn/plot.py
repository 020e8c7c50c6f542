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
from autograd.draw import GraphvizNotFoundError, format_number
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


def plot_history(
    history: Histories, title: str | None = None, loss_name: str = "loss", log_scale: bool = False
) -> Figure:
    """Loss per epoch (left) and accuracy per epoch (right, when recorded).

    Training curves are solid, validation curves dashed. ``history`` is one
    `History` from `Trainer.fit`, or a mapping ``{name: History}`` to compare
    runs on the same axes: one colour per run, explained in a legend beside
    the panels (each line keeps its own label, e.g. ``"Adam: validation"``).

    Args:
        title: the figure's title, e.g. ``"xor: MLP 2-2-1 (sigmoid), SGD lr=0.5"``.
        loss_name: the loss's name on the loss axis (``"mse"``, ``"binary_cross_entropy"``).
        log_scale: a logarithmic loss axis, where a loss falling by decades
            (late in training) stays visible instead of hugging zero.
    """
    if not isinstance(loss_name, str):
        raise InvalidTypeError(f"plot_history: loss_name must be a str, got {type(loss_name).__name__}")
    if not isinstance(log_scale, bool):
        raise InvalidTypeError(f"plot_history: log_scale must be True or False, got {type(log_scale).__name__}")
    runs = _runs(history)
    with_accuracy = any(run.accuracy for run in runs.values())
    with_validation = any(run.val_loss for run in runs.values())
    plt = pyplot()
    width = (10 if with_accuracy else 5.5) + (1.5 if len(runs) > 1 else 0)
    fig, axes = plt.subplots(1, 2 if with_accuracy else 1, figsize=(width, 4), squeeze=False, layout="constrained")
    plt.close(fig)
    panels: list[tuple[Axes, str, Callable[[Any], tuple[Sequence[float], Sequence[float]]]]] = [
        (axes[0][0], "loss" if loss_name == "loss" else f"loss ({loss_name})", lambda run: (run.loss, run.val_loss))
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
        if log_scale and ax is axes[0][0]:
            ax.set_yscale("log")
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
    X_test: Sequence[Sequence[float]] | None = None,
    y_test: Sequence[float] | None = None,
    threshold: float | None = None,
) -> Figure:
    """The model's output over the plane, its decision boundary, and the points (X, y).

    For one output o, the background shows o on a grid of ``resolution²``
    points and the boundary is the level o = ``threshold``: by default
    (y_min + y_max)/2 of the training labels (0.5 for labels 0/1, 0 for labels
    -1/+1); pass ``trainer.threshold`` to draw the boundary the trainer's
    accuracy uses (a training set may hold one class only). For K outputs
    each point of the grid takes the colour of its argmax, class k = output k,
    and the points of class k the same colour. Training points are filled,
    test points (``X_test``, ``y_test``) hollow rings. The title ends with
    the accuracy on each set, as this picture decides it (the side of the
    boundary, or the argmax). The legend sits under the plot, where it hides
    no point (inside the Axes, at matplotlib's emptiest corner, when ``ax``
    is given).

    Pass ``ax`` to draw into an existing Axes (e.g. one panel of a
    comparison; no colour bar is added then); the Figure returned is its figure.
    """
    points, labels = _check_points(X, y)
    with_test = X_test is not None or y_test is not None
    test_points, test_labels = _check_points(X_test, y_test, "test ") if with_test else ([], [])
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise InvalidTypeError(
            f"plot_decision_boundary: resolution must be an int >= 2, got {type(resolution).__name__}"
        )
    if resolution < 2:
        raise InvalidArgumentError(f"plot_decision_boundary: resolution must be an int >= 2, got {resolution!r}")
    plt = pyplot()
    from matplotlib.colors import ListedColormap

    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5.2), layout="constrained")
        plt.close(fig)
    everything = points + test_points
    xs = _span([p[0] for p in everything], resolution)
    ys = _span([p[1] for p in everything], resolution)
    flat = model_outputs(model, [[u, v] for v in ys for u in xs])
    outputs = [flat[i : i + len(xs)] for i in range(0, len(flat), len(xs))]
    single = isinstance(outputs[0][0], float)
    if single:
        classes = sorted(set(labels) | set(test_labels))
        if threshold is None:
            threshold = (min(labels) + max(labels)) / 2
        z = outputs
        low, high = min(min(row) for row in z), max(max(row) for row in z)
        # Limits symmetric about the threshold put it at the palette's neutral middle.
        reach = max(high - threshold, threshold - low) or 1.0
        filled = ax.contourf(
            xs, ys, z, levels=20, cmap="RdBu_r", alpha=0.55, vmin=threshold - reach, vmax=threshold + reach
        )
        if low < threshold < high:
            ax.contour(xs, ys, z, levels=[threshold], colors="black", linewidths=1.5)
        if own_figure:
            ax.figure.colorbar(filled, ax=ax, label="model output", shrink=0.8)
        colors = {label: CLASS_COLORS[k] if len(classes) == 2 else _class_color(k) for k, label in enumerate(classes)}
    else:
        count = len(outputs[0][0])  # type: ignore[arg-type]
        z = [[float(row.index(max(row))) for row in line] for line in outputs]  # type: ignore[union-attr]
        palette = [CLASS_COLORS[k] if count == 2 else _class_color(k) for k in range(count)]
        ax.contourf(xs, ys, z, levels=[k - 0.5 for k in range(count + 1)], cmap=ListedColormap(palette), alpha=0.3)
        colors = {float(k): palette[k] for k in range(count)}
        classes = sorted(set(labels) | set(test_labels))
        for label in classes:
            colors.setdefault(label, "#000000")  # a label no output stands for: black, and never predicted
    for label in classes:
        color = colors[label]
        chosen = [p for p, t in zip(points, labels) if t == label]
        if chosen:
            ax.scatter(
                [p[0] for p in chosen], [p[1] for p in chosen], s=46, color=color, edgecolors="black",
                linewidths=0.7, label=f"class {label:g}", zorder=3,
            )
        tested = [p for p, t in zip(test_points, test_labels) if t == label]
        if tested:
            ax.scatter(
                [p[0] for p in tested], [p[1] for p in tested], s=46, facecolors="none", edgecolors=color,
                linewidths=1.8, label=f"class {label:g} (test)", zorder=3,
            )
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    decide = _decision(single, labels, threshold)
    scores = [f"train accuracy {_accuracy(model, points, labels, decide):.0%}"]
    if test_points:
        scores.append(f"test {_accuracy(model, test_points, test_labels, decide):.0%}")
    ax.set_title((f"{title}\n" if title else "") + ", ".join(scores), fontsize="medium")
    handles, names = ax.get_legend_handles_labels()
    if own_figure:
        ax.figure.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4), fontsize="small")
    else:
        ax.legend(fontsize="small", loc="best")
    return ax.figure  # type: ignore[return-value]


def _class_color(k: int) -> str:
    """Class k's colour beyond two classes: matplotlib's tab10 cycle."""
    import matplotlib
    from matplotlib.colors import to_hex

    return str(to_hex(matplotlib.colormaps["tab10"](k % 10)))


def _decision(single: bool, labels: list[float], threshold: float | None) -> Callable[[Any], float]:
    """The class this picture gives an output: the side of the threshold, or the argmax."""
    if not single:
        return lambda out: float(out.index(max(out)))
    low, high = min(labels), max(labels)
    cut = (low + high) / 2 if threshold is None else threshold
    return lambda out: high if out > cut else low


def _accuracy(model: Any, points: list[list[float]], labels: list[float], decide: Callable[[Any], float]) -> float:
    outputs = model_outputs(model, points)
    return sum(decide(out) == label for out, label in zip(outputs, labels)) / len(labels)


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


def _check_points(
    X: Sequence[Sequence[float]] | None, y: Sequence[float] | None, which: str = ""
) -> tuple[list[list[float]], list[float]]:
    if X is None or y is None:
        raise InvalidArgumentError("plot_decision_boundary: pass both X_test and y_test, or neither")
    if len(X) != len(y):
        raise ShapeError(f"plot_decision_boundary: {len(X)} {which}points but {len(y)} {which}targets")
    if len(X) == 0:  # not `not X`: X may be a numpy array
        raise InvalidArgumentError(f"plot_decision_boundary: no {which}points to plot")
    points = [[float(c) for c in p] for p in X]
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ShapeError(f"plot_decision_boundary: needs 2-D points, {which}X[{i}] has {len(p)} coordinates")
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
    *,
    untrained: MLP | None = None,
    test: tuple[Sequence[Sequence[float]], Sequence[float]] | None = None,
    title: str | None = None,
    loss_name: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write ``loss.png``, ``boundary.png`` (2-D inputs) and ``graph.svg`` into ``out``.

    ``loss.png`` and ``boundary.png`` carry ``title`` (e.g. dataset, model and
    optimizer) and the loss's name (``loss_name``, else the loss function's
    name); ``boundary.png`` shows the ``test`` points hollow and the accuracies.

    ``graph.svg`` is the labelled graph (`nn.draw.sample_graph`: x₁, net, h,
    ŷ, t, E, δ) of one sample's error, coloured by gradient, with one cluster
    per neuron (one box per neuron when that is over `draw_graph`'s
    ``max_nodes``): the sample is the first whose inputs are all nonzero (an
    input of 0 gives its weights a gradient of exactly 0), the model
    ``untrained`` when given (the gradients of the first step of training,
    before they shrink), else ``model``. A file whose optional dependency is
    missing (matplotlib; graphviz or its `dot` program), or whose graph is too
    large even collapsed, is skipped.

    Returns:
        The paths written, and one line per skipped file saying why.
    """
    written: list[Path] = []
    skipped: list[str] = []
    name = loss_name or str(getattr(loss, "__name__", "loss"))
    X_test, y_test = test if test is not None and len(test[0]) else (None, None)
    try:
        written.append(_save_figure(plot_history(history, title=title, loss_name=name), out / "loss.png"))
        if len(X[0]) == 2:
            figure = plot_decision_boundary(model, X, y, title=title, X_test=X_test, y_test=y_test)
            written.append(_save_figure(figure, out / "boundary.png"))
    except ImportError as exc:
        skipped.append(f"loss.png and boundary.png skipped: {exc}")
    try:
        graph = _one_sample_graph(untrained or model, X, y, loss, "untrained model" if untrained else "trained model")
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


def teaching_sample(X: Sequence[Sequence[float]]) -> int:
    """The index of the first sample whose inputs are all nonzero (else the one with most nonzero inputs)."""
    counts = [sum(1 for c in x if float(c) != 0.0) for x in X]
    return counts.index(max(counts))


def teaching_example(X: Sequence[Sequence[float]], y: Sequence[Any]) -> tuple[int, Any]:
    """The `teaching_sample` index and its target (a number, or a list for several outputs)."""
    k = teaching_sample(X)
    return k, y[k] if isinstance(y[k], (int, float)) else list(y[k])


def _one_sample_graph(
    model: MLP, X: Sequence[Sequence[float]], y: Sequence[Any], loss: Callable[[Any, Any], Value], which: str
) -> Any:
    from .draw import CAPTION, sample_graph

    k, t = teaching_example(X, y)
    x_text = ", ".join(format_number(float(c), 4) for c in X[k])
    t_text = ", ".join(format_number(float(c), 4) for c in (t if isinstance(t, list) else [t]))
    name = getattr(loss, "__name__", "loss")
    caption = f"{CAPTION}\nE = {name}(ŷ, t) of sample {k + 1}: x = ({x_text}), t = {t_text}; {which}"
    try:
        sample = sample_graph(model, X[k], t, loss)
        try:
            return sample.draw(caption=caption)
        except InvalidArgumentError:  # over max_nodes: one box per neuron instead
            return sample.draw(caption=caption, cluster="collapse")
    finally:
        model.zero_grad()
