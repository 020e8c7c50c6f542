"""`python -m nn train`: the main job, through `nn.cli.main(argv)` and one real subprocess."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nn
from autograd.errors import NonFiniteError
from nn import cli

ROOT = Path(__file__).resolve().parent.parent
SMALL_MOONS = ["--dataset", "moons", "--samples", "40", "--hidden", "4", "--epochs", "2", "--no-progress"]


def test_train_with_no_options_learns_xor(capsys):
    assert cli.main(["train", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "MLP 2-2-1 (sigmoid, output sigmoid)" in out and "SGD(9 parameters, lr=0.5, momentum=0.9" in out
    assert "accuracy 100.0%" in out


def test_outputs_are_written_under_out_which_is_created(tmp_path, capsys):
    out = tmp_path / "runs" / "moons"
    assert cli.main(["train", *SMALL_MOONS, "--seed", "3", "--out", str(out)]) == 0
    model = nn.MLP.load(out / "model.json")
    assert model.nouts == [4, 1] and model.activation == "tanh" and model.output_activation == "sigmoid"
    saved = json.loads((out / "history.json").read_text())
    assert len(saved["history"]["loss"]) == 2 and len(saved["history"]["val_loss"]) == 2
    assert saved["config"]["seed"] == 3 and saved["config"]["hidden"] == [4]
    assert saved["summary"]["test_accuracy"] is not None
    assert f"wrote {out / 'model.json'}" in capsys.readouterr().out


def test_same_seed_gives_the_same_model(tmp_path):
    for name in ("a", "b"):
        assert cli.main(["train", *SMALL_MOONS, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a" / "model.json").read_text() == (tmp_path / "b" / "model.json").read_text()


@pytest.mark.parametrize(
    "options",
    [
        ["--optimizer", "rprop", "--epochs", "20"],
        ["--optimizer", "adam", "--lr", "0.05", "--epochs", "20"],
        ["--nesterov", "--weight-decay", "0.001", "--epochs", "20"],
        ["--mode", "online", "--epochs", "5", "--activation", "relu", "--output-activation", "linear"],
        ["--mode", "minibatch", "--batch-size", "2", "--epochs", "5", "--init", "he_normal"],
        ["--loss", "binary_cross_entropy", "--epochs", "5", "--hidden", "3", "3"],
        ["--dataset", "circles", "--samples", "12", "--noise", "0", "--epochs", "1", "--hidden"],
        ["--dataset", "spiral", "--samples", "12", "--epochs", "1", "--loss", "sse_half"],
        ["--optimizer", "adamw", "--epochs", "5"],
        ["--optimizer", "adam", "--weight-decay", "0.01", "--epochs", "5"],
        ["--schedule", "step", "--step-size", "2", "--gamma", "0.5", "--epochs", "5"],
        ["--schedule", "exponential", "--epochs", "5"],
        ["--schedule", "linear", "--optimizer", "adam", "--epochs", "5"],
        ["--schedule", "cosine", "--epochs", "5", "--clip", "0.5"],
        ["--dataset", "yinyang", "--samples", "24", "--epochs", "1"],
        ["--dataset", "spiral", "--classes", "4", "--samples", "24", "--epochs", "1", "--mode", "batch"],
        ["--dataset", "moons", "--loss", "cross_entropy", "--samples", "20", "--epochs", "1"],
        ["--engine", "eager", "--epochs", "5"],
        ["--engine", "traced", "--epochs", "5"],
    ],
)
def test_every_option_runs(options, capsys):
    assert cli.main(["train", "--no-progress", *options]) == 0
    assert "final: loss" in capsys.readouterr().out


def test_presets_fill_only_what_is_left_out():
    parser, train = cli.build_parser()
    args = cli.resolve(parser.parse_args(["train", "--dataset", "moons", "--epochs", "7"]), train)
    assert (args.hidden, args.activation, args.epochs, args.momentum, args.samples) == ([16, 16], "tanh", 7, 0.9, 200)
    args = cli.resolve(parser.parse_args(["train", "--optimizer", "adam"]), train)
    assert args.lr == cli.DEFAULT_LR["adam"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--lr", "-0.1"], "--lr: must be a number > 0, got -0.1"),
        (["--lr", "abc"], "'abc' is not a number"),
        (["--momentum", "1.0"], "--momentum: must be a number < 1, got 1.0"),
        (["--epochs", "0"], "--epochs: must be an integer >= 1"),
        (["--hidden", "4", "0"], "--hidden: must be an integer >= 1"),
        (["--batch-size", "-2", "--mode", "minibatch"], "--batch-size: must be an integer >= 1"),
        (["--samples", "3", "--dataset", "moons"], "--samples: must be an integer >= 4"),
        (["--noise", "-1", "--dataset", "moons"], "--noise: must be a number >= 0"),
        (["--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["--activation", "softmax"], "invalid choice: 'softmax'"),
        (["--samples", "10"], "do not apply to --dataset xor"),
        (["--optimizer", "adam", "--momentum", "0.5"], "--momentum: only for --optimizer sgd"),
        (["--nesterov", "--momentum", "0"], "--nesterov needs --momentum > 0"),
        (["--batch-size", "4", "--mode", "batch"], "--batch-size applies to --mode minibatch"),
        (["--loss", "binary_cross_entropy", "--output-activation", "tanh"], "--output-activation sigmoid"),
        (["--optimizer", "adamw", "--momentum", "0.5"], "--momentum: only for --optimizer sgd"),
        (["--optimizer", "rprop", "--weight-decay", "0.1"], "--weight-decay: only for --optimizer sgd, adam or adamw"),
        (["--optimizer", "rprop", "--schedule", "cosine"], "--schedule: Rprop adapts its own step sizes"),
        (["--schedule", "linear", "--gamma", "0.5"], "--gamma applies to --schedule step or exponential, not linear"),
        (["--gamma", "0.5"], "--gamma applies to --schedule step or exponential, not none"),
        (["--schedule", "exponential", "--step-size", "2"], "--step-size applies to --schedule step"),
        (["--dataset", "moons", "--classes", "3"], "--classes applies to --dataset spiral, not moons"),
        (["--dataset", "yinyang", "--loss", "mse"], "yinyang has 3 classes: it trains with --loss cross_entropy"),
        (["--dataset", "spiral", "--classes", "3", "--loss", "binary_cross_entropy"], "spiral has 3 classes"),
        (["--dataset", "yinyang", "--output-activation", "sigmoid"], "takes logits .*: --output-activation linear"),
        (["--loss", "cross_entropy", "--output-activation", "tanh"], "--output-activation linear"),
        (["--engine", "jit"], "invalid choice: 'jit'"),
    ],
)
def test_bad_arguments_are_argparse_errors(options, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", *options])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m nn train" in err
    assert re.search(message, err), err


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2 and "required" in capsys.readouterr().err


def test_unwritable_out_is_a_one_line_message_and_exit_code_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert cli.main(["train", "--no-progress", "--epochs", "1", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m nn: error: cannot create --out directory") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_failure_while_writing_is_a_one_line_message(tmp_path, capsys, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "write_outputs", disk_full)
    assert cli.main(["train", "--no-progress", "--epochs", "1", "--out", str(tmp_path)]) == 2
    expected = f"python -m nn: error: cannot write to --out {tmp_path}: No space left on device\n"
    assert capsys.readouterr().err == expected


def test_divergence_is_a_clear_message_and_exit_code_1(capsys):
    options = ["--activation", "linear", "--output-activation", "linear", "--lr", "1e300", "--momentum", "0"]
    assert cli.main(["train", "--no-progress", "--epochs", "20", *options]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m nn: error: training diverged at epoch") and "Traceback" not in err


def test_python_dash_m_nn_runs_in_a_subprocess(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "nn", "train", "--epochs", "300", "--out", str(tmp_path / "xor")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "final: loss" in result.stdout and result.stderr == ""  # stderr is a pipe: no progress bar
    assert {"history.json", "model.json"} <= set(os.listdir(tmp_path / "xor"))  # plots: tests/test_plot.py


@pytest.mark.slow
def test_the_readme_moons_command_generalises(tmp_path, capsys):
    argv = ["train", "--dataset", "moons", "--hidden", "16", "16", "--activation", "tanh", "--optimizer", "sgd",
            "--lr", "0.1", "--momentum", "0.9", "--mode", "minibatch", "--epochs", "50", "--seed", "0",
            "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert cli.main(argv) == 0
    summary = json.loads((tmp_path / "history.json").read_text())["summary"]
    assert summary["test_accuracy"] >= 0.95 and summary["updates"] == 50 * 10  # 150 samples / 16 -> 10 batches


# -- issue 11 item 12: every numeric option is range-checked by argparse --------------------
# option -> (what else it needs, "int" or "float", values that are valid although they look odd)
NUMERIC_OPTIONS = {
    "--samples": (["--dataset", "moons"], "int", []),
    "--noise": (["--dataset", "moons"], "float", ["0"]),
    "--hidden": ([], "int", []),
    "--lr": ([], "float", ["1e308"]),  # valid: training then diverges or saturates (item 19 below)
    "--momentum": ([], "float", ["0"]),
    "--weight-decay": ([], "float", ["0", "1e308"]),
    "--batch-size": (["--mode", "minibatch"], "int", []),
    "--epochs": ([], "int", []),
    "--seed": ([], "int", ["0"]),
    "--classes": (["--dataset", "spiral"], "int", []),
    "--gamma": (["--schedule", "step"], "float", []),
    "--step-size": (["--schedule", "step"], "int", []),
    "--clip": ([], "float", ["1e308"]),  # valid: a limit no gradient reaches
}
HOSTILE_NUMBERS = ["nan", "inf", "-inf", "1e308", "1" + "0" * 308, "-1", "0"]


def test_the_table_names_every_numeric_option_of_the_parser():
    """A new numeric option must be added to NUMERIC_OPTIONS (and so to the tests below)."""
    _, train = cli.build_parser()
    typed = {action.option_strings[0] for action in train._actions if action.type is not None}
    assert typed == set(NUMERIC_OPTIONS) | {"--out"}


def refused_cases():
    for option, (_, kind, valid) in NUMERIC_OPTIONS.items():
        for text in HOSTILE_NUMBERS:
            if text not in valid and not (kind == "float" and text == "1" + "0" * 308 and "1e308" in valid):
                yield pytest.param(option, text, id=f"{option}={text[:6]}")


@pytest.mark.parametrize("option, text", list(refused_cases()))
def test_every_numeric_option_refuses_nan_inf_huge_negative_and_zero_where_invalid(option, text, capsys):
    context = NUMERIC_OPTIONS[option][0]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--no-progress", *context, f"{option}={text}"])  # "-inf" alone looks like an option
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"python -m nn train: error: argument {option}: ") and text in last, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "option, text, message",
    [
        ("--noise", "1e308", "must be a number <= 10, got 1e308"),
        ("--noise", "nan", "must be a number >= 0, got nan"),
        ("--lr", "inf", "must be a finite number, got inf"),
        ("--lr", "0", "must be a number > 0, got 0"),
        ("--momentum", "1", "must be a number < 1, got 1"),
        ("--epochs", "1e308", "'1e308' is not an integer"),
        ("--epochs", "1000001", "must be an integer <= 1000000, got 1000001"),
        ("--hidden", "1001", "must be an integer <= 1000, got 1001"),
        ("--seed", "-1", "must be an integer >= 0, got -1"),
        ("--seed", "4294967296", "must be an integer <= 4294967295, got 4294967296"),
        ("--classes", "1", "must be an integer >= 2, got 1"),
        ("--classes", "21", "must be an integer <= 20, got 21"),
        ("--gamma", "0", "must be a number > 0, got 0"),
        ("--gamma", "1.5", "must be a number <= 1, got 1.5"),
        ("--step-size", "0", "must be an integer >= 1, got 0"),
        ("--clip", "0", "must be a number > 0, got 0"),
    ],
)
def test_range_messages_state_the_bound_that_was_broken(option, text, message, capsys):
    context = NUMERIC_OPTIONS[option][0]
    with pytest.raises(SystemExit):
        cli.main(["train", *context, option, text])
    assert re.search(f"argument {option}: {message}\n$", capsys.readouterr().err)


@pytest.mark.parametrize(
    "option, text", [(o, t) for o, (_, _, valid) in NUMERIC_OPTIONS.items() for t in valid if t == "0"]
)
def test_zero_is_accepted_where_it_means_something(option, text, capsys):
    """No noise, no momentum, no weight decay and seed 0 are ordinary runs."""
    context = NUMERIC_OPTIONS[option][0]
    assert cli.main(["train", "--no-progress", "--epochs", "1", *context, option, text]) == 0
    assert "final: loss" in capsys.readouterr().out


def test_huge_noise_is_refused_before_any_data_is_made(capsys, monkeypatch):
    """Issue 11 item 12: --noise 1e308 made data holding inf and ended in a traceback."""
    monkeypatch.setattr(nn.data, "moons", lambda *args: pytest.fail("data made despite --noise 1e308"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--dataset", "moons", "--noise", "1e308"])
    assert exit_.value.code == 2


def test_an_empty_out_is_refused_rather_than_writing_into_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--no-progress", "--epochs", "1", "--out", ""])
    assert exit_.value.code == 2
    assert "argument --out: must name a folder, got an empty string" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# -- issue 11 item 19: a diverged run never completes, never writes a non-finite file ---------
DIVERGING_RUNS = {
    # ReLU hidden layer, linear output: after one update with η = 1e200 the output is ~1e200
    # and its square (the MSE) overflows to inf.
    "sgd-lr-1e200": ["--lr", "1e200", "--epochs", "1", "--activation", "relu", "--output-activation", "linear"],
    # Adam's first step moves every weight by about η = 1.7e308 (m̂/√v̂ ≈ ±1); the second
    # step adds another ±1.7e308 to weights already there: overflow to ±inf.
    "adam-lr-1.7e308": ["--optimizer", "adam", "--lr", "1.7e308", "--epochs", "2"],
    "weight-decay-1e308": ["--weight-decay", "1e308", "--epochs", "2"],
}


@pytest.mark.parametrize("options", DIVERGING_RUNS.values(), ids=DIVERGING_RUNS.keys())
def test_a_diverged_run_exits_1_with_one_line_and_writes_nothing(options, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", *options, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "completed" not in captured.out and "final:" not in captured.out
    assert captured.err.startswith("python -m nn: error: training diverged") and captured.err.count("\n") == 1
    assert os.listdir(out) == []  # no model.json, no history.json, no plots


def test_a_diverged_run_from_the_shell_exits_1(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "nn", "train", *DIVERGING_RUNS["adam-lr-1.7e308"], "--out", str(tmp_path / "run")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("python -m nn: error: training diverged") and result.stderr.count("\n") == 1
    assert "completed" not in result.stdout and os.listdir(tmp_path / "run") == []


def test_a_huge_learning_rate_that_stays_finite_completes_and_saves_finite_numbers(tmp_path, capsys):
    """With sigmoid units, one update with η = 1e200 moves the weights to about ±1e198, still
    finite; the sigmoids saturate and the MSE is finite. By the numeric policy (stop on NaN
    or infinity, as the Trainer does) that is a finished run, and what it saves is finite."""
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "--lr", "1e200", "--epochs", "1", "--out", str(out)]) == 0
    model = nn.MLP.load(out / "model.json")  # load refuses non-finite numbers
    assert all(math.isfinite(p.data) and abs(p.data) > 1e150 for p in model.parameters() if p.data != 0.0)
    json.loads((out / "history.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} in history"))


def test_a_non_finite_evaluation_after_training_is_a_one_line_exit_1(tmp_path, capsys, monkeypatch):
    """The Trainer's evaluate raises NonFiniteError on a non-finite loss: the CLI reports it."""

    def diverged(self, X, y):
        raise NonFiniteError("training diverged at epoch 1: the loss is inf; use a smaller learning rate")

    monkeypatch.setattr(nn.Trainer, "evaluate", diverged)
    assert cli.main(["train", "--no-progress", "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err == (
        "python -m nn: error: training diverged at epoch 1: the loss is inf; use a smaller learning rate\n"
    )
    assert os.listdir(tmp_path / "run") == []


def test_a_history_holding_infinity_is_a_divergence_even_with_finite_weights():
    model = nn.MLP(2, [1], seed=0)
    history = nn.trainer.History(loss=[0.5, math.inf, 0.25])
    summary = {"loss": 0.25, "test_loss": 0.25}
    assert cli.first_non_finite(model, history, summary) == "loss inf at epoch 2"
    assert cli.first_non_finite(model, nn.trainer.History(loss=[0.5]), summary) is None
    model.layers[0].neurons[0].b.data = math.nan
    assert cli.first_non_finite(model, history, summary) == "parameter L1.N0.b is nan"


# -- issue 13: AdamW, weight decay, schedules, clipping, multi-class; issue 14 item 6: --engine --------
def resolved(*options):
    parser, train = cli.build_parser()
    return cli.resolve(parser.parse_args(["train", *options]), train)


def test_schedule_defaults_span_the_run():
    """linear: η₀ → 0 over the epochs (LinearLR 1 → 0, total_iters = epochs); cosine: T_max = epochs;
    step: ×0.1 every epochs/3 epochs; exponential: γ = 0.01^(1/epochs), so η ends at η₀/100."""
    args = resolved("--schedule", "linear", "--epochs", "40")
    optimizer = nn.optim.SGD(nn.MLP(2, [1]).parameters(), lr=0.1)
    linear = cli.make_scheduler(args, optimizer)
    assert isinstance(linear, nn.lr_scheduler.LinearLR)
    assert (linear.start_factor, linear.end_factor, linear.total_iters) == (1.0, 0.0, 40)
    args = resolved("--schedule", "cosine", "--epochs", "40")
    assert cli.make_scheduler(args, nn.optim.SGD(nn.MLP(2, [1]).parameters(), lr=0.1)).T_max == 40
    args = resolved("--schedule", "step", "--epochs", "40")
    assert (args.step_size, args.gamma) == (13, 0.1)
    args = resolved("--schedule", "exponential", "--epochs", "40")
    assert args.gamma**40 == pytest.approx(0.01, rel=1e-12)
    assert cli.make_scheduler(resolved(), optimizer) is None


def test_weight_decay_defaults_follow_pytorch():
    assert resolved("--optimizer", "adamw").weight_decay == 0.01
    assert resolved("--optimizer", "adam").weight_decay == 0.0
    assert resolved().weight_decay == 0.0
    args = resolved("--optimizer", "adamw", "--weight-decay", "0.2", "--lr", "0.03")
    optimizer = cli.make_optimizer(args, nn.MLP(2, [1]))
    assert isinstance(optimizer, nn.optim.AdamW) and (optimizer.lr, optimizer.weight_decay) == (0.03, 0.2)
    optimizer = cli.make_optimizer(resolved("--optimizer", "adam", "--weight-decay", "0.1"), nn.MLP(2, [1]))
    assert type(optimizer) is nn.optim.Adam and optimizer.weight_decay == 0.1


def test_a_linear_schedule_and_clipping_are_recorded_in_history_json(tmp_path, capsys):
    """η₀ = 0.1 over 4 epochs: η = 0.1·(1 − t/4) for t = 0..3 steps taken, i.e. 0.1, 0.075, 0.05, 0.025."""
    out = tmp_path / "run"
    argv = [*SMALL_MOONS[:-3], "--epochs", "4", "--no-progress", "--schedule", "linear", "--clip", "0.01",
            "--out", str(out)]  # fmt: skip
    assert cli.main(["train", *argv]) == 0
    assert "schedule linear; gradient norm clipped at 0.01" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())["history"]
    assert history["lr"] == pytest.approx([0.1, 0.075, 0.05, 0.025], rel=1e-15)
    assert len(history["grad_norm"]) == 4 and sum(history["clipped"]) >= 1


