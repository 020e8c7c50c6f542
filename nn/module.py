"""Neurons, layers and multi-layer perceptrons built from `autograd.Value`s.

A neuron computes y = φ(net) with net = Σ_j w_j·x_j + b (one n-ary Σ node, see
`autograd.sum_values`). Parameters are labelled ``L{layer}.N{neuron}.w{j}`` and
``L{layer}.N{neuron}.b`` (layer and weight 1-based, neuron 0-based), the names
the drawings and anomaly messages show. Models are saved as JSON, never pickle.

All three are `nn.Module`s: ``named_parameters()``, ``children()``, ``train()`` /
``eval()`` and ``state_dict()`` work on them as on any module, and an MLP can sit
inside an `nn.Sequential`. A layer's neurons are the rows of its ``weight`` and
``bias`` (one matrix per layer in the state dict, as in PyTorch's ``Linear``).
"""

from __future__ import annotations

import json
import math
import os
import stat
import uuid
from collections.abc import Callable, Sequence
from numbers import Real
from pathlib import Path
from typing import Any, Union

from autograd import Value, sum_values
from autograd.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    ModelFileNotFoundError,
    NonFiniteError,
    SavePathError,
    ShapeError,
)
from autograd.value import as_float

from . import init as initializers
from .init import Initializer, Seed
from .modules import Module, check_size, plain

Input = Union[Value, int, float]
StateDict = dict[str, Any]

#: φ for each activation name; "linear" is the identity.
ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "sigmoid": Value.sigmoid,
    "tanh": Value.tanh,
    "relu": Value.relu,
    "linear": lambda net: net,
}

#: The file format written by `MLP.save` (checked by `MLP.load`).
FILE_FORMAT = "textbook-autograd.mlp"
FILE_VERSION = 1
# A saved model larger than this is refused before parsing: a hostile file must not exhaust memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PARAMETERS = 5_000_000


