"""nn.module: Neuron, Layer and MLP compute y = φ(Σ w·x + b), expose labelled
parameters and plain state dicts, and save/load as JSON without ever half-loading.

Expected numbers come from the formula written out with `math` in each test, or
from the same network built in PyTorch (float64).
"""

from __future__ import annotations

import base64
import copy
import json
import math
import os
import pickle

import pytest
from conftest import entry

import nn
from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, ModelFileError, ShapeError


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


REFERENCE_ACTIVATIONS = {
    "sigmoid": sigmoid,
    "tanh": math.tanh,
    "relu": lambda z: max(z, 0.0),
    "linear": lambda z: z,
}


def test_every_activation_has_a_reference():
    assert set(nn.module.ACTIVATIONS) == set(REFERENCE_ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(REFERENCE_ACTIVATIONS))
@pytest.mark.parametrize("x", [[0.5, -1.0], [-2.0, 0.25]])
def test_neuron_computes_phi_of_weighted_sum_plus_bias(activation, x):
    neuron = nn.Neuron(2, activation=activation, seed=0)
    neuron.w[0].data, neuron.w[1].data, neuron.b.data = 0.7, -0.3, 0.1
    net = 0.7 * x[0] - 0.3 * x[1] + 0.1
    assert neuron(x).data == pytest.approx(REFERENCE_ACTIVATIONS[activation](net), abs=1e-15)


def test_pre_activation_is_one_sum_node_over_products_and_bias():
    neuron = nn.Neuron(3, activation="tanh", seed=0)
    y = neuron([1.0, 2.0, 3.0])
    assert y.op == "tanh"
    (net,) = y.parents
    assert net.op == "sum" and len(net.parents) == 4
    assert [p.op for p in net.parents[:3]] == ["mul"] * 3 and net.parents[3] is neuron.b


def test_linear_neuron_returns_the_sum_node_itself():
    assert nn.Neuron(2, activation="linear", seed=0)([1.0, 2.0]).op == "sum"


def test_inputs_may_be_values_and_receive_gradients():
    # y = σ(w1 x1 + w2 x2 + b): dy/dx_j = σ'(net)·w_j = y(1-y)·w_j
    neuron = nn.Neuron(2, seed=0)
    x = [Value(0.5), Value(-1.5)]
    y = neuron(x)
    y.backward()
    for xj, wj in zip(x, neuron.w):
        assert xj.grad == pytest.approx(y.data * (1 - y.data) * wj.data, abs=1e-15)


def test_parameter_labels_follow_the_convention():
    model = nn.MLP(2, [2, 1], seed=0)
    assert [p.label for p in model.parameters()] == [
        "L1.N0.w1", "L1.N0.w2", "L1.N0.b",
        "L1.N1.w1", "L1.N1.w2", "L1.N1.b",
        "L2.N0.w1", "L2.N0.w2", "L2.N0.b",
    ]  # fmt: skip


def test_model_returns_a_value_for_one_output_and_a_list_for_several():
    assert isinstance(nn.MLP(2, [3, 1], seed=0)([1.0, 2.0]), Value)
    outputs = nn.MLP(2, [3, 2], seed=0)([1.0, 2.0])
    assert isinstance(outputs, list) and len(outputs) == 2 and all(isinstance(o, Value) for o in outputs)


def test_output_activation_may_differ_from_the_hidden_one():
    model = nn.MLP(2, [3, 3, 1], activation="relu", output_activation="linear", seed=0)
    assert [layer.activation for layer in model.layers] == ["relu", "relu", "linear"]
    assert nn.MLP(2, [3, 1], activation="tanh", seed=0).layers[-1].activation == "tanh"


