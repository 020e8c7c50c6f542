"""The way out to PyTorch: an `MLP` as a ``torch.nn.Sequential`` and back.

Layer i of an MLP (0-based) becomes two modules of the Sequential, a ``Linear``
at index 2i and its activation at index 2i + 1 (``Identity`` for "linear"), so
the state-dict keys map one to one::

    ours                  torch
    "layers.{i}.weight"   "{2i}.weight"    (nout x nin: weight[k][j] from input j to neuron k)
    "layers.{i}.bias"     "{2i}.bias"

PyTorch is optional and imported only here, when a conversion is asked for.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import TYPE_CHECKING, Any

from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError

from .module import MLP

if TYPE_CHECKING:
    import torch

INSTALL_TORCH = (
    "PyTorch is needed for this conversion: pip install torch "
    "(the CPU build is enough, e.g. pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
)

#: Our activation names and the torch module class names that compute the same function.
TORCH_ACTIVATIONS: dict[str, str] = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "linear": "Identity"}


def import_torch() -> ModuleType:
    """The torch module, or an ImportError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(INSTALL_TORCH) from exc
    return torch


def torch_key(key: str) -> str:
    """Our state-dict key -> the key of the same tensor in ``to_torch(model).state_dict()``.

    >>> torch_key("layers.1.weight")
    '2.weight'
    """
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "layers" or not parts[1].isdigit() or parts[2] not in ("weight", "bias"):
        raise InvalidArgumentError(f"torch_key: {key!r} is not a key of MLP.state_dict() (layers.<i>.weight|bias)")
    return f"{2 * int(parts[1])}.{parts[2]}"


def to_torch(model: MLP) -> torch.nn.Sequential:
    """The same network as a float64 ``torch.nn.Sequential``: Linear, activation, Linear, activation...

    Weights are copied (later changes to either model do not affect the other).
    """
    if not isinstance(model, MLP):
        raise InvalidTypeError(f"to_torch: expected an nn.MLP, got {type(model).__name__}")
    torch = import_torch()
    state = model.state_dict()
    modules: list[Any] = []
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            linear = torch.nn.Linear(layer.nin, layer.nout, dtype=torch.float64)
            linear.weight.copy_(torch.tensor(state[f"layers.{i}.weight"], dtype=torch.float64))
            linear.bias.copy_(torch.tensor(state[f"layers.{i}.bias"], dtype=torch.float64))
            modules += [linear, getattr(torch.nn, TORCH_ACTIVATIONS[layer.activation])()]
    return torch.nn.Sequential(*modules)


def check_plain_linear(torch: ModuleType, linear: Any, where: str) -> None:
    """Refuse a Linear whose numbers an MLP layer cannot hold or whose computation is not W·x + b:
    a subclass with its own ``forward``, a lazy module without weights yet, complex or integer tensors."""
    if type(linear).forward is not torch.nn.Linear.forward:
        raise InvalidArgumentError(
            f"from_torch: {where} is a Linear subclass with its own forward; an MLP layer computes only W·x + b"
        )
    if torch.nn.parameter.is_lazy(linear.weight):
        raise InvalidArgumentError(f"from_torch: {where} has no weights yet (a lazy module: call it once first)")
    for name in ("weight", "bias"):
        tensor = getattr(linear, name)
        if tensor is not None and not tensor.is_floating_point():
            raise InvalidTypeError(f"from_torch: {where} has a {tensor.dtype} {name}; an MLP holds real floats")


def from_torch(sequential: torch.nn.Sequential) -> MLP:
    """An `MLP` with the weights of ``sequential``, which must be Linear layers, each
    followed by at most one Sigmoid, Tanh, ReLU or Identity module (none means "linear").

    Hidden layers must share one activation (the MLP's ``activation``); the last
    layer's is its ``output_activation``. A Linear without bias gets zero biases.
    """
    torch = import_torch()
    if not isinstance(sequential, torch.nn.Sequential):
        raise InvalidTypeError(f"from_torch: expected a torch.nn.Sequential, got {type(sequential).__name__}")
    activation_of = {getattr(torch.nn, cls): name for name, cls in TORCH_ACTIVATIONS.items()}
    linears: list[Any] = []
    activations: list[str] = []
    previous: Any = None
    for index, module in enumerate(sequential):
        kind = type(module).__name__
        if isinstance(module, torch.nn.Linear):
            check_plain_linear(torch, module, f"module {index} ({kind})")
            if linears and module.in_features != linears[-1].out_features:
                raise ShapeError(
                    f"from_torch: module {index} (Linear) takes {module.in_features} inputs "
                    f"but the layer before it gives {linears[-1].out_features}"
                )
            linears.append(module)
            activations.append("linear")
        elif type(module) in activation_of:
            if not isinstance(previous, torch.nn.Linear):
                raise InvalidArgumentError(f"from_torch: module {index} ({kind}) must directly follow a Linear layer")
            activations[-1] = activation_of[type(module)]
        else:
            raise InvalidArgumentError(
                f"from_torch: module {index} ({kind}) is not supported; an MLP is made of Linear layers, "
                f"each followed by at most one of {sorted(TORCH_ACTIVATIONS.values())}"
            )
        previous = module
    if not linears:
        raise InvalidArgumentError("from_torch: the Sequential has no Linear layer")
    hidden = set(activations[:-1])
    if len(hidden) > 1:
        raise InvalidArgumentError(f"from_torch: hidden layers must share one activation, got {activations[:-1]}")
    model = MLP(
        linears[0].in_features,
        [linear.out_features for linear in linears],
        activation=hidden.pop() if hidden else activations[-1],
        output_activation=activations[-1],
        init="zeros",
    )
    state: dict[str, Any] = {}
    for i, linear in enumerate(linears):
        bias = torch.zeros(linear.out_features) if linear.bias is None else linear.bias
        state[f"layers.{i}.weight"] = linear.weight.detach().to(torch.float64).tolist()
        state[f"layers.{i}.bias"] = bias.detach().to(torch.float64).tolist()
        numbers = [*state[f"layers.{i}.bias"], *(w for row in state[f"layers.{i}.weight"] for w in row)]
        if not all(math.isfinite(x) for x in numbers):
            raise InvalidArgumentError(f"from_torch: Linear layer {i} has NaN or infinite weights")
    model.load_state_dict(state)
    return model
