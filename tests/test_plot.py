"""`nn.plot`: learning curves and decision boundaries as matplotlib Figures, saved as PNG,
and the plots of a training run (loss.png, boundary.png, graph.svg).

Expected curves are the numbers put into the History; the expected boundary of
the model o = σ(x1 - x2) is the line x1 = x2 (σ(z) = 0.5 exactly when z = 0), so a
point is classified 1 exactly when x1 > x2 (accuracies below are counted by hand).
"""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require_module

import nn
from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from nn import cli
from nn.losses import mse
from nn.optim import SGD
from nn.plot import (
    CLASS_COLORS,
    model_outputs,
    plot_decision_boundary,
    plot_history,
    save_training_plots,
    teaching_sample,
)
from nn.trainer import History

matplotlib = require_module("matplotlib", extra="viz")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def lines_by_label(ax: object) -> dict[str, object]:
    return {line.get_label(): line for line in ax.get_lines()}  # type: ignore[attr-defined]


def assert_valid_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_history_plot_has_loss_and_accuracy_train_and_validation(tmp_path: Path) -> None:
    history = History(loss=[0.9, 0.5, 0.3], accuracy=[0.5, 0.75, 1.0], val_loss=[1.0, 0.6, 0.4],
                      val_accuracy=[0.5, 0.5, 0.75])  # fmt: skip
    fig = plot_history(history)
    loss_ax, accuracy_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and accuracy_ax.get_ylabel() == "accuracy"
    assert loss_ax.get_xlabel() == "epoch"
    loss_lines, accuracy_lines = lines_by_label(loss_ax), lines_by_label(accuracy_ax)
    assert sorted(loss_lines) == ["train", "validation"]
    assert list(loss_lines["train"].get_xdata()) == [1, 2, 3]
    assert list(loss_lines["train"].get_ydata()) == [0.9, 0.5, 0.3]
    assert list(loss_lines["validation"].get_ydata()) == [1.0, 0.6, 0.4]
    assert loss_lines["validation"].get_linestyle() == "--"
    assert list(accuracy_lines["validation"].get_ydata()) == [0.5, 0.5, 0.75]
    fig.savefig(tmp_path / "loss.png")
    assert_valid_png(tmp_path / "loss.png")


def test_history_without_accuracy_or_validation_has_one_panel_one_line() -> None:
    fig = plot_history(History(loss=[3.0, 2.0]))
    (ax,) = fig.axes
    assert list(lines_by_label(ax)) == ["train"]


def test_several_runs_share_the_axes_one_colour_each() -> None:
    runs = {"SGD": History(loss=[1.0, 0.8]), "Adam": History(loss=[1.0, 0.4])}
    fig = plot_history(runs, title="optimizers")
    lines = lines_by_label(fig.axes[0])
    assert sorted(lines) == ["Adam: train", "SGD: train"]
    assert lines["SGD: train"].get_color() != lines["Adam: train"].get_color()
    (legend,) = fig.legends  # one legend for the figure: a colour per run, a style per data set
    assert [text.get_text() for text in legend.get_texts()] == ["SGD", "Adam", "train"]
    assert fig._suptitle.get_text() == "optimizers"


def test_history_plot_has_a_title_the_losss_name_and_a_log_scale_option() -> None:
    history = History(loss=[0.25, 0.01, 1e-4])
    fig = plot_history(history, title="xor: MLP 2-2-1 (sigmoid), SGD lr=0.5", loss_name="mse")
    (ax,) = fig.axes
    assert fig._suptitle.get_text() == "xor: MLP 2-2-1 (sigmoid), SGD lr=0.5"
    assert ax.get_ylabel() == "loss (mse)" and ax.get_yscale() == "linear"
    assert plot_history(history, log_scale=True).axes[0].get_yscale() == "log"
    with pytest.raises(InvalidTypeError, match="log_scale"):
        plot_history(history, log_scale="yes")  # type: ignore[arg-type]


def test_history_must_be_a_history() -> None:
    with pytest.raises(InvalidTypeError, match="History"):
        plot_history([0.5, 0.4])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no history"):
        plot_history({})


