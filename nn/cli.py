"""The command line: ``python -m nn train`` trains a network on a toy dataset;
``python -m nn gpt`` trains the tiny character-level GPT (`nn.gpt.run`).

``train`` builds the data, the model, the optimizer and the trainer from the options,
prints a summary, and writes ``model.json`` and ``history.json`` under ``--out``,
with the plots ``loss.png``, ``boundary.png`` and ``graph.svg`` (see `nn.plot.save_training_plots`).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autograd.errors import NonFiniteError, NumericOverflowError

from . import data, losses
from .init import INITIALIZERS
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, StepLR
from .module import ACTIVATIONS, MLP, write_json_atomically
from .optim import SGD, Adam, AdamW, Optimizer, Rprop
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
    "yinyang": {"hidden": [16, 16], "activation": "tanh", "mode": "minibatch", "epochs": 300, "lr": 0.1,
                "samples": 300, "noise": 0.0},
}  # fmt: skip
#: Datasets with more than two classes: they train with cross_entropy on one linear output per class.
MULTICLASS = {"yinyang": 3}
#: Learning rate (for Rprop: the initial step size Δ0) when --lr is left out, by optimizer.
DEFAULT_LR = {"rprop": 0.1, "adam": 0.01, "adamw": 0.01}
DEFAULT_MOMENTUM = 0.9
DEFAULT_WEIGHT_DECAY = {"sgd": 0.0, "adam": 0.0, "adamw": 1e-2}  # PyTorch's defaults
TEST_FRACTION = 0.25
LOSS_CHOICES = ("mse", "sse_half", "binary_cross_entropy", "cross_entropy")
#: Learning-rate schedules (`nn.lr_scheduler`), stepped once per epoch.
SCHEDULES = ("none", "step", "exponential", "linear", "cosine")
#: --gamma when left out: step divides η by 10 (every --step-size epochs); exponential ends at η/100.
DEFAULT_STEP_GAMMA = 0.1
EXPONENTIAL_END = 0.01


#: Upper bounds of the integer options and of --noise: far beyond any useful run of a
#: scalar engine, low enough that a typo (or 1e308) is refused before anything is built.
MAX_SAMPLES = 100_000
MAX_NOISE = 10  # ten times the size of the datasets: the labels would mean nothing
MAX_WIDTH = 1_000
MAX_BATCH_SIZE = 100_000
MAX_EPOCHS = 1_000_000
MAX_SEED = 2**32 - 1  # the seeds numpy accepts
MAX_CLASSES = 20  # arms of the spiral: beyond this, a few samples per arm
MAX_GPT_STEPS = 1_000_000
MAX_GPT_SAMPLES = 10_000


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
class_count = _number_type(int, "an integer", low=2, high=MAX_CLASSES)
decay_factor = _number_type(float, "a number", low=0, high=1, low_open=True)
step_size = _number_type(int, "an integer", low=1, high=MAX_EPOCHS)
gpt_steps = _number_type(int, "an integer", low=1, high=MAX_GPT_STEPS)
gpt_samples = _number_type(int, "an integer", low=0, high=MAX_GPT_SAMPLES)


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
    """The ``python -m nn`` parser and its ``train`` sub-parser (``gpt`` is found by `command_parser`)."""
    parser = argparse.ArgumentParser(prog="python -m nn", description="Train small neural networks by backpropagation.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    train = commands.add_parser(
        "train",
        help="train an MLP on a toy dataset",
        description="Train an MLP on a toy dataset. Options left out take the dataset's preset ("
        + "; ".join(_describe_preset(name, preset) for name, preset in PRESETS.items())
        + f"). Except for xor, {TEST_FRACTION:.0%} of the samples are held out as a test set. "
        "Multi-class datasets (yinyang: 3 classes; spiral with --classes K >= 3) train with --loss "
        "cross_entropy on one linear output (logit) per class, chosen automatically; accuracy is then "
        "the fraction whose largest output is their class.",
    )
    train.add_argument("--dataset", choices=list(PRESETS), default="xor", help="default: xor")
    train.add_argument("--samples", type=sample_count, help="number of points (moons, circles, spiral, yinyang)")
    train.add_argument("--noise", type=noise_level, help="standard deviation of the Gaussian noise")
    train.add_argument(
        "--classes", type=class_count,
        help="number of spiral arms, one class each (spiral only; default 2; K >= 3 trains with cross_entropy)",
    )  # fmt: skip
    train.add_argument("--hidden", type=layer_width, nargs="*", help="sizes of the hidden layers, e.g. --hidden 16 16")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), help="activation of the hidden layers")
    train.add_argument(
        "--output-activation", choices=sorted(ACTIVATIONS),
        help="default: sigmoid; linear (logits) with cross_entropy",
    )  # fmt: skip
    train.add_argument(
        "--loss", choices=LOSS_CHOICES,
        help="default: mse; cross_entropy for multi-class datasets (K linear outputs, class-index targets)",
    )  # fmt: skip
    train.add_argument("--init", choices=sorted(INITIALIZERS), default="xavier_uniform", help="default: xavier_uniform")
    train.add_argument("--optimizer", choices=["sgd", "rprop", "adam", "adamw"], default="sgd", help="default: sgd")
    train.add_argument("--lr", type=positive_float, help="learning rate η (rprop: initial step size)")
    train.add_argument("--momentum", type=momentum_value, help=f"momentum α for sgd (default {DEFAULT_MOMENTUM})")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    train.add_argument(
        "--weight-decay", type=non_negative_float,
        help="weight decay λ: L2 for sgd and adam (default 0), decoupled for adamw (default 0.01)",
    )  # fmt: skip
    train.add_argument(
        "--schedule", choices=SCHEDULES, default="none",
        help="learning-rate schedule, stepped once per epoch: step (η×gamma every --step-size epochs), "
        "exponential (η×gamma every epoch), linear (decay to 0 over the epochs), cosine (half a cosine "
        "to 0 over the epochs); default: none",
    )  # fmt: skip
    train.add_argument(
        "--gamma", type=decay_factor,
        help=f"decay factor in (0, 1] of --schedule step (default {DEFAULT_STEP_GAMMA}) and exponential "
        f"(default: {EXPONENTIAL_END:g}^(1/epochs), η/{1 / EXPONENTIAL_END:g} at the end)",
    )  # fmt: skip
    train.add_argument("--step-size", type=step_size,
                       help="epochs between decays of --schedule step (default epochs/3)")  # fmt: skip
    train.add_argument("--clip", type=positive_float, metavar="MAX_NORM",
                       help="clip the gradient's norm to MAX_NORM before each update")  # fmt: skip
    train.add_argument("--mode", choices=list(MODES), help="online, batch or minibatch updates")
    train.add_argument("--batch-size", type=batch_size, help="samples per mini-batch (default 16)")
    train.add_argument("--epochs", type=epoch_count)
    train.add_argument(
        "--engine", choices=["eager", "traced"],
        help="how gradients are computed: eager (a graph of Values per sample) or traced (one graph "
        "recorded, replayed with numpy); default: traced when numpy is installed and the model and loss "
        "can be traced, else eager",
    )  # fmt: skip
    train.add_argument("--seed", type=seed_value, default=0, help="seed of data, weights and shuffling (default 0)")
    train.add_argument(
        "--out", type=output_folder, help="directory for model.json, history.json and the plots (created if needed)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    gpt = commands.add_parser(
        "gpt",
        help="train the tiny character-level GPT on names",
        description="Train a one-layer character-level GPT written with scalar Values (nn.gpt) on the names "
        "shipped with the package, printing the loss as it trains, then print sampled names.",
    )
    gpt.add_argument("--steps", type=gpt_steps, default=500, help="training steps, one name each (default 500)")
    gpt.add_argument("--lr", type=positive_float, default=0.01, help="Adam's learning rate, decayed linearly to 0 "
                     "(default 0.01)")  # fmt: skip
    gpt.add_argument("--samples", type=gpt_samples, default=20, help="names to sample after training (default 20)")
    gpt.add_argument("--seed", type=seed_value, default=1, help="seed of weights, order and sampling (default 1)")
    gpt.add_argument(
        "--engine", choices=["eager", "traced"],
        help="eager (a graph of Values per name) or traced (the loss traced once per name length, "
        "replayed with numpy, the weights and Adam's moments in arrays); default: traced when numpy is "
        "installed, else eager",
    )  # fmt: skip
    return parser, train


def command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The sub-parser of command ``name`` ("train", "gpt") of the `build_parser` parser."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]  # type: ignore[no-any-return]


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill the options left out from the dataset's preset; refuse options that do not apply."""
    preset = PRESETS[args.dataset]
    if args.dataset == "xor" and (args.samples is not None or args.noise is not None):
        parser.error("--samples and --noise do not apply to --dataset xor (its 4 points are fixed)")
    if args.classes is not None and args.dataset != "spiral":
        parser.error(f"--classes applies to --dataset spiral, not {args.dataset}")
    for option in ("samples", "noise", "hidden", "activation", "mode", "epochs"):
        if getattr(args, option) is None:
            setattr(args, option, preset.get(option))
    _resolve_classes(args, parser)
    if args.optimizer != "sgd":
        given = [option for option, value in (("--momentum", args.momentum), ("--nesterov", args.nesterov or None))
                 if value is not None]  # fmt: skip
        if given:
            parser.error(f"{', '.join(given)}: only for --optimizer sgd")
    if args.optimizer == "rprop" and args.weight_decay is not None:
        parser.error("--weight-decay: only for --optimizer sgd, adam or adamw")
    if args.lr is None:
        args.lr = preset["lr"] if args.optimizer == "sgd" else DEFAULT_LR[args.optimizer]
    if args.optimizer in DEFAULT_WEIGHT_DECAY and args.weight_decay is None:
        args.weight_decay = DEFAULT_WEIGHT_DECAY[args.optimizer]
    if args.optimizer == "sgd":
        args.momentum = DEFAULT_MOMENTUM if args.momentum is None else args.momentum
        if args.nesterov and args.momentum == 0:
            parser.error("--nesterov needs --momentum > 0")
    _resolve_schedule(args, parser)
    if args.engine == "traced" and importlib.util.find_spec("numpy") is None:
        parser.error("--engine traced needs numpy (pip install numpy, or the extra `fast`)")
    if args.batch_size is not None and args.mode != "minibatch":
        parser.error(f"--batch-size applies to --mode minibatch, not {args.mode}")
    args.batch_size = 16 if args.batch_size is None else args.batch_size
    if args.loss == "binary_cross_entropy" and args.output_activation != "sigmoid":
        parser.error("--loss binary_cross_entropy needs probabilities: --output-activation sigmoid")
    return args


