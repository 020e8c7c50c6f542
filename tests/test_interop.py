"""`nn.to_torch` / `nn.from_torch`: the same network in PyTorch float64, same outputs
and same gradients to 1e-12, state-dict keys one to one, and clear errors for
what an MLP cannot express. PyTorch's own forward and backward are the reference.
"""

from __future__ import annotations

import random
import sys
from types import ModuleType

import pytest

import nn
from autograd import Value, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from nn.interop import torch_key

ACTIVATIONS = ["sigmoid", "tanh", "relu", "linear"]


def random_inputs(nin: int, count: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-2.0, 2.0) for _ in range(nin)] for _ in range(count)]


def as_list(out: Value | list[Value]) -> list[Value]:
    return out if isinstance(out, list) else [out]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output_activation", ACTIVATIONS)
def test_same_outputs_and_gradients_as_the_exported_network(
    torch: ModuleType, activation: str, output_activation: str
) -> None:
    """L = Σ_k out_k² over several random inputs: every parameter and input gradient
    agrees with torch's backward on the exported Sequential."""
    model = nn.MLP(3, [4, 3, 2], activation=activation, output_activation=output_activation, init="he_normal", seed=7)
    seq = nn.to_torch(model)
    for x in random_inputs(3, 4, seed=1):
        model.zero_grad()
        inputs = [Value(xi) for xi in x]
        outputs = as_list(model(inputs))
        loss = sum_values([o * o for o in outputs])
        loss.backward()

        seq.zero_grad()
        tensor_x = torch.tensor(x, requires_grad=True)
        tensor_out = seq(tensor_x)
        (tensor_out**2).sum().backward()

        assert [o.data for o in outputs] == pytest.approx(tensor_out.tolist(), rel=1e-12, abs=1e-12)
        assert [v.grad for v in inputs] == pytest.approx(tensor_x.grad.tolist(), rel=1e-12, abs=1e-12)
        torch_grads = {name: p.grad.tolist() for name, p in seq.named_parameters()}
        for i, layer in enumerate(model.layers):
            ours_w = [[w.grad for w in neuron.w] for neuron in layer.neurons]
            ours_b = [neuron.b.grad for neuron in layer.neurons]
            for row, expected in zip(ours_w, torch_grads[torch_key(f"layers.{i}.weight")]):
                assert row == pytest.approx(expected, rel=1e-12, abs=1e-12)
            assert ours_b == pytest.approx(torch_grads[torch_key(f"layers.{i}.bias")], rel=1e-12, abs=1e-12)


def test_exported_structure_is_linear_then_activation_in_float64(torch: ModuleType) -> None:
    seq = nn.to_torch(nn.MLP(2, [3, 1], activation="tanh", output_activation="linear", seed=0))
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear", "Identity"]
    assert all(p.dtype == torch.float64 for p in seq.parameters())


def test_state_dict_keys_map_one_to_one_with_identical_numbers(torch: ModuleType) -> None:
    model = nn.MLP(3, [4, 2, 1], seed=3)
    ours = model.state_dict()
    theirs = nn.to_torch(model).state_dict()
    assert {torch_key(key) for key in ours} == set(theirs)
    for key, value in ours.items():
        assert theirs[torch_key(key)].tolist() == value  # exact: float64 both sides


def test_torch_key_documents_the_mapping() -> None:
    assert torch_key("layers.0.weight") == "0.weight"
    assert torch_key("layers.3.bias") == "6.bias"
    with pytest.raises(InvalidArgumentError, match="not a key of MLP.state_dict"):
        torch_key("0.weight")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_round_trip_ours_torch_ours_is_exact(torch: ModuleType, activation: str) -> None:
    model = nn.MLP(2, [5, 3], activation=activation, output_activation="sigmoid", seed=11)
    back = nn.from_torch(nn.to_torch(model))
    assert back.config() == model.config()
    assert back.state_dict() == model.state_dict()


def test_round_trip_torch_ours_torch_is_exact(torch: ModuleType) -> None:
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    model = nn.from_torch(seq)
    assert model.config() == {"nin": 4, "nouts": [8, 8, 2], "activation": "relu", "output_activation": "linear"}
    again = nn.to_torch(model)
    original = seq.state_dict()
    # torch's Linear layers sit at 0, 2, 4 in both; the export adds an Identity at 5 (no parameters).
    assert {key: value.tolist() for key, value in again.state_dict().items()} == {
        key: value.tolist() for key, value in original.items()
    }
    x = torch.tensor(random_inputs(4, 5, seed=2))
    assert torch.equal(again(x), seq(x))