def diagonal_model(x: list[float]) -> Value:
    """o = σ(x1 - x2): o > 0.5 below the diagonal x1 = x2, o < 0.5 above it."""
    return (Value(x[0]) - Value(x[1])).sigmoid()


POINTS = [[0.0, 1.0], [0.5, 2.0], [1.0, 0.0], [2.0, 0.5], [1.5, 0.2]]
LABELS = [0.0, 0.0, 1.0, 1.0, 1.0]


def test_decision_boundary_is_the_models_half_level(tmp_path: Path) -> None:
    fig = plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=21)
    ax, colorbar = fig.axes
    assert colorbar.get_ylabel() == "model output"
    (boundary,) = [c for c in ax.collections if hasattr(c, "levels") and list(c.levels) == [0.5]]
    vertices = [vertex for segment in boundary.allsegs[0] for vertex in segment]
    assert len(vertices) >= 2
    for x1, x2 in vertices:
        assert x1 == pytest.approx(x2, abs=1e-9)
    fig.savefig(tmp_path / "boundary.png")
    assert_valid_png(tmp_path / "boundary.png")


def scatters_of(ax: object) -> dict[str, object]:
    return {c.get_label(): c for c in ax.collections if c.get_label().startswith("class")}  # type: ignore[attr-defined]


def test_decision_boundary_scatters_each_class_in_its_colour() -> None:
    ax = plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=5).axes[0]
    scatters = scatters_of(ax)
    assert sorted(scatters) == ["class 0", "class 1"]
    assert len(scatters["class 0"].get_offsets()) == 2 and len(scatters["class 1"].get_offsets()) == 3
    assert matplotlib.colors.to_hex(scatters["class 1"].get_facecolor()[0]) == CLASS_COLORS[1]
    assert scatters["class 1"].get_sizes()[0] >= 40  # readable markers (matplotlib's default is 36)
    assert ax.get_xlabel() == "x₁" and ax.get_ylabel() == "x₂"


TEST_POINTS = [[0.2, 0.1], [0.0, 1.5], [2.0, 0.0]]
TEST_LABELS = [0.0, 0.0, 1.0]  # (0.2, 0.1) has x1 > x2: classified 1, wrong; the other two right: 2/3


def test_test_points_are_hollow_and_the_title_gives_both_accuracies() -> None:
    fig = plot_decision_boundary(
        diagonal_model, POINTS, LABELS, resolution=5, title="diagonal", X_test=TEST_POINTS, y_test=TEST_LABELS
    )
    ax = fig.axes[0]
    scatters = scatters_of(ax)
    assert sorted(scatters) == ["class 0", "class 0 (test)", "class 1", "class 1 (test)"]
    hollow = scatters["class 0 (test)"]
    assert len(hollow.get_offsets()) == 2
    assert hollow.get_facecolor().shape[0] == 0 or hollow.get_facecolor()[0][3] == 0.0  # no fill
    assert matplotlib.colors.to_hex(hollow.get_edgecolor()[0]) == CLASS_COLORS[0]
    assert ax.get_title() == "diagonal\ntrain accuracy 100%, test 67%"


def test_the_legend_is_outside_the_plot_where_it_hides_no_point() -> None:
    """XOR's points fill the corners, where a legend inside the axes hid (1, 1)."""
    xor_points, xor_labels = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0]
    fig = plot_decision_boundary(diagonal_model, xor_points, xor_labels, resolution=5)
    assert fig.axes[0].get_legend() is None
    (legend,) = fig.legends
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box, axes_box = legend.get_window_extent(renderer), fig.axes[0].get_window_extent(renderer)
    assert box.y1 <= axes_box.y0 or box.x0 >= axes_box.x1  # below or beside the axes, never over them