def _resolve_classes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Set ``args.classes`` (K), the loss and the output activation.

    More than two classes (yinyang; spiral with --classes K >= 3) or --loss cross_entropy:
    K linear outputs (logits) and cross_entropy with class-index targets. Else one output,
    sigmoid and mse unless given.
    """
    classes = MULTICLASS.get(args.dataset, args.classes or 2)
    if classes > 2 and args.loss not in (None, "cross_entropy"):
        parser.error(f"--dataset {args.dataset} has {classes} classes: it trains with --loss cross_entropy, "
                     f"not {args.loss}")  # fmt: skip
    args.classes = classes
    if classes > 2 or args.loss == "cross_entropy":
        args.loss = "cross_entropy"
        if args.output_activation not in (None, "linear"):
            parser.error(
                "--loss cross_entropy takes logits (it applies the softmax itself): --output-activation linear"
            )
        args.output_activation = "linear"
    else:
        args.loss = args.loss or "mse"
        args.output_activation = args.output_activation or "sigmoid"


def _resolve_schedule(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Check --schedule against its options and fill their defaults (see the --help of each)."""
    if args.schedule != "none" and args.optimizer == "rprop":
        parser.error("--schedule: Rprop adapts its own step sizes; a schedule needs --optimizer sgd, adam or adamw")
    if args.gamma is not None and args.schedule not in ("step", "exponential"):
        parser.error(f"--gamma applies to --schedule step or exponential, not {args.schedule}")
    if args.step_size is not None and args.schedule != "step":
        parser.error(f"--step-size applies to --schedule step, not {args.schedule}")
    if args.schedule == "step":
        args.gamma = DEFAULT_STEP_GAMMA if args.gamma is None else args.gamma
        args.step_size = max(1, args.epochs // 3) if args.step_size is None else args.step_size
    elif args.schedule == "exponential" and args.gamma is None:
        args.gamma = EXPONENTIAL_END ** (1.0 / args.epochs)


def make_scheduler(args: argparse.Namespace, optimizer: Optimizer) -> LRScheduler | None:
    """The --schedule, made on ``optimizer`` (None for "none")."""
    if args.schedule == "step":
        return StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)
    if args.schedule == "exponential":
        return ExponentialLR(optimizer, gamma=args.gamma)
    if args.schedule == "linear":  # from η to 0 over the run: the last epoch trains with η/epochs
        return LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=args.epochs)
    if args.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=args.epochs)
    return None


