"""`python -m nn train`: the main job, through `nn.cli.main(argv)` and one real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nn
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
        (["--momentum", "1.0"], "--momentum: must be in \\[0, 1\\)"),
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