def test_three_classes_get_one_colour_each_for_regions_and_points() -> None:
    """Outputs (x1, x2, 1.2): the argmax is class 0, 1 or 2; points of class k take region k's colour."""
    def three(x: list[float]) -> list[Value]:
        return [Value(x[0]), Value(x[1]), Value(1.2)]

    points, labels = [[2.0, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 2.5]], [0, 1, 2, 1]
    fig = plot_decision_boundary(three, points, labels, resolution=6)
    ax = fig.axes[0]
    (regions,) = [c for c in ax.collections if hasattr(c, "levels")]
    assert list(regions.levels) == [-0.5, 0.5, 1.5, 2.5]
    region_colors = [matplotlib.colors.to_hex(regions.cmap(regions.norm(k))) for k in range(3)]
    scatters = scatters_of(ax)
    point_colors = [matplotlib.colors.to_hex(scatters[f"class {k}"].get_facecolor()[0]) for k in range(3)]
    assert region_colors == point_colors and len(set(point_colors)) == 3
    assert ax.get_title() == "train accuracy 75%"  # (3, 2.5) has argmax 0, not its label 1


def test_labels_minus_one_and_one_put_the_boundary_at_zero() -> None:
    """o = x1 - x2 (no squashing): the level halfway between -1 and 1 is 0, again x1 = x2."""
    fig = plot_decision_boundary(lambda x: Value(x[0]) - Value(x[1]), POINTS, [-1, -1, 1, 1, 1], resolution=11)
    (boundary,) = [c for c in fig.axes[0].collections if hasattr(c, "levels") and list(c.levels) == [0.0]]
    for x1, x2 in (v for segment in boundary.allsegs[0] for v in segment):
        assert x1 == pytest.approx(x2, abs=1e-9)


def test_several_outputs_colour_regions_by_argmax() -> None:
    """Outputs (x1, x2): class 0 wins where x1 > x2, so the region levels are the classes 0 and 1."""
    fig = plot_decision_boundary(lambda x: [Value(x[0]), Value(x[1])], POINTS, [0, 0, 1, 1, 1], resolution=6)
    (regions,) = [c for c in fig.axes[0].collections if hasattr(c, "levels")]
    assert list(regions.levels) == [-0.5, 0.5, 1.5]


GRID = [[u / 4, v / 4] for u in range(-4, 5) for v in range(-4, 5)]


@pytest.mark.parametrize("nouts", [[3, 1], [3, 2]], ids=["one output", "two outputs"])
def test_model_outputs_of_an_mlp_replayed_with_numpy_match_eager_evaluation(nouts: list[int]) -> None:
    """An MLP goes through the traced replay; the same model behind a lambda is evaluated point by point."""
    pytest.importorskip("numpy")
    model = nn.MLP(2, nouts, activation="tanh", seed=4)
    traced, eager = model_outputs(model, GRID), model_outputs(lambda x: model(x), GRID)
    assert len(traced) == len(eager) == len(GRID)
    for fast, slow in zip(traced, eager):
        assert fast == pytest.approx(slow, abs=1e-12)


def test_model_outputs_of_an_mlp_without_numpy_are_evaluated_point_by_point(monkeypatch) -> None:
    model = nn.MLP(2, [3, 1], seed=4)
    expected = [model(point).data for point in GRID[:5]]  # type: ignore[union-attr]
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert model_outputs(model, GRID[:5]) == expected


def test_decision_boundary_into_given_axes() -> None:
    plt = pytest.importorskip("matplotlib.pyplot")
    fig, (left, right) = plt.subplots(1, 2)
    plt.close(fig)
    assert plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=4, ax=right, title="right") is fig
    assert right.get_title() == "right\ntrain accuracy 100%" and not left.collections
    assert right.get_legend() is not None and not fig.legends  # the caller's figure gets no figure legend
    assert len(fig.axes) == 2  # no colour bar squeezed into the caller's layout


def test_decision_boundary_rejects_bad_data() -> None:
    with pytest.raises(ShapeError, match="5 points but 2 targets"):
        plot_decision_boundary(diagonal_model, POINTS, [0, 1])
    with pytest.raises(ShapeError, match="2-D points"):
        plot_decision_boundary(diagonal_model, [[0.0, 1.0, 2.0]], [0])
    with pytest.raises(InvalidArgumentError, match="resolution"):
        plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=1)
    with pytest.raises(InvalidTypeError, match="resolution"):
        plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=2.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="both X_test and y_test"):
        plot_decision_boundary(diagonal_model, POINTS, LABELS, X_test=TEST_POINTS)
    with pytest.raises(ShapeError, match="3 test points but 1 test targets"):
        plot_decision_boundary(diagonal_model, POINTS, LABELS, X_test=TEST_POINTS, y_test=[0])