def make_optimizer(args: argparse.Namespace, model: MLP) -> Optimizer:
    if args.optimizer == "sgd":
        return SGD(model.parameters(), lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                   weight_decay=args.weight_decay)  # fmt: skip
    if args.optimizer == "rprop":
        return Rprop(model.parameters(), step_init=args.lr)
    if args.optimizer == "adamw":
        return AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    return Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def loss_function(name: str) -> Callable[..., Any]:
    """The loss named by --loss (cross_entropy takes class indices, the others target values)."""
    return losses.cross_entropy if name == "cross_entropy" else losses.LOSSES[name]


def load_dataset(args: argparse.Namespace) -> tuple[list[list[float]], list[Any], list[list[float]], list[Any]]:
    """Training and test sets (XOR trains and is tested on its four points).

    Labels are 0.0/1.0 for two classes, class indices 0..K-1 (ints) for K >= 3.
    """
    y: list[Any]
    if args.dataset == "xor":
        X, y = data.xor()
        return X, y, X, y
    if args.dataset == "spiral":
        X, y = data.spiral(args.samples, args.noise, args.seed, classes=args.classes)
    elif args.dataset == "yinyang":
        X, y = data.yin_yang(args.samples, args.noise, args.seed)
    else:
        X, y = {"moons": data.moons, "circles": data.circles}[args.dataset](args.samples, args.noise, args.seed)
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
    outputs = args.classes if args.loss == "cross_entropy" else 1  # one logit per class
    model = MLP(2, [*args.hidden, outputs], args.activation, args.output_activation, args.init, seed=args.seed)
    optimizer = make_optimizer(args, model)
    trainer = Trainer(
        model, optimizer, loss_function(args.loss), args.mode, args.batch_size, seed=args.seed,
        engine=args.engine or "auto", scheduler=make_scheduler(args, optimizer), clip=args.clip,
    )  # fmt: skip
    untrained = copy.deepcopy(model)  # graph.svg shows the gradients of the first step, before they shrink
    layers = "-".join(str(n) for n in [model.nin, *model.nouts])
    print(
        f"{args.dataset}: {len(X_train)} training / {len(X_test)} test samples; MLP {layers} "
        f"({args.activation}, output {args.output_activation}), {model.nparameters} parameters; "
        f"{optimizer!r}, {args.mode} mode, {args.epochs} epochs"
        + (f"; {args.classes} classes, cross_entropy" if args.loss == "cross_entropy" else "")
        + (f"; schedule {args.schedule}" if args.schedule != "none" else "")
        + (f"; gradient norm clipped at {args.clip:g}" if args.clip is not None else "")
    )
    print(trainer.choose_engine(X_train[:1], y_train[:1]))
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
            plots, skipped = save_training_plots(
                args.out, model, history, X_train, y_train, trainer.loss, untrained=untrained, test=validation,
                title=f"{args.dataset}: MLP {layers} ({args.activation}), {type(optimizer).__name__} lr={args.lr:g}",
                loss_name=args.loss,
            )
        except OSError as exc:
            return _fail(f"cannot write to --out {args.out}: {exc.strerror or exc}")
        walked, notes = save_walkthrough(args.out, untrained, X_train, y_train, trainer.loss)
        plots, skipped = plots + walked, skipped + notes
        print("wrote " + ", ".join(str(p) for p in paths + plots))
        for note in skipped:
            print(f"note: {note}")
    return 0


