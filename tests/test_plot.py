"""`nn.plot`: learning curves and decision boundaries as matplotlib Figures, saved as PNG.

Expected curves are the numbers put into the History; the expected boundary of
the model o = σ(x1 - x2) is the line x1 = x2 (σ(z) = 0.5 exactly when z = 0).
"""

from __future__ import annotations

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
from nn.plot import CLASS_COLORS, model_outputs, plot_decision_boundary, plot_history, save_training_plots
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


def test_decision_boundary_scatters_each_class_in_its_colour() -> None:
    ax = plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=5).axes[0]
    scatters = {c.get_label(): c for c in ax.collections if c.get_label().startswith("class")}
    assert sorted(scatters) == ["class 0", "class 1"]
    assert len(scatters["class 0"].get_offsets()) == 2 and len(scatters["class 1"].get_offsets()) == 3
    assert matplotlib.colors.to_hex(scatters["class 1"].get_facecolor()[0]) == CLASS_COLORS[1]
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"


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
    assert right.get_title() == "right" and not left.collections
    assert len(fig.axes) == 2  # no colour bar squeezed into the caller's layout


def test_decision_boundary_rejects_bad_data() -> None:
    with pytest.raises(ShapeError, match="5 points but 2 targets"):
        plot_decision_boundary(diagonal_model, POINTS, [0, 1])
    with pytest.raises(ShapeError, match="2-D points"):
        plot_decision_boundary(diagonal_model, [[0.0, 1.0, 2.0]], [0])
    with pytest.raises(InvalidArgumentError, match="resolution"):
        plot_decision_boundary(diagonal_model, POINTS, LABELS, resolution=1)


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


def test_training_graph_is_one_samples_loss_clustered(dot_program: str, tmp_path: Path) -> None:
    model, history, X, y = trained_xor()
    written, skipped = save_training_plots(tmp_path, model, history, X, y, mse)
    assert skipped == [] and tmp_path / "graph.svg" in written
    texts = svg_texts(tmp_path / "graph.svg")
    for expected in ("L1", "L1.N0", "L1.N1", "L2.N0", "L2.N0.w1", "legend"):
        assert expected in texts, expected
    assert "data 0" in texts  # the first XOR sample, x = (0, 0)


def test_training_graph_collapses_neurons_when_clusters_are_too_big(dot_program: str, tmp_path: Path) -> None:
    """3-40-1: each hidden neuron draws 14 nodes (4 parameters, 3 products, Σ and σ, each result
    with its operation), 560 in all: over 500, so one box per neuron. (3 inputs: no boundary.png.)"""
    model = nn.MLP(3, [40, 1], seed=0)
    save_training_plots(tmp_path, model, History(loss=[0.3]), [[0.5, 0.1, 0.2]], [1.0], mse)
    texts = svg_texts(tmp_path / "graph.svg")
    assert "4 parameters" in texts and "41 parameters" in texts and "L1.N0.w1" not in texts


def test_training_graph_too_big_even_collapsed_is_skipped_with_a_note(tmp_path: Path) -> None:
    model = nn.MLP(3, [600, 1], seed=0)
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
    if (tmp_path / "graph.svg").exists():
        assert "L2.N0" in svg_texts(tmp_path / "graph.svg")
    else:
        assert "note: graph.svg skipped" in out


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
