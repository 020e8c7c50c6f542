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
