"""`nn.to_torch` / `nn.from_torch`: the same network in PyTorch float64, same outputs
and same gradients to 1e-12, state-dict keys one to one, and clear errors for
what an MLP cannot express. PyTorch's own forward and backward are the reference.
"""

from __future__ import annotations

import random
import sys
from types import ModuleType

import pytest
from conftest import entry

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


# -- nn.Sequential <-> torch.nn.Sequential, module for module ----------------------------
def sequential_model() -> nn.Sequential:
    """Every kind of module a Sequential converts, a Linear without bias among them."""
    return nn.Sequential(
        nn.Linear(3, 4, init="he_normal", seed=1), nn.Tanh(),
        nn.Linear(4, 4, bias=False, seed=2), nn.ReLU(),
        nn.Linear(4, 3, seed=3), nn.Sigmoid(),
        nn.Linear(3, 2, seed=4), nn.Identity(),
    )  # fmt: skip


def set_biases(model: nn.Sequential) -> None:
    """Non-zero biases (a fresh Linear's are 0), so a lost bias would show."""
    biases = [v for name, v in model.named_parameters() if ".bias" in name]
    for k, v in enumerate(biases):
        v.data = 0.1 * (k + 1) * (-1) ** k


def test_sequential_same_outputs_and_gradients_as_the_exported_network(torch: ModuleType) -> None:
    """L = Σ_k out_k² over several random inputs: every parameter and input gradient
    agrees with torch's backward on the exported Sequential (same key, same place)."""
    model = sequential_model()
    set_biases(model)
    seq = nn.to_torch(model)
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear", "ReLU", "Linear", "Sigmoid", "Linear",
                                               "Identity"]  # fmt: skip
    assert seq[2].bias is None and all(p.dtype == torch.float64 for p in seq.parameters())
    for x in random_inputs(3, 4, seed=5):
        model.zero_grad()
        inputs = [Value(xi) for xi in x]
        outputs = model(inputs)
        sum_values([o * o for o in outputs]).backward()

        seq.zero_grad()
        tensor_x = torch.tensor(x, requires_grad=True)
        tensor_out = seq(tensor_x)
        (tensor_out**2).sum().backward()

        assert [o.data for o in outputs] == pytest.approx(tensor_out.tolist(), rel=1e-12, abs=1e-12)
        assert [v.grad for v in inputs] == pytest.approx(tensor_x.grad.tolist(), rel=1e-12, abs=1e-12)
        torch_grads = {key: p.grad for key, p in seq.named_parameters()}
        for name, v in model.named_parameters():
            assert v.grad == pytest.approx(entry(torch_grads, name).item(), rel=1e-12, abs=1e-12), name


def test_sequential_state_dict_keys_are_torchs_keys_with_identical_numbers(torch: ModuleType) -> None:
    model = sequential_model()
    set_biases(model)
    theirs = nn.to_torch(model).state_dict()
    ours = model.state_dict()
    assert list(ours) == list(theirs) == ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias", "6.weight",
                                          "6.bias"]  # fmt: skip
    assert all(theirs[key].tolist() == value for key, value in ours.items())  # exact: float64 both sides


def test_sequential_round_trip_ours_torch_ours_is_exact(torch: ModuleType) -> None:
    model = sequential_model()
    set_biases(model)
    back = nn.from_torch(nn.to_torch(model), into=nn.Sequential)
    assert isinstance(back, nn.Sequential)
    assert [type(m) for m in back] == [type(m) for m in model]
    assert back.state_dict() == model.state_dict()
    assert back[2].bias is None  # type: ignore[attr-defined]