def check_activation(activation: object) -> str:
    """Return ``activation`` if it names one of `ACTIVATIONS`, else raise naming the valid ones."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise InvalidArgumentError(f"activation: unknown {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    return activation


def as_inputs(x: object, nin: int, where: str) -> list[Value]:
    """The inputs of a layer as Values (numbers become constants once, shared by all neurons)."""
    x = plain(x, where)
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise InvalidTypeError(f"{where}: expected a sequence of {nin} numbers or Values, got {type(x).__name__}")
    if len(x) != nin:
        raise ShapeError(f"{where}: expected {nin} inputs, got {len(x)}")
    return [
        xi if type(xi) is Value else Value(as_float(xi, f"{where} (input {j})"), requires_grad=False)
        for j, xi in enumerate(x)
    ]


class Neuron(Module):
    """y = φ(net), net = Σ_j w_j·x_j + b.

    Weights are drawn by ``init`` (a name from `nn.init.INITIALIZERS` or an
    initializer) with fan-in ``nin`` and fan-out ``fan_out`` (the size of the
    layer the neuron belongs to); the bias starts at 0. As a module its
    parameters are ``weight`` (w_1..w_n) and ``bias`` (b).
    """

    def __init__(
        self,
        nin: int,
        activation: str = "sigmoid",
        init: str | Initializer = "xavier_uniform",
        seed: Seed = None,
        fan_out: int = 1,
        label: str = "N0",
    ) -> None:
        check_size(nin, "Neuron (nin)")
        self.activation = check_activation(activation)
        self.phi = ACTIVATIONS[activation]
        draw = initializers.get(init)
        rng = initializers.make_rng(seed)
        self.label = label
        self.w = [Value(draw(nin, fan_out, rng), label=f"{label}.w{j + 1}") for j in range(nin)]
        self.b = Value(0.0, label=f"{label}.b")

    @property
    def nin(self) -> int:
        return len(self.w)

    def __call__(self, x: Sequence[Input]) -> Value:
        inputs = as_inputs(x, self.nin, f"Neuron {self.label}")
        return self.forward(inputs)

    def forward(self, inputs: list[Value]) -> Value:
        """φ(Σ_j w_j·x_j + b) for inputs already checked and converted by `as_inputs`."""
        net = sum_values([wj * xj for wj, xj in zip(self.w, inputs)] + [self.b])
        return self.phi(net)

    def _parameters(self) -> dict[str, Any]:
        return {"weight": self.w, "bias": self.b}

    def parameters(self) -> list[Value]:
        """The weights w_1..w_n, then the bias b."""
        return [*self.w, self.b]

    # φ is looked up again from the activation's name when a neuron is unpickled:
    # the functions of `ACTIVATIONS` are not picklable themselves.
    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "phi"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.phi = ACTIVATIONS[check_activation(self.activation)]

    def __repr__(self) -> str:
        return f"Neuron({self.label}: {self.nin} inputs, {self.activation})"


class Layer(Module):
    """``nout`` neurons reading the same ``nin`` inputs; ``index`` is the 1-based layer number in labels.

    As a module its parameters are ``weight`` (nout × nin: row k holds neuron k's
    w_1..w_n) and ``bias`` (neuron k's b at k); `named_parameters` lists them neuron
    by neuron (w_1..w_n, b), the order of `parameters`.
    """

    def __init__(
        self,
        nin: int,
        nout: int,
        activation: str = "sigmoid",
        init: str | Initializer = "xavier_uniform",
        seed: Seed = None,
        index: int = 1,
    ) -> None:
        check_size(nin, "Layer (nin)")
        check_size(nout, "Layer (nout)")
        check_activation(activation)
        rng = initializers.make_rng(seed)
        self.index = index
        self.activation = activation
        self.neurons = [
            Neuron(nin, activation, init, rng, fan_out=nout, label=f"L{index}.N{i}") for i in range(nout)
        ]

    @property
    def nin(self) -> int:
        return self.neurons[0].nin

    @property
    def nout(self) -> int:
        return len(self.neurons)

    def __call__(self, x: Sequence[Input]) -> list[Value]:
        inputs = as_inputs(x, self.nin, f"Layer L{self.index}")
        return [neuron.forward(inputs) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]

    # -- as a module: the neurons are the rows of weight and bias, not children --------------
    def _parameters(self) -> dict[str, Any]:
        return {"weight": [neuron.w for neuron in self.neurons], "bias": [neuron.b for neuron in self.neurons]}

    def named_children(self) -> list[tuple[str, Module]]:
        return []

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Value]]:
        """``weight[k][j]`` (w_{j+1} of neuron k) and ``bias[k]``, neuron by neuron as in `parameters`."""
        named: list[tuple[str, Value]] = []
        for k, neuron in enumerate(self.neurons):
            named += [(f"{prefix}weight[{k}][{j}]", w) for j, w in enumerate(neuron.w)]
            named.append((f"{prefix}bias[{k}]", neuron.b))
        return named

    # The neurons are not children, so train()/eval() would not reach them: the layer's
    # mode is kept by its neurons, and setting it sets theirs.
    @property
    def training(self) -> bool:
        return self.neurons[0].training

    @training.setter
    def training(self, mode: bool) -> None:
        for neuron in self.neurons:
            neuron.training = mode

    def __repr__(self) -> str:
        return f"Layer(L{self.index}: {self.nin} -> {self.nout}, {self.activation})"


class MLP(Module):
    """A multi-layer perceptron: layers of sizes ``nouts`` on ``nin`` inputs.

    Hidden layers use ``activation``; the last layer uses ``output_activation``
    (the same as ``activation`` when None). ``model(x)`` returns a Value when
    the last layer has one neuron, else a list of Values. Its children are the
    layers, named ``layers.0``, ``layers.1``, … in `state_dict` and `named_parameters`.

    >>> model = MLP(2, [2, 1], seed=0)
    >>> model.nparameters
    9
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str = "sigmoid",
        output_activation: str | None = None,
        init: str | Initializer = "xavier_uniform",
        seed: Seed = None,
    ) -> None:
        check_size(nin, "MLP (nin)")
        if isinstance(nouts, (str, bytes)) or not isinstance(nouts, Sequence) or not nouts:
            raise InvalidTypeError(f"MLP (nouts): expected a non-empty list of layer sizes, got {nouts!r}")
        sizes = [nin] + [check_size(n, f"MLP (nouts[{i}])") for i, n in enumerate(nouts)]
        self.activation = check_activation(activation)
        self.output_activation = check_activation(activation if output_activation is None else output_activation)
        rng = initializers.make_rng(seed)
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], self.output_activation if i == last else activation, init, rng, index=i + 1)
            for i in range(len(nouts))
        ]

    @property
    def nin(self) -> int:
        return self.layers[0].nin

    @property
    def nouts(self) -> list[int]:
        return [layer.nout for layer in self.layers]

    @property
    def nparameters(self) -> int:
        return sum(layer.nout * (layer.nin + 1) for layer in self.layers)

    def __call__(self, x: Sequence[Input]) -> Value | list[Value]:
        values = as_inputs(x, self.nin, "MLP")
        for layer in self.layers:
            values = [neuron.forward(values) for neuron in layer.neurons]
        return values[0] if len(values) == 1 else values

    def parameters(self) -> list[Value]:
        """All parameters, layer by layer, neuron by neuron: w_1..w_n then b."""
        return [p for layer in self.layers for p in layer.parameters()]

    def config(self) -> dict[str, Any]:
        """What is needed to rebuild the architecture (saved with the weights)."""
        return {
            "nin": self.nin,
            "nouts": self.nouts,
            "activation": self.activation,
            "output_activation": self.output_activation,
        }

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> StateDict:
        """Plain numbers by name: ``layers.{i}.weight`` (nout x nin lists) and ``layers.{i}.bias``.

        ``weight[k][j]`` is the weight from input j to neuron k of layer i (0-based),
        the parameter labelled ``L{i+1}.N{k}.w{j+1}``.
        """
        state: StateDict = {}
        for i, layer in enumerate(self.layers):
            state[f"layers.{i}.weight"] = [[w.data for w in neuron.w] for neuron in layer.neurons]
            state[f"layers.{i}.bias"] = [neuron.b.data for neuron in layer.neurons]
        return state

    def load_state_dict(self, state: object) -> None:
        """Set every parameter from ``state`` (as made by `state_dict`).

        Everything is checked before anything is written, so on any error
        (missing or unexpected keys, wrong shapes, non-numbers, NaN or infinity)
        the model is left unchanged. Raises `ModelFileError`.
        """
        if not isinstance(state, dict):
            raise ModelFileError(f"state dict: expected a dict, got {type(state).__name__}")
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ModelFileError(f"state dict: missing keys {_few(missing)}, unexpected keys {_few(unexpected)}")
        updates: list[tuple[Value, float]] = []
        for i, layer in enumerate(self.layers):
            weight_key, bias_key = f"layers.{i}.weight", f"layers.{i}.bias"
            rows = _number_list(state[weight_key], layer.nout, weight_key, "rows")
            biases = _number_list(state[bias_key], layer.nout, bias_key, "entries")
            for k, (neuron, row) in enumerate(zip(layer.neurons, rows)):
                weights = _number_list(row, layer.nin, f"{weight_key}[{k}]", "entries")
                for j, (w, v) in enumerate(zip(neuron.w, weights)):
                    updates.append((w, _parameter(v, f"{weight_key}[{k}][{j}]")))
                updates.append((neuron.b, _parameter(biases[k], f"{bias_key}[{k}]")))
        for p, v in updates:
            p.data = v

    # -- files -------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write config and weights as JSON; a temporary file is renamed into place,
        so a crash never leaves a half-written model at ``path``.

        A symlink is followed: the file it points to is replaced, the link stays.
        ``path`` must name a regular file or a new one; a directory, FIFO, device or
        socket raises `SavePathError`, and non-finite parameters (a diverged model)
        raise `NonFiniteError`. On any error the file already at ``path`` is untouched.
        """
        for p in self.parameters():
            if not math.isfinite(p.data):
                raise NonFiniteError(f"MLP.save: parameter {p.label} is {p.data}; a diverged model is not saved")
        document = {"format": FILE_FORMAT, "version": FILE_VERSION, "config": self.config(), "state": self.state_dict()}
        _as_path(path, "MLP.save")  # the type check; "" must reach save_target as it is
        write_json_atomically(path, document)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MLP:
        """Read a model written by `save`; any malformed file raises `ModelFileError`,
        a missing one `ModelFileNotFoundError` (both a `ModelFileError` and a `FileNotFoundError`)."""
        document = read_json(_as_path(path, "MLP.load"))
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ModelFileError(f"{path}: not a saved MLP (no \"format\": {FILE_FORMAT!r})")
        if document.get("version") != FILE_VERSION:
            raise ModelFileError(f"{path}: unsupported version {document.get('version')!r}, expected {FILE_VERSION}")
        config = document.get("config")
        if not isinstance(config, dict) or set(config) != {"nin", "nouts", "activation", "output_activation"}:
            raise ModelFileError(f"{path}: \"config\" must hold nin, nouts, activation, output_activation")
        try:
            sizes = [check_size(config["nin"], "nin")]
            nouts = config["nouts"]
            if not isinstance(nouts, list) or not nouts:
                raise InvalidTypeError(f"nouts: expected a non-empty list, got {nouts!r}")
            sizes += [check_size(n, "nouts") for n in nouts]
            if sum(n * (m + 1) for m, n in zip(sizes, sizes[1:])) > MAX_PARAMETERS:
                raise InvalidArgumentError(f"layer sizes {sizes} exceed {MAX_PARAMETERS} parameters")
            model = cls(sizes[0], sizes[1:], config["activation"], config["output_activation"], init="zeros")
        except (InvalidTypeError, InvalidArgumentError) as exc:
            raise ModelFileError(f"{path}: bad config: {exc}") from None
        try:
            model.load_state_dict(document.get("state"))
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        return model

    def __repr__(self) -> str:
        layers = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"MLP(nin={self.nin}, layers=[{layers}\n], parameters={self.nparameters})"


def _few(keys: list[str], shown: int = 5) -> str:
    """The first few keys of a list (a hostile file may name a hundred thousand)."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{keys[:shown]}{more}"