def test_missing_matplotlib_names_the_viz_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"textbook-autograd\[viz\]"):
        plot_history(History(loss=[1.0]))


# -- the plots of a training run (python -m nn train --out) -------------------------------


def trained_xor() -> tuple[nn.MLP, History, list[list[float]], list[float]]:
    X, y = nn.data.xor()
    model = nn.MLP(2, [2, 1], seed=0)
    history = nn.Trainer(model, SGD(model.parameters(), lr=0.5, momentum=0.9), mode="batch").fit(
        X, y, epochs=5, progress=False
    )
    return model, history, X, y


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [(t.text or "").strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_training_plots_are_written_as_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot`: the PNGs must not depend on it
    model, history, X, y = trained_xor()
    written, skipped = save_training_plots(tmp_path, model, history, X, y, mse)
    assert written == [tmp_path / "loss.png", tmp_path / "boundary.png"]
    for path in written:
        assert_valid_png(path)
    assert skipped == ["graph.svg skipped: Graphviz's `dot` program is not installed (e.g. apt-get install graphviz)"]
    assert all(p.grad == 0.0 for p in model.parameters())  # drawing the graph leaves no gradients behind


def test_training_graph_is_the_labelled_graph_of_the_first_sample_with_nonzero_inputs(
    dot_program: str, tmp_path: Path
) -> None:
    """XOR's samples are (0,0), (0,1), (1,0), (1,1): the first with every input nonzero is sample 4.
    At (0, 0) every first-layer weight has ∂E/∂w = δ·x = 0: the old picture showed nothing there."""
    model, history, X, y = trained_xor()
    written, skipped = save_training_plots(tmp_path, model, history, X, y, mse)
    assert skipped == [] and tmp_path / "graph.svg" in written
    svg = (tmp_path / "graph.svg").read_bytes()
    texts = svg_texts(tmp_path / "graph.svg")
    for expected in ("L1", "L1.N0", "L1.N1", "L2.N0", "L2.N0.w1", "x₁", "x₂", "net₁", "h₁", "ŷ", "t", "E", "grad > 0"):
        assert expected in texts, expected
    assert any("sample 4: x = (1, 1), t = 0; trained model" in text for text in texts)
    assert not any(text.startswith("/") for text in texts)  # no "/ 1" node: mse of one sample is (ŷ - t)²
    assert not any(text.endswith(" -0") for text in texts)
    assert float(ET.fromstring(svg).get("width", "").removesuffix("pt")) * 96 / 72 <= 1000
    assert all(p.grad == 0.0 for p in model.parameters())


def test_training_graph_shows_the_untrained_model_when_given(dot_program: str, tmp_path: Path) -> None:
    """The untrained model's net₁ at sample 4 is computed by hand from its own weights."""
    import copy

    model, history, X, y = trained_xor()
    untrained = nn.MLP(2, [2, 1], seed=0)
    before = copy.deepcopy(untrained)
    save_training_plots(tmp_path, model, history, X, y, mse, untrained=untrained)
    texts = svg_texts(tmp_path / "graph.svg")
    assert any(text.endswith("; untrained model") for text in texts)
    n0 = before.layers[0].neurons[0]
    net1 = n0.w[0].data * 1.0 + n0.w[1].data * 1.0 + n0.b.data
    assert f"data {net1:.3g}" in texts
    assert all(p.grad == 0.0 for p in untrained.parameters())


def test_teaching_sample_is_the_first_with_all_inputs_nonzero() -> None:
    assert teaching_sample([[0, 0], [0, 1], [1, 0], [1, 1]]) == 3
    assert teaching_sample([[0.5, -0.1], [1, 1]]) == 0
    assert teaching_sample([[0, 0], [0, 2], [0, 3]]) == 1  # none has both: the first with most


def test_training_graph_collapses_neurons_when_clusters_are_too_big(dot_program: str, tmp_path: Path) -> None:
    """3-60-1: each hidden neuron has 9 Values (3 weights, a bias, 3 products, Σ and σ), 540 in all:
    over max_nodes = 500, so one box per neuron. (3 inputs: no boundary.png.)"""
    model = nn.MLP(3, [60, 1], seed=0)
    save_training_plots(tmp_path, model, History(loss=[0.3]), [[0.5, 0.1, 0.2]], [1.0], mse)
    texts = svg_texts(tmp_path / "graph.svg")
    assert "4 parameters" in texts and "61 parameters" in texts and "L1.N0.w1" not in texts


def test_training_graph_too_big_even_collapsed_is_skipped_with_a_note(tmp_path: Path) -> None:
    model = nn.MLP(3, [600, 1], seed=0)  # 601 boxes alone are over 500
    written, skipped = save_training_plots(tmp_path, model, History(loss=[0.3]), [[0.5, 0.1, 0.2]], [1.0], mse)
    assert written == [tmp_path / "loss.png"]  # 3 inputs: no boundary.png
    (note,) = skipped
    assert note.startswith("graph.svg skipped: draw_graph: the graph has") and "one box per neuron" in note


def test_training_plots_without_matplotlib_are_skipped_with_a_note(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    model, history, X, y = trained_xor()
    written, skipped = save_training_plots(tmp_path, model, history, X, y, mse)
    assert not (tmp_path / "loss.png").exists() and not (tmp_path / "boundary.png").exists()
    assert skipped[0].startswith("loss.png and boundary.png skipped:") and "textbook-autograd[viz]" in skipped[0]


def test_cli_out_folder_gains_the_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--epochs", "20", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("loss.png", "boundary.png"):
        assert_valid_png(tmp_path / name)
        assert str(tmp_path / name) in out
    # Issue 11 item 16: under REQUIRE_DOT=1 the graph is required, not allowed to be skipped.
    if shutil.which("dot") is not None or os.environ.get("REQUIRE_DOT") == "1":
        assert (tmp_path / "graph.svg").exists(), out
        texts = svg_texts(tmp_path / "graph.svg")
        assert "L2.N0" in texts and "net₁" in texts
        assert any(text.endswith("; untrained model") for text in texts)
    else:
        assert "note: graph.svg skipped" in out


def test_cli_plots_carry_the_run_and_the_losss_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI passes dataset, model, optimizer and loss to the plots (captured as they are drawn)."""
    from nn import plot

    seen: dict[str, object] = {}
    real_history, real_boundary = plot.plot_history, plot.plot_decision_boundary

    def history_spy(*args: object, **kwargs: object) -> object:
        seen["history"] = kwargs
        return real_history(*args, **kwargs)  # type: ignore[arg-type]

    def boundary_spy(*args: object, **kwargs: object) -> object:
        seen["boundary"] = kwargs
        return real_boundary(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(plot, "plot_history", history_spy)
    monkeypatch.setattr(plot, "plot_decision_boundary", boundary_spy)
    argv = ["train", "--dataset", "moons", "--epochs", "1", "--samples", "40", "--no-progress", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    title = "moons: MLP 2-16-16-1 (tanh), SGD lr=0.1"
    assert seen["history"] == {"title": title, "loss_name": "mse"}
    boundary = seen["boundary"]
    assert boundary["title"] == title and len(boundary["X_test"]) == 10  # type: ignore[index]


def test_cli_notes_a_skipped_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["train", "--epochs", "2", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "note: graph.svg skipped: Graphviz's `dot` program is not installed" in out
    assert (tmp_path / "run" / "loss.png").exists()


def test_agg_backend_without_a_display(tmp_path: Path) -> None:
    """A fresh interpreter with no DISPLAY and no MPLBACKEND plots on Agg (no GUI toolkit needed)."""
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    env["PYTHONPATH"] = str(root)
    script = (
        "import matplotlib; from nn.plot import plot_history; from nn.trainer import History; "
        f"plot_history(History(loss=[1.0, 0.5])).savefig({str(tmp_path / 'loss.png')!r}); "
        "print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().lower() == "agg"
    assert_valid_png(tmp_path / "loss.png")