def test_from_torch_reads_float32_weights_exactly_and_zero_bias_for_bias_free_layers(torch: ModuleType) -> None:
    linear = torch.nn.Linear(2, 2, bias=False, dtype=torch.float32)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.1, -0.2], [0.3, 0.4]], dtype=torch.float32))
    model = nn.from_torch(torch.nn.Sequential(linear, torch.nn.Sigmoid()))
    state = model.state_dict()
    # float32 0.1 is 0.100000001490116...: the float32 number itself, widened exactly.
    assert state["layers.0.weight"] == [[float(v) for v in row] for row in linear.weight.tolist()]
    assert state["layers.0.weight"][0][0] != 0.1
    assert state["layers.0.bias"] == [0.0, 0.0]
    assert model.output_activation == "sigmoid"


def test_exported_network_is_a_copy(torch: ModuleType) -> None:
    model = nn.MLP(2, [1], seed=0)
    seq = nn.to_torch(model)
    before = seq[0].weight.tolist()
    model.parameters()[0].data += 1.0
    assert seq[0].weight.tolist() == before


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Dropout(0.5)), InvalidArgumentError,
         r"module 1 \(Dropout\) is not supported.*Linear"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.LeakyReLU()), InvalidArgumentError,
         r"module 1 \(LeakyReLU\) is not supported"),
        (lambda t: t.nn.Sequential(t.nn.Conv1d(1, 1, 3)), InvalidArgumentError, r"module 0 \(Conv1d\)"),
        (lambda t: t.nn.Sequential(t.nn.Tanh(), t.nn.Linear(2, 3)), InvalidArgumentError,
         r"module 0 \(Tanh\) must directly follow a Linear"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Tanh(), t.nn.Sigmoid()), InvalidArgumentError,
         r"module 2 \(Sigmoid\) must directly follow a Linear"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Linear(4, 1)), ShapeError,
         r"module 1 \(Linear\) takes 4 inputs but the layer before it gives 3"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Tanh(), t.nn.Linear(3, 3), t.nn.ReLU(), t.nn.Linear(3, 1)),
         InvalidArgumentError, r"hidden layers must share one activation, got \['tanh', 'relu'\]"),
        (lambda t: t.nn.Sequential(), InvalidArgumentError, "no Linear layer"),
        (lambda t: t.nn.Linear(2, 3), InvalidTypeError, "expected a torch.nn.Sequential, got Linear"),
    ],
)
def test_from_torch_rejects_what_an_mlp_cannot_express(torch: ModuleType, build, error, match) -> None:
    with pytest.raises(error, match=match):
        nn.from_torch(build(torch))


def test_from_torch_rejects_non_finite_weights(torch: ModuleType) -> None:
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight[0, 1] = float("nan")
    with pytest.raises(InvalidArgumentError, match="Linear layer 0 has NaN or infinite weights"):
        nn.from_torch(torch.nn.Sequential(linear))


def test_from_torch_rejects_a_linear_subclass_with_its_own_forward(torch: ModuleType) -> None:
    """Its weights would be copied, but not what it computes (here 2·(W·x + b))."""

    class DoubledLinear(torch.nn.Linear):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return 2 * super().forward(x)

    with pytest.raises(InvalidArgumentError, match=r"module 0 \(DoubledLinear\) is a Linear subclass with its own"):
        nn.from_torch(torch.nn.Sequential(DoubledLinear(2, 1)))


def test_from_torch_accepts_a_linear_subclass_that_keeps_linears_forward(torch: ModuleType) -> None:
    """torch's own NonDynamicallyQuantizableLinear only renames the class: y = W·x + b."""
    from torch.nn.modules.linear import NonDynamicallyQuantizableLinear

    linear = NonDynamicallyQuantizableLinear(2, 1, dtype=torch.float64)
    model = nn.from_torch(torch.nn.Sequential(linear))
    x = [0.25, -1.5]
    assert model(x).data == pytest.approx(linear(torch.tensor(x, dtype=torch.float64)).item(), rel=1e-15, abs=0.0)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_from_torch_rejects_complex_weights(torch: ModuleType, dtype: str) -> None:
    linear = torch.nn.Linear(2, 1, dtype=getattr(torch, dtype))
    with pytest.raises(InvalidTypeError, match=rf"module 0 \(Linear\) has a torch.{dtype} weight; an MLP holds real"):
        nn.from_torch(torch.nn.Sequential(linear))


def test_from_torch_rejects_a_lazy_linear_before_its_first_call(torch: ModuleType) -> None:
    with pytest.raises(InvalidArgumentError, match=r"module 0 \(LazyLinear\) has no weights yet"):
        nn.from_torch(torch.nn.Sequential(torch.nn.LazyLinear(1)))


def test_to_torch_rejects_what_is_not_an_mlp() -> None:
    with pytest.raises(InvalidTypeError, match="expected an nn.MLP, got Layer"):
        nn.to_torch(nn.Layer(2, 2, seed=0))  # type: ignore[arg-type]


def test_missing_torch_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"pip install torch"):
        nn.to_torch(nn.MLP(2, [1], seed=0))
    with pytest.raises(ImportError, match=r"CPU build"):
        nn.from_torch(object())  # type: ignore[arg-type]