def test_sequential_round_trip_torch_ours_torch_is_exact(torch: ModuleType) -> None:
    torch.manual_seed(0)
    # What an MLP could not hold: an activation first, two in a row, two Linears in a row, no bias.
    seq = torch.nn.Sequential(
        torch.nn.Tanh(), torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Sigmoid(),
        torch.nn.Linear(8, 3, bias=False), torch.nn.Linear(3, 2),
    )  # fmt: skip
    model = nn.from_torch(seq, into=nn.Sequential)
    assert [type(m).__name__ for m in model] == ["Tanh", "Linear", "ReLU", "Sigmoid", "Linear", "Linear"]
    again = nn.to_torch(model)
    assert {key: value.tolist() for key, value in again.state_dict().items()} == {
        key: value.tolist() for key, value in seq.state_dict().items()
    }
    x = torch.tensor(random_inputs(4, 5, seed=2))
    assert torch.equal(again(x), seq(x))


def test_from_torch_into_a_sequential_reads_float32_weights_exactly(torch: ModuleType) -> None:
    linear = torch.nn.Linear(2, 2, dtype=torch.float32)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.1, -0.2], [0.3, 0.4]], dtype=torch.float32))
        linear.bias.copy_(torch.tensor([0.5, -0.7], dtype=torch.float32))
    model = nn.from_torch(torch.nn.Sequential(linear), into=nn.Sequential)
    # float32 0.1 is 0.100000001490116...: the float32 number itself, widened exactly.
    assert model.state_dict() == {
        "0.weight": [[float(v) for v in row] for row in linear.weight.tolist()],
        "0.bias": [float(v) for v in linear.bias.tolist()],
    }
    assert model.state_dict()["0.weight"][0][0] != 0.1


def test_from_torch_still_gives_an_mlp_by_default(torch: ModuleType) -> None:
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    assert isinstance(nn.from_torch(seq), nn.MLP) and isinstance(nn.from_torch(seq, into=nn.MLP), nn.MLP)


def test_an_exported_sequential_is_a_copy(torch: ModuleType) -> None:
    model = nn.Sequential(nn.Linear(2, 1, seed=0))
    seq = nn.to_torch(model)
    before = seq[0].weight.tolist()
    model.parameters()[0].data += 1.0
    assert seq[0].weight.tolist() == before


@pytest.mark.parametrize(
    "model, match",
    [
        (nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)), r"module 1 \(Dropout\) is not supported"),
        (nn.Sequential(nn.Sequential(nn.Linear(2, 2))), r"module 0 \(Sequential\) is not supported"),
        (nn.Sequential(nn.BatchNorm1d(2)), r"module 0 \(BatchNorm1d\) is not supported.*Linear, Sigmoid"),
        (nn.Sequential(nn.MLP(2, [1])), r"module 0 \(MLP\) is not supported"),
    ],
)
def test_to_torch_rejects_a_sequential_holding_other_modules(torch: ModuleType, model, match) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        nn.to_torch(model)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Dropout(0.5)), InvalidArgumentError,
         r"module 1 \(Dropout\) is not supported"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Sequential(t.nn.Tanh())), InvalidArgumentError,
         r"module 1 \(Sequential\) is not supported"),
        (lambda t: t.nn.Sequential(t.nn.Linear(2, 3), t.nn.Tanh(), t.nn.Linear(4, 1)), ShapeError,
         r"module 2 \(Linear\) takes 4 inputs but the Linear before it gives 3"),
    ],
)  # fmt: skip
def test_from_torch_into_a_sequential_rejects_what_it_cannot_express(torch: ModuleType, build, error, match) -> None:
    with pytest.raises(error, match=match):
        nn.from_torch(build(torch), into=nn.Sequential)


def test_from_torch_into_a_sequential_rejects_non_finite_weights(torch: ModuleType) -> None:
    linear = torch.nn.Linear(2, 1)
    with torch.no_grad():
        linear.bias[0] = float("inf")
    with pytest.raises(InvalidArgumentError, match=r"module 1 \(Linear\) has NaN or infinite weights"):
        nn.from_torch(torch.nn.Sequential(torch.nn.ReLU(), linear), into=nn.Sequential)


def test_from_torch_into_something_else_is_refused(torch: ModuleType) -> None:
    with pytest.raises(InvalidArgumentError, match="into must be nn.MLP or nn.Sequential"):
        nn.from_torch(torch.nn.Sequential(), into=nn.Linear)  # type: ignore[call-overload]