def save_walkthrough(
    out: Path, model: MLP, X: Sequence[Sequence[float]], y: Sequence[Any], loss: Callable[..., Any]
) -> tuple[list[Path], list[str]]:
    """``out/backward.html``: the backward pass of the sample graph.svg shows, step by step
    (`autograd.walkthrough` of `nn.draw.sample_graph`'s E, so its nodes are named x₁, net, h, ŷ, E).

    Returns the path written, or a note saying why it was skipped (no Graphviz; over 200 Values to draw).
    """
    from autograd import walkthrough
    from autograd.draw import GraphvizNotFoundError
    from autograd.errors import InvalidArgumentError

    from .draw import sample_graph
    from .plot import teaching_example

    k, t = teaching_example(X, y)
    try:
        error = sample_graph(model, X[k], t, loss).error
        model.zero_grad()  # sample_graph ran backward; the page needs only the graph
        return [walkthrough(error).save_html(out / "backward.html")], []
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
    command = args.command
    del args.command
    if command == "gpt":
        from . import gpt

        if args.engine == "traced" and importlib.util.find_spec("numpy") is None:
            command_parser(parser, "gpt").error("--engine traced needs numpy (pip install numpy, or the extra `fast`)")
        return gpt.run(steps=args.steps, lr=args.lr, samples=args.samples, seed=args.seed, engine=args.engine)
    return train(resolve(args, train_parser))