@pytest.mark.parametrize("model", [nn.MLP(2, [3, 1], seed=0), nn.Layer(2, 3, seed=0), nn.Neuron(2, seed=0)])
def test_wrong_input_length_is_a_shape_error_naming_expected_and_got(model):
    with pytest.raises(ShapeError, match="expected 2 inputs, got 3"):
        model([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        model([1.0])


@pytest.mark.parametrize("bad", ["ab", 3.0, [1.0, "x"], [1.0, float("nan")], [True, 1.0]])
def test_non_numeric_inputs_are_clear_errors(bad):
    with pytest.raises((InvalidTypeError, InvalidArgumentError), match="MLP"):
        nn.MLP(2, [1], seed=0)(bad)


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(InvalidArgumentError, match=r"'softmax'.*\['linear', 'relu', 'sigmoid', 'tanh'\]"):
        nn.MLP(2, [1], activation="softmax")
    with pytest.raises(InvalidArgumentError, match="'step'"):
        nn.MLP(2, [1], output_activation="step")


@pytest.mark.parametrize("nin, nouts", [(0, [1]), (2, []), (2, [0]), (2, [2.5]), (True, [1]), (2, 3)])
def test_bad_sizes_are_rejected(nin, nouts):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        nn.MLP(nin, nouts)


def test_repr_is_readable():
    model = nn.MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=0)
    assert repr(model) == (
        "MLP(nin=2, layers=[\n  Layer(L1: 2 -> 4, tanh),\n  Layer(L2: 4 -> 1, sigmoid),\n], parameters=17)"
    )
    assert repr(model.layers[1].neurons[0]) == "Neuron(L2.N0: 4 inputs, sigmoid)"


def test_zero_grad_resets_every_parameter_gradient():
    model = nn.MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_mlp_matches_the_same_network_in_torch(torch):
    model = nn.MLP(3, [4, 2], activation="tanh", output_activation="sigmoid", seed=3)
    state = model.state_dict()
    linears = [torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)]
    with torch.no_grad():
        for i, linear in enumerate(linears):
            linear.weight.copy_(torch.tensor(state[f"layers.{i}.weight"]))
            linear.bias.copy_(torch.tensor(state[f"layers.{i}.bias"]) + 0.1 * (i + 1))
    for i in range(2):
        state[f"layers.{i}.bias"] = [b + 0.1 * (i + 1) for b in state[f"layers.{i}.bias"]]
    model.load_state_dict(state)
    x = [0.3, -1.2, 2.0]
    outputs = model(x)
    (outputs[0] * 2 + outputs[1]).backward()
    reference = torch.sigmoid(linears[1](torch.tanh(linears[0](torch.tensor(x)))))
    (reference[0] * 2 + reference[1]).backward()
    assert [o.data for o in outputs] == pytest.approx(reference.tolist(), abs=1e-12)
    for i, linear in enumerate(linears):
        layer = model.layers[i]
        weight_grads = [w.grad for n in layer.neurons for w in n.w]
        assert weight_grads == pytest.approx(linear.weight.grad.flatten().tolist(), abs=1e-12)
        assert [n.b.grad for n in layer.neurons] == pytest.approx(linear.bias.grad.tolist(), abs=1e-12)


# -- state dicts ------------------------------------------------------------------
def test_state_dict_has_plain_nested_lists_nout_by_nin():
    model = nn.MLP(3, [2, 1], seed=0)
    state = model.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert [len(row) for row in state["layers.0.weight"]] == [3, 3]
    assert state["layers.0.weight"][1][2] == model.layers[0].neurons[1].w[2].data
    assert json.loads(json.dumps(state)) == state


def test_load_state_dict_sets_every_parameter_by_hand():
    model = nn.MLP(2, [2, 1], seed=0)
    model.load_state_dict(
        {
            "layers.0.weight": [[1, 2], [3, 4]],
            "layers.0.bias": [5, 6],
            "layers.1.weight": [[7, 8]],
            "layers.1.bias": [9],
        }
    )
    assert [p.data for p in model.parameters()] == [1, 2, 5, 3, 4, 6, 7, 8, 9]


def good_state():
    return {"layers.0.weight": [[1.0, 2.0]], "layers.0.bias": [3.0]}