def _as_path(path: object, what: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"{what}: path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    return Path(path)


def _number_list(x: object, length: int, where: str, unit: str) -> list[Any]:
    if not isinstance(x, list):
        raise ModelFileError(f"{where}: expected a list of {length} {unit}, got {type(x).__name__}")
    if len(x) != length:
        raise ModelFileError(f"{where}: expected {length} {unit}, got {len(x)}")
    return x


def _parameter(x: object, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise ModelFileError(f"{where}: expected a number, got {type(x).__name__} {x!r}")
    try:
        value = float(x)
    except OverflowError:
        raise ModelFileError(f"{where}: number too large for a float") from None
    if not math.isfinite(value):
        raise ModelFileError(f"{where}: expected a finite number, got {value}")
    return value


#: What `os.stat` may find at a path besides a regular file, by the test that recognises it.
SPECIAL_FILES: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_unless_regular_file(path: str | os.PathLike[str], mode: int) -> None:
    """Raise `SavePathError` naming ``path`` unless ``mode`` (an ``st_mode``) is a regular file's.

    Saving renames a new file over the old name: over a FIFO, a device or a socket
    that would replace the node itself (as root, ``/dev/null`` became a JSON file).
    """
    if stat.S_ISREG(mode):
        return
    kind = next((name for is_kind, name in SPECIAL_FILES if is_kind(mode)), "not a regular file")
    if stat.S_ISDIR(mode):
        raise SavePathError(f"{path}: is a directory; give a file name inside it, e.g. {Path(path) / 'model.json'}")
    raise SavePathError(f"{path}: is {kind}, not a regular file; refusing to replace it")


def save_target(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file that saving to ``path`` replaces, and its status (None for a new file).

    That is ``path`` itself, or the file its symlinks lead to: the link stays a link
    and the file it points to gets the new content, as ``open(path, "w")`` would do.
    """
    if os.fspath(path) == "":  # Path("") is ".", the current folder
        raise SavePathError("cannot save to an empty path; name a file, e.g. model.json")
    target = Path(os.path.realpath(path))
    try:
        status = os.stat(target)
    except FileNotFoundError:  # a new file (a missing folder is reported when the file is created)
        return target, None
    except OSError as exc:  # a symlink loop, a file used as a folder, no permission...
        raise SavePathError(f"{path}: cannot save here: {exc.strerror or exc}") from None
    shown = path if target == Path(os.path.abspath(path)) else f"{path} (-> {target})"
    refuse_unless_regular_file(shown, status.st_mode)
    return target, status


def write_json_atomically(path: str | os.PathLike[str], document: object) -> None:
    """Write ``document`` as JSON to ``path``, so that no failure leaves a half-written file.

    The text goes to a temporary file beside the target (see `save_target`), is
    flushed to disk, and is renamed over the target in one step; a file already
    there keeps its permissions. NaN and infinity (not JSON) raise `NonFiniteError`
    before anything is written.
    """
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except ValueError:  # json's message does not say which file
        raise NonFiniteError(f"{path}: not written: it would hold NaN or infinity, which JSON cannot") from None
    target, status = save_target(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as for any new file.
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, f"{path}: cannot write the model file: {exc.strerror}") from None
    try:
        if status is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, stat.S_IMODE(status.st_mode))
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def _reject_constant(name: str) -> float:
    raise ModelFileError(f"{name} is not a number allowed in a model file")


def read_json(path: Path) -> Any:
    """Parse a JSON file of bounded size; any failure becomes `ModelFileError`."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelFileError(f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES} allowed for a model file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelFileNotFoundError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: not valid JSON (truncated or corrupt?): {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ModelFileError(f"{path}: {exc}") from None
