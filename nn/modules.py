"""`Module`, the base of every model, and the PyTorch-style building blocks written on it.

A module owns named parameters (Values, alone or in nested lists: a ``weight``
matrix is rows of Values), named buffers (numbers it keeps but does not train,
such as batch norm's running mean) and child modules. From those three it
derives everything else: ``parameters()``, ``named_parameters()``,
``state_dict()``, ``train()`` / ``eval()``. Names and semantics follow
``torch.nn`` wherever PyTorch has the thing.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Union

from autograd import Value, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ModelFileError, ShapeError
from autograd.value import as_float

from . import init as initializers
from .init import Initializer, Seed

Input = Union[Value, int, float]
StateDict = dict[str, Any]


class Module:
    """The base of every model: parameters, buffers and children, by name.

    A subclass sets its parameters and children as attributes and says which
    attributes are parameters in `_parameters` (and buffers in `_buffers`);
    children are found by themselves (attributes that are modules, or lists of
    modules, named ``layers.0``, ``layers.1``, …).
    """

    training: bool = True

    # -- what a module declares ----------------------------------------------------
    def _parameters(self) -> dict[str, Any]:
        """Own parameters by name: a Value, or nested lists of Values (rows of a matrix)."""
        return {}

    def _buffers(self) -> dict[str, Any]:
        """Own buffers by name: numbers (or lists of numbers) saved in the state dict but not trained."""
        return {}

    def _load_buffer(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def named_children(self) -> list[tuple[str, Module]]:
        """The direct sub-modules, by attribute name (``layers.0`` for an item of a list)."""
        found: list[tuple[str, Module]] = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                found.append((name, value))
            elif isinstance(value, (list, tuple)) and value and all(isinstance(m, Module) for m in value):
                found += [(f"{name}.{i}", m) for i, m in enumerate(value)]
        return found

    # -- what follows from it --------------------------------------------------------
    def children(self) -> list[Module]:
        return [module for _, module in self.named_children()]

    def modules(self) -> list[Module]:
        """This module and every module below it, depth first."""
        return [module for _, module in _named_modules(self)]

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Value]]:
        """One ``(name, Value)`` per scalar parameter, e.g. ``("layers.0.weight[1][0]", w)``, in `parameters` order.

        The name is the parameter's place in `state_dict`: key ``layers.0.weight``, row 1, column 0.
        """
        named: list[tuple[str, Value]] = []
        for name, tensor in self._parameters().items():
            named += [(prefix + name + index, v) for index, v in _flatten(tensor)]
        for name, child in self.named_children():
            named += child.named_parameters(f"{prefix}{name}.")
        return named

    def parameters(self) -> list[Value]:
        return [v for _, v in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 (gradients accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = 0.0

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout drops, batch norm uses the batch's statistics) for this module and all below."""
        if not isinstance(mode, bool):
            raise InvalidTypeError(f"{type(self).__name__}.train: mode must be a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def state_dict(self) -> StateDict:
        """Plain numbers by name: each parameter as its nested lists of floats, each buffer as it is."""
        state: StateDict = {}
        for name, tensor in self._parameters().items():
            state[name] = _numbers(tensor)
        for name, value in self._buffers().items():
            state[name] = value
        for name, child in self.named_children():
            state.update({f"{name}.{key}": value for key, value in child.state_dict().items()})
        return state

    def load_state_dict(self, state: object) -> None:
        """Set every parameter and buffer from ``state`` (as made by `state_dict`).

        Everything is checked first (keys, shapes, finite numbers), so on any error
        the module is left unchanged. Raises `ModelFileError`.
        """
        if not isinstance(state, dict):
            raise ModelFileError(f"state dict: expected a dict, got {type(state).__name__}")
        expected = self.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ModelFileError(f"state dict: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
        checked = {key: _same_shape(state[key], expected[key], key) for key in expected}
        for prefix, module in _named_modules(self):
            for name, tensor in module._parameters().items():
                for v, number in _pairs(tensor, checked[prefix + name]):
                    v.data = number
            for name in module._buffers():
                module._load_buffer(name, checked[prefix + name])

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def forward_batch(self, batch: Sequence[Any]) -> list[Any]:
        """The outputs of a whole batch (a list of samples), one per sample.

        Here `forward` of each sample on its own: most modules treat samples
        independently. A module whose output depends on the other samples of the
        batch (`BatchNorm1d`) overrides it, and `Sequential` chains it, so
        ``model.forward_batch(batch)`` is the batch-level forward a trainer needs.
        """
        return [self.forward(x) for x in _sequence(batch, f"{type(self).__name__}.forward_batch")]


class Linear(Module):
    """y = W·x + b for an input of ``nin`` numbers: ``weight`` is nout × nin, ``bias`` has nout entries.

    Weights are drawn by ``init`` (a name from `nn.init.INITIALIZERS`) with fan-in
    nin and fan-out nout; the bias starts at 0.
    """

    def __init__(
        self, nin: int, nout: int, bias: bool = True, init: str | Initializer = "xavier_uniform", seed: Seed = None
    ) -> None:
        self.nin, self.nout = check_size(nin, "Linear (nin)"), check_size(nout, "Linear (nout)")
        draw = initializers.get(init)
        rng = initializers.make_rng(seed)
        self.weight = [[Value(draw(nin, nout, rng)) for _ in range(nin)] for _ in range(nout)]
        self.bias = [Value(0.0) for _ in range(nout)] if bias else None

    def _parameters(self) -> dict[str, Any]:
        return {"weight": self.weight} if self.bias is None else {"weight": self.weight, "bias": self.bias}

    def forward(self, x: Sequence[Input]) -> list[Value]:
        inputs = _vector(x, self.nin, "Linear")
        if self.bias is None:
            return [sum_values([w * xi for w, xi in zip(row, inputs)]) for row in self.weight]
        return [sum_values([w * xi for w, xi in zip(row, inputs)] + [b]) for row, b in zip(self.weight, self.bias)]

    def __repr__(self) -> str:
        return f"Linear(nin={self.nin}, nout={self.nout}, bias={self.bias is not None})"


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(2, 4), Tanh(), Linear(4, 1))``."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise InvalidTypeError(f"Sequential: item {i} is a {type(m).__name__}, not a Module")
        self.items = list(modules)

    def named_children(self) -> list[tuple[str, Module]]:
        return [(str(i), m) for i, m in enumerate(self.items)]

    def forward(self, x: Any) -> Any:
        for module in self.items:
            x = module(x)
        return x

    def forward_batch(self, batch: Sequence[Any]) -> list[Any]:
        """Each module's `forward_batch` in turn: the whole batch flows through every layer."""
        for module in self.items:
            batch = module.forward_batch(batch)
        return list(batch)

    def __getitem__(self, i: int) -> Module:
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.items)

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(repr(m) for m in self.items) + ")"