BAD_STATES = {
    "not a dict": [1.0, 2.0],
    "missing key": {"layers.0.weight": [[1.0, 2.0]]},
    "unexpected key": {**good_state(), "layers.1.bias": [0.0]},
    "too many rows": {**good_state(), "layers.0.weight": [[1.0, 2.0], [3.0, 4.0]]},
    "short row": {**good_state(), "layers.0.weight": [[1.0]]},
    "row not a list": {**good_state(), "layers.0.weight": [1.0]},
    "string number": {**good_state(), "layers.0.bias": ["3.0"]},
    "none": {**good_state(), "layers.0.bias": [None]},
    "bool": {**good_state(), "layers.0.weight": [[True, 2.0]]},
    "nan": {**good_state(), "layers.0.weight": [[1.0, float("nan")]]},
    "inf": {**good_state(), "layers.0.bias": [float("inf")]},
    "huge int": {**good_state(), "layers.0.bias": [10**400]},
}


@pytest.mark.parametrize("state", BAD_STATES.values(), ids=list(BAD_STATES))
def test_bad_state_dict_is_an_error_and_leaves_the_model_unchanged(state):
    model = nn.MLP(2, [1], seed=0)
    before = model.state_dict()
    with pytest.raises(ModelFileError):
        model.load_state_dict(state)
    assert model.state_dict() == before


def test_error_names_missing_and_unexpected_keys():
    with pytest.raises(ModelFileError, match=r"missing keys \['layers.0.bias'\], unexpected keys \['x'\]"):
        nn.MLP(2, [1]).load_state_dict({"layers.0.weight": [[1.0, 2.0]], "x": 1})


# -- files --------------------------------------------------------------------------
def test_save_then_load_gives_the_same_model(tmp_path):
    model = nn.MLP(2, [3, 2], activation="relu", output_activation="linear", seed=4)
    path = tmp_path / "m.json"
    model.save(path)
    loaded = nn.MLP.load(path)
    assert loaded.config() == model.config()
    assert loaded.state_dict() == model.state_dict()
    assert [o.data for o in loaded([0.2, -0.7])] == [o.data for o in model([0.2, -0.7])]


def test_saved_file_is_json_with_config_and_state(tmp_path):
    path = tmp_path / "m.json"
    nn.MLP(2, [1], activation="tanh", seed=0).save(str(path))
    document = json.loads(path.read_text())
    assert document["config"] == {"nin": 2, "nouts": [1], "activation": "tanh", "output_activation": "tanh"}
    assert set(document["state"]) == {"layers.0.weight", "layers.0.bias"}


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    nn.MLP(2, [1], seed=0).save(path)
    before = path.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        nn.MLP(2, [1], seed=1).save(path)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["m.json"]


def saved_text(tmp_path):
    path = tmp_path / "good.json"
    nn.MLP(2, [2, 1], seed=0).save(path)
    return path.read_text()


def hostile_files(text):
    document = json.loads(text)

    def edited(**changes):
        return json.dumps({**document, **changes})

    state = document["state"]

    def bias_literal(literal):
        return edited(state={**state, "layers.1.bias": ["LITERAL"]}).replace('"LITERAL"', literal)

    return {
        "truncated": text[: len(text) // 2],
        "empty": "",
        "not json": "hello",
        "binary": "\x00\xff",
        "a list": "[1, 2]",
        "wrong format tag": edited(format="pickle"),
        "wrong version": edited(version=99),
        "wrong shape": edited(state={**state, "layers.0.weight": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]}),
        "non-number": edited(state={**state, "layers.1.bias": ["x"]}),
        "huge float": bias_literal("1e999"),
        "NaN literal": bias_literal("NaN"),
        "huge int": bias_literal("9" * 5000),
        "deep nesting": '{"format": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "config wrong type": edited(config={"nin": "2", "nouts": [2, 1], "activation": "sigmoid",
                                            "output_activation": "sigmoid"}),
        "config huge": edited(config={"nin": 10**6, "nouts": [10**6], "activation": "sigmoid",
                                      "output_activation": "sigmoid"}),
        "config bad activation": edited(config={"nin": 2, "nouts": [2, 1], "activation": "os.system",
                                                "output_activation": "sigmoid"}),
        "config missing": edited(config={"nin": 2}),
        "state missing": json.dumps({k: v for k, v in document.items() if k != "state"}),
    }  # fmt: skip


