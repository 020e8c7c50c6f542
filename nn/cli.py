"""The command line: ``python -m nn train`` trains a network on a toy dataset.

It builds the data, the model, the optimizer and the trainer from the options,
prints a summary, and writes ``model.json`` and ``history.json`` under ``--out``,
with the plots ``loss.png``, ``boundary.png`` and ``graph.svg`` (see `nn.plot.save_training_plots`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autograd.errors import NonFiniteError, NumericOverflowError

from . import data, losses
from .init import INITIALIZERS
from .module import ACTIVATIONS, MLP, write_json_atomically
from .optim import SGD, Adam, Optimizer, Rprop
from .plot import save_training_plots
from .trainer import MODES, History, Trainer

#: Defaults chosen per dataset for the options left out; XOR is the classic 2-2-1 sigmoid net.
PRESETS: dict[str, dict[str, Any]] = {
    "xor": {"hidden": [2], "activation": "sigmoid", "mode": "batch", "epochs": 1000, "lr": 0.5},
    "moons": {"hidden": [16, 16], "activation": "tanh", "mode": "minibatch", "epochs": 50, "lr": 0.1,
              "samples": 200, "noise": 0.1},
    "circles": {"hidden": [16, 16], "activation": "tanh", "mode": "minibatch", "epochs": 50, "lr": 0.1,
                "samples": 200, "noise": 0.05},
    "spiral": {"hidden": [16, 16], "activation": "tanh", "mode": "minibatch", "epochs": 150, "lr": 0.1,
               "samples": 200, "noise": 0.0},
}  # fmt: skip
#: Learning rate (for Rprop: the initial step size Δ0) when --lr is left out, by optimizer.
DEFAULT_LR = {"rprop": 0.1, "adam": 0.01}
DEFAULT_MOMENTUM = 0.9
TEST_FRACTION = 0.25
LOSS_CHOICES = ("mse", "sse_half", "binary_cross_entropy")


#: Upper bounds of the integer options and of --noise: far beyond any useful run of a
#: scalar engine, low enough that a typo (or 1e308) is refused before anything is built.
MAX_SAMPLES = 100_000
MAX_NOISE = 10  # ten times the size of the datasets: the labels would mean nothing
MAX_WIDTH = 1_000
MAX_BATCH_SIZE = 100_000
MAX_EPOCHS = 1_000_000
MAX_SEED = 2**32 - 1  # the seeds numpy accepts


def _number_type(
    convert: Callable[[str], Any],
    kind: str,
    low: int | None = None,
    high: int | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text to ``kind`` ("a number", "an integer") and
    refuse values outside [low, high] (open ends with ``low_open``/``high_open``), NaN
    and infinity. argparse prefixes the message with the option's name and exits with 2."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        # Each test is written so that NaN fails it (every comparison with NaN is false).
        if low is not None and not (value > low if low_open else value >= low):
            raise argparse.ArgumentTypeError(f"must be {kind} {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and not (value < high if high_open else value <= high):
            raise argparse.ArgumentTypeError(f"must be {kind} {'<' if high_open else '<='} {high}, got {text}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        return value

    parse.__name__ = kind
    return parse


# A huge --lr or --weight-decay is accepted: it makes training diverge, which ends in a
# one-line message and exit code 1 (a lesson the command line can teach).
positive_float = _number_type(float, "a number", low=0, low_open=True)
non_negative_float = _number_type(float, "a number", low=0)
noise_level = _number_type(float, "a number", low=0, high=MAX_NOISE)
momentum_value = _number_type(float, "a number", low=0, high=1, high_open=True)
layer_width = _number_type(int, "an integer", low=1, high=MAX_WIDTH)
batch_size = _number_type(int, "an integer", low=1, high=MAX_BATCH_SIZE)
epoch_count = _number_type(int, "an integer", low=1, high=MAX_EPOCHS)
sample_count = _number_type(int, "an integer", low=4, high=MAX_SAMPLES)
seed_value = _number_type(int, "an integer", low=0, high=MAX_SEED)


def output_folder(text: str) -> Path:
    """The --out folder; an empty name is refused (Path("") would be the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    return Path(text)


def _describe_preset(name: str, preset: dict[str, Any]) -> str:
    hidden = " ".join(str(n) for n in preset["hidden"])
    activation, mode, epochs = preset["activation"], preset["mode"], preset["epochs"]
    return f"{name}: --hidden {hidden} --activation {activation} --mode {mode} --epochs {epochs}"


def build_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The ``python -m nn`` parser and its ``train`` sub-parser."""
    parser = argparse.ArgumentParser(prog="python -m nn", description="Train small neural networks by backpropagation.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser(
        "train",
        help="train an MLP on a toy dataset",
        description="Train an MLP on a toy dataset. Options left out take the dataset's preset ("
        + "; ".join(_describe_preset(name, preset) for name, preset in PRESETS.items())
        + f"). Except for xor, {TEST_FRACTION:.0%} of the samples are held out as a test set.",
    )
    train.add_argument("--dataset", choices=list(PRESETS), default="xor", help="default: xor")
    train.add_argument("--samples", type=sample_count, help="number of points (moons, circles, spiral)")
    train.add_argument("--noise", type=noise_level, help="standard deviation of the Gaussian noise")
    train.add_argument("--hidden", type=layer_width, nargs="*", help="sizes of the hidden layers, e.g. --hidden 16 16")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), help="activation of the hidden layers")
    train.add_argument("--output-activation", choices=sorted(ACTIVATIONS), default="sigmoid", help="default: sigmoid")
    train.add_argument("--loss", choices=LOSS_CHOICES, default="mse", help="default: mse")
    train.add_argument("--init", choices=sorted(INITIALIZERS), default="xavier_uniform", help="default: xavier_uniform")
    train.add_argument("--optimizer", choices=["sgd", "rprop", "adam"], default="sgd", help="default: sgd")
    train.add_argument("--lr", type=positive_float, help="learning rate η (rprop: initial step size)")
    train.add_argument("--momentum", type=momentum_value, help=f"momentum α for sgd (default {DEFAULT_MOMENTUM})")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    train.add_argument("--weight-decay", type=non_negative_float, help="L2 weight decay λ (sgd)")
    train.add_argument("--mode", choices=list(MODES), help="online, batch or minibatch updates")
    train.add_argument("--batch-size", type=batch_size, help="samples per mini-batch (default 16)")
    train.add_argument("--epochs", type=epoch_count)
    train.add_argument("--seed", type=seed_value, default=0, help="seed of data, weights and shuffling (default 0)")
    train.add_argument(
        "--out", type=output_folder, help="directory for model.json, history.json and the plots (created if needed)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser, train


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill the options left out from the dataset's preset; refuse options that do not apply."""
    preset = PRESETS[args.dataset]
    if args.dataset == "xor" and (args.samples is not None or args.noise is not None):
        parser.error("--samples and --noise do not apply to --dataset xor (its 4 points are fixed)")
    for option in ("samples", "noise", "hidden", "activation", "mode", "epochs"):
        if getattr(args, option) is None:
            setattr(args, option, preset.get(option))
    if args.optimizer != "sgd":
        given = [option for option, value in (("--momentum", args.momentum), ("--weight-decay", args.weight_decay),
                                               ("--nesterov", args.nesterov or None)) if value is not None]
        if given:
            parser.error(f"{', '.join(given)}: only for --optimizer sgd")
    if args.lr is None:
        args.lr = preset["lr"] if args.optimizer == "sgd" else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        args.momentum = DEFAULT_MOMENTUM if args.momentum is None else args.momentum
        args.weight_decay = 0.0 if args.weight_decay is None else args.weight_decay
        if args.nesterov and args.momentum == 0:
            parser.error("--nesterov needs --momentum > 0")
    if args.batch_size is not None and args.mode != "minibatch":
        parser.error(f"--batch-size applies to --mode minibatch, not {args.mode}")
    args.batch_size = 16 if args.batch_size is None else args.batch_size
    if args.loss == "binary_cross_entropy" and args.output_activation != "sigmoid":
        parser.error("--loss binary_cross_entropy needs probabilities: --output-activation sigmoid")
    return args


def make_optimizer(args: argparse.Namespace, model: MLP) -> Optimizer:
    if args.optimizer == "sgd":
        return SGD(model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                   weight_decay=args.weight_decay)  # fmt: skip
    if args.optimizer == "rprop":
        return Rprop(model.parameters(), step_init=args.lr)
    return Adam(model.parameters(), lr=args.lr)


def load_dataset(args: argparse.Namespace) -> tuple[list[list[float]], list[float], list[list[float]], list[float]]:
    """Training and test sets (XOR trains and is tested on its four points)."""
    if args.dataset == "xor":
        X, y = data.xor()
        return X, y, X, y
    make = {"moons": data.moons, "circles": data.circles, "spiral": data.spiral}[args.dataset]
    X, y = make(args.samples, args.noise, args.seed)
    X_train, X_test, y_train, y_test = data.train_test_split(X, y, TEST_FRACTION, seed=args.seed)
    return X_train, y_train, X_test, y_test


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options, as plain data (saved in history.json)."""
    return {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}


def write_outputs(
    out: Path, model: MLP, history: History, summary: dict[str, Any], config: dict[str, Any]
) -> list[Path]:
    """Write the run's files into ``out`` (which exists) and return their paths."""
    model_path, history_path = out / "model.json", out / "history.json"
    model.save(model_path)
    write_json_atomically(history_path, {"config": config, "summary": summary, "history": history.to_dict()})
    return [model_path, history_path]


def first_non_finite(model: MLP, history: History, summary: dict[str, Any]) -> str | None:
    """What is NaN or infinite at the end of a run (a parameter, a final score, an epoch's
    loss), or None when everything is finite and may be printed and saved."""
    for p in model.parameters():
        if not math.isfinite(p.data):
            return f"parameter {p.label} is {p.data}"
    for name in ("loss", "test_loss"):
        if not math.isfinite(summary[name]):
            return f"final {name.replace('_', ' ')} {summary[name]}"
    for name, values in history.to_dict().items():
        if isinstance(values, list):
            for epoch, value in enumerate(values, start=1):
                if isinstance(value, float) and not math.isfinite(value):
                    return f"{name} {value} at epoch {epoch}"
    return None


def train(args: argparse.Namespace) -> int:
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _fail(f"cannot create --out directory {args.out}: {exc.strerror or exc}")
    X_train, y_train, X_test, y_test = load_dataset(args)
    model = MLP(2, [*args.hidden, 1], args.activation, args.output_activation, args.init, seed=args.seed)
    optimizer = make_optimizer(args, model)
    trainer = Trainer(model, optimizer, losses.LOSSES[args.loss], args.mode, args.batch_size, seed=args.seed)
    layers = "-".join(str(n) for n in [model.nin, *model.nouts])
    print(
        f"{args.dataset}: {len(X_train)} training / {len(X_test)} test samples; MLP {layers} "
        f"({args.activation}, output {args.output_activation}), {model.nparameters} parameters; "
        f"{optimizer!r}, {args.mode} mode, {args.epochs} epochs"
    )
    validation = None if args.dataset == "xor" else (X_test, y_test)
    started = time.perf_counter()
    try:
        history = trainer.fit(X_train, y_train, args.epochs, validation=validation, progress=not args.no_progress)
        seconds = time.perf_counter() - started
        train_scores, test_scores = trainer.evaluate(X_train, y_train), trainer.evaluate(X_test, y_test)
    except (NonFiniteError, NumericOverflowError) as exc:
        return _fail(str(exc) if isinstance(exc, NonFiniteError) else f"training diverged: {exc}", code=1)
    summary = {
        "loss": train_scores["loss"], "accuracy": train_scores["accuracy"],
        "test_loss": test_scores["loss"], "test_accuracy": test_scores["accuracy"],
        "seconds": seconds, "epochs": history.epochs, "updates": sum(history.updates),
    }  # fmt: skip
    problem = first_non_finite(model, history, summary)
    if problem is not None:  # nothing is printed as "completed", nothing is written
        return _fail(f"training diverged: {problem}; nothing was saved (try a smaller learning rate)", code=1)
    line = f"final: loss {summary['loss']:.4g}, accuracy {summary['accuracy']:.1%}"
    if validation is not None:
        line += f", test loss {summary['test_loss']:.4g}, test accuracy {summary['test_accuracy']:.1%}"
    print(f"{line}, {seconds:.1f} s, {summary['updates']} updates ({history.stopped_reason})")
    if args.out is not None:
        try:
            paths = write_outputs(args.out, model, history, summary, run_config(args))
            plots, skipped = save_training_plots(args.out, model, history, X_train, y_train, trainer.loss)
        except OSError as exc:
            return _fail(f"cannot write to --out {args.out}: {exc.strerror or exc}")
        walked, notes = save_walkthrough(args.out, model, X_train[0], y_train[0], trainer.loss)
        plots, skipped = plots + walked, skipped + notes
        print("wrote " + ", ".join(str(p) for p in paths + plots))
        for note in skipped:
            print(f"note: {note}")
    return 0


def save_walkthrough(out: Path, model: MLP, x: Any, t: Any, loss: Callable[..., Any]) -> tuple[list[Path], list[str]]:
    """``out/backward.html``: the backward pass of the sample graph.svg shows, step by step (`autograd.walkthrough`).

    Returns the path written, or a note saying why it was skipped (no Graphviz; over 200 Values to draw).
    """
    from autograd import walkthrough
    from autograd.draw import GraphvizNotFoundError
    from autograd.errors import InvalidArgumentError

    try:
        return [walkthrough(loss(model(x), t)).save_html(out / "backward.html")], []
    except GraphvizNotFoundError:
        return [], ["backward.html skipped: Graphviz's `dot` program is not installed (e.g. apt-get install graphviz)"]
    except (ImportError, InvalidArgumentError) as exc:  # the graphviz package; a graph too large to draw
        return [], [f"backward.html skipped: {exc}"]
    except OSError as exc:
        return [], [f"backward.html skipped: cannot write it: {exc.strerror or exc}"]


def _fail(message: str, code: int = 2) -> int:
    print(f"python -m nn: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit code."""
    parser, train_parser = build_parser()
    args = parser.parse_args(argv)
    del args.command  # "train", the only command
    return train(resolve(args, train_parser))