class _Elementwise(Module):
    """φ applied to each entry of a vector (or to one Value)."""

    def phi(self, v: Value) -> Value:
        raise NotImplementedError

    def forward(self, x: Any) -> Any:
        if isinstance(x, Value):
            return self.phi(x)
        return [self.phi(v) for v in _values(x, type(self).__name__)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(_Elementwise):
    """σ(x) = 1 / (1 + e^-x), entry by entry."""

    def phi(self, v: Value) -> Value:
        return v.sigmoid()


class Tanh(_Elementwise):
    """tanh(x), entry by entry."""

    def phi(self, v: Value) -> Value:
        return v.tanh()


class ReLU(_Elementwise):
    """max(x, 0), entry by entry."""

    def phi(self, v: Value) -> Value:
        return v.relu()


class Identity(_Elementwise):
    """x itself (the "linear" activation)."""

    def phi(self, v: Value) -> Value:
        return v


class Dropout(Module):
    """Inverted dropout: in training each unit is zeroed with probability p, the others scaled by 1/(1 − p).

    The scaling keeps the expected value of every unit unchanged, so evaluation
    (``eval()``) uses the units as they are. A dropped unit is the constant 0: no
    gradient flows back through it. The masks come from the module's own
    ``random.Random(seed)`` (PyTorch's random numbers cannot be reproduced).
    """

    def __init__(self, p: float = 0.5, seed: Seed = None) -> None:
        self.p = as_float(p, "Dropout (p)")
        if not 0.0 <= self.p <= 1.0:
            raise InvalidArgumentError(f"Dropout: p must be a probability in [0, 1], got {self.p}")
        self.rng = initializers.make_rng(seed)

    def forward(self, x: Any) -> Any:
        units = _values(x, "Dropout")
        if not self.training or self.p == 0.0:
            return units
        zero = Value(0.0, requires_grad=False)
        if self.p == 1.0:
            return [zero for _ in units]
        scale = 1.0 / (1.0 - self.p)
        return [zero if self.rng.random() < self.p else v * scale for v in units]

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class BatchNorm1d(Module):
    """Batch normalisation (Ioffe & Szegedy, 2015) of each feature over a batch.

    ``bn(batch)`` takes a list of samples (each a list of ``num_features``) and returns
    one of the same shape. For feature f, over the n samples of the batch:

        μ = (1/n)·Σ x,   σ² = (1/n)·Σ (x − μ)²,   y = γ·(x − μ)/√(σ² + ε) + β

    γ (``weight``) starts at 1 and β (``bias``) at 0, both learned. In training the
    running statistics move towards the batch's, with the unbiased variance
    (n/(n − 1)·σ²) as PyTorch keeps it:

        running ← (1 − momentum)·running + momentum·batch statistic

    and in evaluation mode they replace μ and σ² (constants: no gradient flows to them).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.num_features = check_size(num_features, "BatchNorm1d (num_features)")
        self.eps = as_float(eps, "BatchNorm1d (eps)")
        self.momentum = as_float(momentum, "BatchNorm1d (momentum)")
        if self.eps <= 0.0:
            raise InvalidArgumentError(f"BatchNorm1d: eps must be > 0, got {self.eps}")
        if not 0.0 <= self.momentum <= 1.0:
            raise InvalidArgumentError(f"BatchNorm1d: momentum must be in [0, 1], got {self.momentum}")
        self.weight = [Value(1.0) for _ in range(self.num_features)]
        self.bias = [Value(0.0) for _ in range(self.num_features)]
        self.running_mean = [0.0] * self.num_features
        self.running_var = [1.0] * self.num_features
        self.num_batches_tracked = 0

    def _parameters(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias}

    def _buffers(self) -> dict[str, Any]:
        return {
            "running_mean": list(self.running_mean),
            "running_var": list(self.running_var),
            "num_batches_tracked": self.num_batches_tracked,
        }

    def forward(self, x: Sequence[Any]) -> Any:
        """``bn(batch) -> batch`` (see `forward_batch`); ``bn(sample)`` only in eval mode.

        One sample (a list of ``num_features`` numbers) has no batch statistics: in
        training mode it is refused with `ShapeError`; in eval mode it is normalised
        with the running statistics.
        """
        items = _sequence(x, "BatchNorm1d")
        if any(isinstance(v, (Value, numbers.Real)) for v in items):  # numbers: one sample, not a batch
            if self.training:
                raise ShapeError(
                    f"BatchNorm1d: in training mode it normalises each feature over a batch, but got one "
                    f"sample of {len(items)} values; pass a batch (a list of 2 or more samples), e.g. "
                    "model.forward_batch(batch), or call eval() to use the running statistics"
                )
            return self.forward_batch([items])[0]
        return self.forward_batch(items)

    def forward_batch(self, batch: Sequence[Sequence[Input]]) -> list[list[Value]]:
        """The batch normalised feature by feature (the equations above)."""
        samples = [
            _vector(x, self.num_features, f"BatchNorm1d (sample {k})")
            for k, x in enumerate(_sequence(batch, "BatchNorm1d"))
        ]
        n = len(samples)
        if not samples:
            raise ShapeError("BatchNorm1d: the batch is empty")
        columns = list(zip(*samples))
        out_columns = []
        for f, column in enumerate(columns):
            if self.training:
                if n < 2:
                    raise ShapeError(
                        "BatchNorm1d: a batch of 1 sample has no variance to normalise by in training mode; "
                        "use batches of 2 or more (not online mode), or eval()"
                    )
                mean = sum_values(list(column)) * (1.0 / n)
                centred = [x - mean for x in column]
                var = sum_values([c * c for c in centred]) * (1.0 / n)
                m = self.momentum
                self.running_mean[f] = (1.0 - m) * self.running_mean[f] + m * mean.data
                self.running_var[f] = (1.0 - m) * self.running_var[f] + m * var.data * n / (n - 1)
                inv_std = (var + self.eps) ** -0.5
            else:
                centred = [x - self.running_mean[f] for x in column]
                inv_std = Value((self.running_var[f] + self.eps) ** -0.5, requires_grad=False)
            out_columns.append([self.weight[f] * (c * inv_std) + self.bias[f] for c in centred])
        if self.training:
            self.num_batches_tracked += 1
        return [list(row) for row in zip(*out_columns)]

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


class Embedding(Module):
    """A table of ``num`` rows of ``dim`` parameters; ``emb(i)`` is row i (a lookup, not a product).

    Rows start as N(0, 1) draws, as in PyTorch. ``emb([i, j])`` gives the rows of i and j.
    An id may be a Value (a traced input, see `autograd.indices`): the row is then picked
    with the select row of the table (`nn.functional.embedding`), so a trace replays it
    for every sample's own id; an int picks it by plain indexing.
    """

    def __init__(self, num: int, dim: int, seed: Seed = None) -> None:
        self.num, self.dim = check_size(num, "Embedding (num)"), check_size(dim, "Embedding (dim)")
        rng = initializers.make_rng(seed)
        self.weight = [[Value(rng.gauss(0.0, 1.0)) for _ in range(self.dim)] for _ in range(self.num)]

    def _parameters(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def forward(self, ids: int | Value | Sequence[int | Value]) -> Any:
        if type(ids) is Value or (isinstance(ids, int) and not isinstance(ids, bool)):
            return self._lookup(ids)
        return [self._lookup(i) for i in _sequence(ids, "Embedding")]

    def _lookup(self, i: object) -> list[Value]:
        if type(i) is Value:
            from .functional import embedding  # functional imports this module

            return embedding(i, self.weight)
        return list(self.weight[self._row(i)])

    def _row(self, i: object) -> int:
        if isinstance(i, bool) or not isinstance(i, int):
            raise InvalidTypeError(f"Embedding: ids must be ints, got {type(i).__name__} {i!r}")
        if not 0 <= i < self.num:
            raise InvalidArgumentError(f"Embedding: id {i} is not in [0, {self.num})")
        return i

    def __repr__(self) -> str:
        return f"Embedding({self.num}, {self.dim})"


class RMSNorm(Module):
    """y = x / √(mean(x²) + ε) · γ: each vector scaled to a root-mean-square of 1, then by a learned γ.

    γ (``weight``) starts at 1. ``eps=None`` takes the float64 machine epsilon, as
    ``torch.nn.RMSNorm`` does in float64.
    """

    def __init__(self, dim: int, eps: float | None = None) -> None:
        self.dim = check_size(dim, "RMSNorm (dim)")
        self.eps = sys.float_info.epsilon if eps is None else as_float(eps, "RMSNorm (eps)")
        if self.eps < 0.0:
            raise InvalidArgumentError(f"RMSNorm: eps must be >= 0, got {self.eps}")
        self.weight = [Value(1.0) for _ in range(self.dim)]

    def _parameters(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def forward(self, x: Sequence[Input]) -> list[Value]:
        inputs = _vector(x, self.dim, "RMSNorm")
        scale = (sum_values([xi * xi for xi in inputs]) * (1.0 / self.dim) + self.eps) ** -0.5
        return [xi * scale * g for xi, g in zip(inputs, self.weight)]

    def __repr__(self) -> str:
        return f"RMSNorm({self.dim}, eps={self.eps})"


# -- helpers -------------------------------------------------------------------------
def plain(x: Any, where: str) -> Any:
    """A numpy array as (nested) lists of Python numbers; anything else unchanged.

    Arrays are accepted wherever lists are, as long as they hold real numbers.
    numpy is never imported here: if it is not loaded, ``x`` cannot be an array.
    """
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(x, numpy.ndarray):
        return x
    if x.dtype.kind not in "iuf":
        raise InvalidTypeError(f"{where}: expected an array of real numbers, got dtype {x.dtype}")
    return x.tolist()


def check_size(n: object, what: str) -> int:
    """A size (of a layer, a table, a vector): an int >= 1 (not a bool)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidTypeError(f"{what}: expected an int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise InvalidArgumentError(f"{what}: expected at least 1, got {n}")
    return n


def _sequence(x: object, where: str) -> Sequence[Any]:
    x = plain(x, where)  # a numpy array of numbers is taken as its list
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise InvalidTypeError(f"{where}: expected a list, got {type(x).__name__}")
    return x


def _values(x: object, where: str) -> list[Value]:
    """A list of Values; numbers become constants."""
    return [
        v if isinstance(v, Value) else Value(as_float(v, f"{where} (input {j})"), requires_grad=False)
        for j, v in enumerate(_sequence(x, where))
    ]


def _vector(x: object, n: int, where: str) -> list[Value]:
    items = _sequence(x, where)
    if len(items) != n:
        raise ShapeError(f"{where}: expected {n} inputs, got {len(items)}")
    return _values(items, where)


def _flatten(tensor: Any, index: str = "") -> list[tuple[str, Value]]:
    if isinstance(tensor, Value):
        return [(index, tensor)]
    return [pair for i, item in enumerate(tensor) for pair in _flatten(item, f"{index}[{i}]")]


def _numbers(tensor: Any) -> Any:
    if isinstance(tensor, Value):
        return tensor.data
    return [_numbers(item) for item in tensor]


def _same_shape(value: object, like: Any, where: str) -> Any:
    """``value`` checked to have the shape of ``like`` (nested lists of numbers), with finite numbers."""
    if isinstance(like, list):
        if not isinstance(value, list) or len(value) != len(like):
            raise ModelFileError(f"{where}: expected a list of {len(like)} entries, got {value!r:.60}")
        return [_same_shape(v, w, f"{where}[{i}]") for i, (v, w) in enumerate(zip(value, like))]
    if isinstance(like, int) and not isinstance(like, bool):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelFileError(f"{where}: expected an int >= 0, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFileError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int of 400 digits
        raise ModelFileError(f"{where}: number too large for a float") from None
    if not math.isfinite(number):
        raise ModelFileError(f"{where}: expected a finite number, got {number}")
    return number


def _named_modules(module: Module, prefix: str = "") -> list[tuple[str, Module]]:
    found = [(prefix, module)]
    for name, child in module.named_children():
        found += _named_modules(child, f"{prefix}{name}.")
    return found


def _pairs(tensor: Any, numbers: Any) -> list[tuple[Value, float]]:
    """(parameter, number) for each Value of ``tensor`` and the number at the same place."""
    if isinstance(tensor, Value):
        return [(tensor, numbers)]
    return [pair for t, n in zip(tensor, numbers) for pair in _pairs(t, n)]