def test_every_hostile_file_case_differs_from_the_good_file(tmp_path):
    text = saved_text(tmp_path)
    assert all(bad != text for bad in hostile_files(text).values())


@pytest.mark.parametrize("case", list(hostile_files(json.dumps({"state": {}}, indent=1))))
def test_malformed_model_file_is_a_model_file_error(tmp_path, case):
    bad = hostile_files(saved_text(tmp_path))[case]
    path = tmp_path / "bad.json"
    path.write_bytes(bad.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelFileError, match="bad.json"):
        nn.MLP.load(path)


def test_missing_file_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read"):
        nn.MLP.load(tmp_path / "absent.json")


def test_oversized_file_is_refused_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text(" " * 1000)
    monkeypatch.setattr(nn.module, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelFileError, match="larger than"):
        nn.MLP.load(path)


def test_saved_file_gets_the_permissions_of_any_new_file(tmp_path):
    # mkstemp-style 0600 files would be unreadable to other users; the umask should decide.
    previous = os.umask(0o022)
    try:
        nn.MLP(2, [1], seed=0).save(tmp_path / "m.json")
    finally:
        os.umask(previous)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


# -- Neuron, Layer and MLP as nn.Module ------------------------------------------------
def tiny_mlp():
    """2 -> 2 (tanh) -> 1 (sigmoid) with hand-set weights: w[k][j] from input j to neuron k."""
    model = nn.MLP(2, [2, 1], activation="tanh", output_activation="sigmoid", seed=0)
    model.load_state_dict(
        {
            "layers.0.weight": [[0.5, -0.25], [1.0, 2.0]],
            "layers.0.bias": [0.125, -1.0],
            "layers.1.weight": [[0.75, -0.5]],
            "layers.1.bias": [0.0],
        }
    )
    return model


def tiny_mlp_output(x1, x2):
    # y = σ(0.75·tanh(0.5·x1 − 0.25·x2 + 0.125) − 0.5·tanh(x1 + 2·x2 − 1))
    return sigmoid(0.75 * math.tanh(0.5 * x1 - 0.25 * x2 + 0.125) - 0.5 * math.tanh(x1 + 2 * x2 - 1.0))


def test_neuron_layer_and_mlp_are_modules():
    assert all(isinstance(m, nn.Module) for m in (nn.Neuron(2), nn.Layer(2, 3), nn.MLP(2, [3, 1])))


def test_named_parameters_of_an_mlp_follow_parameters_and_name_their_state_dict_place():
    model = tiny_mlp()
    named = model.named_parameters()
    assert [name for name, _ in named] == [
        "layers.0.weight[0][0]", "layers.0.weight[0][1]", "layers.0.bias[0]",
        "layers.0.weight[1][0]", "layers.0.weight[1][1]", "layers.0.bias[1]",
        "layers.1.weight[0][0]", "layers.1.weight[0][1]", "layers.1.bias[0]",
    ]  # fmt: skip
    assert [v for _, v in named] == model.parameters()
    assert [v.label for _, v in named][3] == "L1.N1.w1"
    state = model.state_dict()
    assert all(entry(state, name) == v.data for name, v in named)