def test_multiclass_datasets_train_k_linear_outputs_with_cross_entropy(tmp_path, capsys):
    out = tmp_path / "run"
    options = ["--dataset", "spiral", "--classes", "4", "--samples", "40", "--epochs", "2", "--no-progress"]
    assert cli.main(["train", *options, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MLP 2-16-16-4 (tanh, output linear)" in printed and "4 classes, cross_entropy" in printed
    model = nn.MLP.load(out / "model.json")
    assert model.nouts == [16, 16, 4] and model.output_activation == "linear"
    saved = json.loads((out / "history.json").read_text())
    assert saved["config"]["loss"] == "cross_entropy" and 0.0 <= saved["summary"]["test_accuracy"] <= 1.0
    args = resolved("--dataset", "yinyang")
    assert (args.classes, args.loss, args.output_activation, args.samples) == (3, "cross_entropy", "linear", 300)


def test_a_multiclass_run_draws_its_sample_graph_and_backward_pass(tmp_path, capsys, dot_program):
    """With cross_entropy the sample's target is its class: graph.svg and backward.html show E of it."""
    out = tmp_path / "run"
    options = ["--dataset", "yinyang", "--samples", "30", "--hidden", "3", "--epochs", "2", "--no-progress"]
    assert cli.main(["train", *options, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped" not in printed
    svg = (out / "graph.svg").read_text()
    assert "cross_entropy" in svg and "select" in svg  # E = cross_entropy(ŷ, t), the logit of class t picked
    assert "select" in (out / "backward.html").read_text()
    args = resolved("--dataset", "spiral")
    assert (args.classes, args.loss, args.output_activation) == (2, "mse", "sigmoid")  # the binary spiral, as before


@pytest.mark.parametrize(
    "options",
    [
        SMALL_MOONS[:-3] + ["--epochs", "3", "--optimizer", "adamw", "--schedule", "cosine", "--clip", "0.5"],
        ["--dataset", "yinyang", "--samples", "40", "--hidden", "5", "--epochs", "3"],
    ],
    ids=["moons-adamw-cosine-clip", "yinyang"],
)
def test_eager_and_traced_engines_give_the_same_run(options, tmp_path, capsys):
    lines = {}
    for engine in ("eager", "traced"):
        assert cli.main(["train", *options, "--engine", engine, "--no-progress", "--out", str(tmp_path / engine)]) == 0
        lines[engine] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("engine:")]
    assert lines["eager"] == ["engine: eager (a graph of Values for every sample)"]
    assert lines["traced"] == ["engine: traced (one sample's graph recorded once, replayed over each batch with numpy)"]
    eager, traced = (nn.MLP.load(tmp_path / engine / "model.json") for engine in ("eager", "traced"))
    assert [p.data for p in traced.parameters()] == pytest.approx([p.data for p in eager.parameters()], abs=1e-10)
    h_eager, h_traced = (json.loads((tmp_path / e / "history.json").read_text())["history"] for e in lines)
    assert h_traced["loss"] == pytest.approx(h_eager["loss"], abs=1e-10)


def test_the_default_engine_is_traced_with_numpy_and_eager_without(monkeypatch, capsys):
    import importlib.util

    assert cli.main(["train", "--no-progress", "--epochs", "2"]) == 0
    assert "engine: traced (" in capsys.readouterr().out
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpy" else find_spec(name, *a))
    assert cli.main(["train", "--no-progress", "--epochs", "2"]) == 0
    assert "engine: eager (a graph of Values for every sample; numpy is not installed)\n" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["train", "--engine", "traced"])
    assert "--engine traced needs numpy" in capsys.readouterr().err


def test_gpt_command_calls_nn_gpt_run_with_its_options(monkeypatch):
    import nn.gpt

    calls = []
    monkeypatch.setattr(nn.gpt, "run", lambda **kwargs: calls.append(kwargs) or 0)
    assert cli.main(["gpt", "--steps", "3", "--lr", "0.02", "--samples", "4", "--seed", "5", "--engine", "eager"]) == 0
    assert cli.main(["gpt"]) == 0
    assert calls == [
        {"steps": 3, "lr": 0.02, "samples": 4, "seed": 5, "engine": "eager"},
        {"steps": 500, "lr": 0.01, "samples": 20, "seed": 1, "engine": None},
    ]


@pytest.mark.parametrize("engine", ["eager", "traced"])
def test_gpt_command_trains_and_samples(engine, capsys):
    assert cli.main(["gpt", "--steps", "1", "--samples", "2", "--seed", "0", "--engine", engine]) == 0
    out = capsys.readouterr().out
    assert "tiny GPT:" in out and "step     1 / 1: loss" in out and out.count("samples:") == 1
    assert out.count("engine: ") == 1 and f"engine: {engine}" in out


def test_gpt_training_traced_gives_the_losses_of_eager_training():
    """Three Adam steps on names of two lengths: the same losses (the weights move alike)."""
    from nn.gpt import GPT, Tokenizer, train

    words = ["emma", "al", "anna"]
    tokenizer = Tokenizer(words)
    losses = {
        engine: train(GPT(tokenizer.vocab_size, n_embd=8, n_head=2, block_size=8, seed=0), words, tokenizer,
                      steps=3, report_every=0, engine=engine)
        for engine in ("eager", "traced")
    }  # fmt: skip
    assert losses["traced"] == pytest.approx(losses["eager"], rel=1e-12)


GPT_NUMERIC_OPTIONS = {"--steps": [], "--lr": ["1e308"], "--samples": ["0"], "--seed": ["0"]}


def test_the_gpt_table_names_every_numeric_option_of_its_parser():
    parser, _ = cli.build_parser()
    gpt = cli.command_parser(parser, "gpt")
    assert {a.option_strings[0] for a in gpt._actions if a.type is not None} == set(GPT_NUMERIC_OPTIONS)


@pytest.mark.parametrize(
    "option, text",
    [(o, t) for o, valid in GPT_NUMERIC_OPTIONS.items() for t in HOSTILE_NUMBERS
     if t not in valid and not (t == "1" + "0" * 308 and "1e308" in valid)],
)  # fmt: skip
def test_every_gpt_numeric_option_refuses_nan_inf_huge_negative_and_zero_where_invalid(option, text, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["gpt", f"{option}={text}"])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"python -m nn gpt: error: argument {option}: ") and text in last