def test_a_neuron_and_a_layer_have_state_dicts_of_their_own():
    neuron = nn.Neuron(2, seed=0)
    neuron.w[0].data, neuron.w[1].data, neuron.b.data = 0.5, -1.5, 2.0
    assert neuron.state_dict() == {"weight": [0.5, -1.5], "bias": 2.0}
    assert [name for name, _ in neuron.named_parameters()] == ["weight[0]", "weight[1]", "bias"]
    layer = tiny_mlp().layers[0]
    assert layer.state_dict() == {"weight": [[0.5, -0.25], [1.0, 2.0]], "bias": [0.125, -1.0]}
    layer.load_state_dict({"weight": [[1.0, 2.0], [3.0, 4.0]], "bias": [5.0, 6.0]})
    assert [p.data for p in layer.parameters()] == [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]


def test_children_of_an_mlp_are_its_layers_and_a_layers_neurons_are_rows_not_children():
    model = tiny_mlp()
    assert model.children() == model.layers
    assert [name for name, _ in model.named_children()] == ["layers.0", "layers.1"]
    assert model.layers[0].children() == [] and model.layers[0].neurons[0].children() == []
    assert model.modules() == [model, *model.layers]


def test_an_mlp_inside_a_sequential_keeps_its_keys_under_the_sequentials_index():
    model = tiny_mlp()
    sequential = nn.Sequential(model, nn.Tanh())
    assert sequential.state_dict() == {f"0.{key}": value for key, value in model.state_dict().items()}
    assert [name for name, _ in sequential.named_parameters()][:3] == [
        "0.layers.0.weight[0][0]", "0.layers.0.weight[0][1]", "0.layers.0.bias[0]",
    ]  # fmt: skip
    # forward: tanh of the MLP's output
    assert sequential([0.5, -1.0]).data == pytest.approx(math.tanh(tiny_mlp_output(0.5, -1.0)), abs=1e-15)


def test_load_state_dict_through_a_sequential_sets_the_mlp_by_hand():
    model = tiny_mlp()
    sequential = nn.Sequential(model)
    state = sequential.state_dict()
    state["0.layers.0.weight"] = [[1.0, 2.0], [3.0, 4.0]]
    state["0.layers.1.bias"] = [7.0]
    sequential.load_state_dict(state)
    assert [p.data for p in model.parameters()] == [1.0, 2.0, 0.125, 3.0, 4.0, -1.0, 0.75, -0.5, 7.0]


@pytest.mark.parametrize("name", ["short row", "string number", "nan", "huge int"])
def test_a_bad_state_through_a_sequential_is_a_model_file_error_and_changes_nothing(name):
    sequential = nn.Sequential(nn.MLP(2, [1], seed=0))
    before = sequential.state_dict()
    with pytest.raises(ModelFileError, match=r"0\.layers\.0\."):
        sequential.load_state_dict({f"0.{key}": value for key, value in BAD_STATES[name].items()})
    assert sequential.state_dict() == before


def test_train_and_eval_reach_every_layer_and_neuron():
    model = tiny_mlp()
    sequential = nn.Sequential(model, nn.Dropout(0.5))
    neurons = [n for layer in model.layers for n in layer.neurons]
    assert sequential.eval() is sequential
    assert not any(m.training for m in sequential.modules()) and not any(n.training for n in neurons)
    model.layers[1].train()
    assert model.layers[1].training and model.layers[1].neurons[0].training and not model.layers[0].training
    sequential.train()
    assert all(m.training for m in sequential.modules()) and all(n.training for n in neurons)


def test_zero_grad_through_a_sequential_reaches_the_mlp():
    model = tiny_mlp()
    sequential = nn.Sequential(model)
    sequential([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    sequential.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_a_file_saved_before_modules_existed_still_loads(tmp_path):
    """The JSON of version 1, written out by hand: format, version, config, state."""
    path = tmp_path / "old.json"
    path.write_text(
        '{"format": "textbook-autograd.mlp", "version": 1,'
        ' "config": {"nin": 2, "nouts": [2, 1], "activation": "tanh", "output_activation": "sigmoid"},'
        ' "state": {"layers.0.weight": [[0.5, -0.25], [1.0, 2.0]], "layers.0.bias": [0.125, -1.0],'
        ' "layers.1.weight": [[0.75, -0.5]], "layers.1.bias": [0.0]}}'
    )
    model = nn.MLP.load(path)
    assert model([1.0, 2.0]).data == pytest.approx(tiny_mlp_output(1.0, 2.0), abs=1e-15)
    assert model.named_parameters()[-1][0] == "layers.1.bias[0]"


# pickle.dumps(tiny_mlp(), protocol=4) made by the MLP class before it was a Module (commit 0260e84).
OLD_PICKLE = (
    "gASVTAMAAAAAAACMCW5uLm1vZHVsZZSMA01MUJSTlCmBlH2UKIwKYWN0aXZhdGlvbpSMBHRhbmiUjBFvdXRwdXRfYWN0aXZhdGlvbpSM"
    "B3NpZ21vaWSUjAZsYXllcnOUXZQoaACMBUxheWVylJOUKYGUfZQojAVpbmRleJRLAWgFaAaMB25ldXJvbnOUXZQoaACMBk5ldXJvbpST"
    "lCmBlH2UKGgFaAaMBWxhYmVslIwFTDEuTjCUjAF3lF2UKIwOYXV0b2dyYWQudmFsdWWUjAVWYWx1ZZSTlCmBlE59lCiMBGRhdGGURz/g"
    "AAAAAAAAjARncmFklEcAAAAAAAAAAIwFX3J1bGWUTowFX2xlZnSUTowGX3JpZ2h0lE5oFowITDEuTjAudzGUdYaUYmgcKYGUTn2UKGgf"
    "R7/QAAAAAAAAaCBHAAAAAAAAAABoIU5oIk5oI05oFowITDEuTjAudzKUdYaUYmWMAWKUaBwpgZROfZQoaB9HP8AAAAAAAABoIEcAAAAA"
    "AAAAAGghTmgiTmgjTmgWjAdMMS5OMC5ilHWGlGJ1YmgTKYGUfZQoaAVoBmgWjAVMMS5OMZRoGF2UKGgcKYGUTn2UKGgfRz/wAAAAAAAA"
    "aCBHAAAAAAAAAABoIU5oIk5oI05oFowITDEuTjEudzGUdYaUYmgcKYGUTn2UKGgfR0AAAAAAAAAAaCBHAAAAAAAAAABoIU5oIk5oI05o"
    "FowITDEuTjEudzKUdYaUYmVoKmgcKYGUTn2UKGgfR7/wAAAAAAAAaCBHAAAAAAAAAABoIU5oIk5oI05oFowHTDEuTjEuYpR1hpRidWJl"
    "dWJoDCmBlH2UKGgPSwJoBWgIaBBdlGgTKYGUfZQoaAVoCGgWjAVMMi5OMJRoGF2UKGgcKYGUTn2UKGgfRz/oAAAAAAAAaCBHAAAAAAAA"
    "AABoIU5oIk5oI05oFowITDIuTjAudzGUdYaUYmgcKYGUTn2UKGgfR7/gAAAAAAAAaCBHAAAAAAAAAABoIU5oIk5oI05oFowITDIuTjAu"
    "dzKUdYaUYmVoKmgcKYGUTn2UKGgfRwAAAAAAAAAAaCBHAAAAAAAAAABoIU5oIk5oI05oFowHTDIuTjAuYpR1hpRidWJhdWJldWIu"
)


def test_a_model_pickled_before_modules_existed_unpickles_as_a_module():
    model = pickle.loads(base64.b64decode(OLD_PICKLE))
    assert isinstance(model, nn.Module) and model.training
    assert model.state_dict() == tiny_mlp().state_dict()
    assert model([1.0, 2.0]).data == pytest.approx(tiny_mlp_output(1.0, 2.0), abs=1e-15)
    model.eval()
    assert not model.layers[0].neurons[1].training
    assert copy.deepcopy(model).state_dict() == model.state_dict()
