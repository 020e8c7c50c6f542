"""Bad input across the public API: every kind gets one error of the `autograd.errors`
family, of exactly the expected class, with a message naming the problem.

The expected messages are what a user needs to read: the function, the offending
value or type, and the valid choices where there are some. Hostile model files
(huge numbers, deep nesting, wrong types, truncation) must give `ModelFileError`,
never a RecursionError or a bare traceback from deep inside `json`, and must not
change the model; a save that crashes must leave the previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import nn
from autograd import Value, detect_anomaly, grad, gradcheck, no_grad, sum_values
from autograd.draw import draw_graph
from autograd.errors import (
    AutogradError,
    DivisionByZeroError,
    DomainError,
    InvalidArgumentError,
    InvalidTypeError,
    ModelFileError,
    ModelFileNotFoundError,
    NonFiniteError,
    NumericOverflowError,
    ShapeError,
)

NAN, INF = float("nan"), float("inf")


def one_param() -> list[Value]:
    return [Value(1.0, label="w")]


def tiny_model() -> nn.MLP:
    return nn.MLP(2, [2, 1], seed=0)


XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [0.0, 1.0, 1.0, 0.0]


def trainer(**options: Any) -> nn.Trainer:
    model = tiny_model()
    return nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), **options)


def fit(X: Any, y: Any, epochs: int = 1, **options: Any) -> object:
    return trainer().fit(X, y, epochs=epochs, progress=False, **options)


# (id, call, exact error class, regex the message must match)
API_CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    # -- Value: types and non-finite numbers
    ("value-from-str", lambda: Value("3"), InvalidTypeError, r"Value: expected an int or float, got str '3'"),
    ("value-from-none", lambda: Value(None), InvalidTypeError, r"got NoneType None"),
    ("value-from-bool", lambda: Value(True), InvalidTypeError, r"got bool True"),
    ("value-from-list", lambda: Value([1.0]), InvalidTypeError, r"got list \[1\.0\]"),
    ("value-from-complex", lambda: Value(1j), InvalidTypeError, r"got complex 1j"),
    ("value-from-nan", lambda: Value(NAN), InvalidArgumentError, r"Value: expected a finite number, got nan"),
    ("value-from-inf", lambda: Value(-INF), InvalidArgumentError, r"expected a finite number, got -inf"),
    ("value-from-huge-int", lambda: Value(10**400), NumericOverflowError, r"Value: int too large for a float"),
    ("value-label-not-str", lambda: Value(1.0, label=3), InvalidTypeError, r"label must be a str, got int"),
    ("value-label-none", lambda: Value(1.0, label=None), InvalidTypeError, r"label must be a str, got NoneType"),
    ("set-label-not-str", lambda: setattr(Value(1.0) * 2, "label", b"y"), InvalidTypeError,
     r"label must be a str, got bytes"),
    # -- arithmetic with things that are not numbers, or not finite
    ("add-str", lambda: Value(1.0) + "a", InvalidTypeError, r"add: cannot combine a Value with str 'a'"),
    ("radd-none", lambda: None + Value(1.0), InvalidTypeError, r"add: cannot combine a Value with NoneType"),
    ("mul-nan", lambda: Value(1.0) * NAN, InvalidArgumentError, r"expected a finite number, got nan"),
    ("sub-inf", lambda: Value(1.0) - INF, InvalidArgumentError, r"expected a finite number, got inf"),
    ("pow-str-exponent", lambda: Value(2.0) ** "2", InvalidTypeError, r"pow \(exponent\): expected an int or float"),
    ("pow-nan-exponent", lambda: Value(2.0) ** NAN, InvalidArgumentError, r"pow \(exponent\).*got nan"),
    ("compare-with-str", lambda: Value(1.0) < "a", InvalidTypeError, r"<: cannot combine a Value with str"),
    ("leaky-relu-str-slope", lambda: Value(1.0).leaky_relu("a"), InvalidTypeError, r"leaky_relu \(slope\)"),
    # -- math domains
    ("log-zero", lambda: Value(0.0).log(), DomainError, r"log\(0\.0\): log is defined for x > 0"),
    ("sqrt-negative", lambda: Value(-1.0).sqrt(), DomainError, r"sqrt\(-1\.0\): sqrt is defined for x >= 0"),
    ("divide-by-zero", lambda: Value(1.0) / 0, DivisionByZeroError, r"div\(1\.0, 0\.0\): the divisor must not be zero"),
    ("zero-to-negative-power", lambda: Value(0.0) ** -1, DivisionByZeroError, r"pow-1\(0\.0\)"),
    ("negative-base-fractional-power", lambda: Value(-8.0) ** 0.5, DomainError, r"pow0\.5\(-8\.0\)"),
    ("negative-base-value-exponent", lambda: (-2) ** Value(0.5), DomainError, r"base must be positive"),
    ("exp-overflow", lambda: Value(1000.0).exp(), NumericOverflowError, r"exp\(1000\.0\): result too large"),
    ("sqrt-derivative-at-zero", lambda: Value(0.0).sqrt().backward(), DivisionByZeroError,
     r"backward through sqrt\(0\.0\)"),
    # -- gradients
    ("backward-seed-str", lambda: Value(1.0).backward("x"), InvalidTypeError, r"backward\(gradient\)"),
    ("backward-seed-nan", lambda: Value(1.0).backward(NAN), InvalidArgumentError, r"backward\(gradient\).*nan"),
    ("grad-output-float", lambda: grad(1.0, []), InvalidTypeError, r"grad: output must be a Value, got float"),
    ("grad-inputs-floats", lambda: grad(Value(1.0), [1.0]), InvalidTypeError, r"grad: inputs\[0\] must be a Value"),
    ("grad-inputs-one-value", lambda: grad(Value(1.0), Value(1.0)), InvalidTypeError,
     r"grad: inputs must be a list of Values, got Value"),
    ("gradcheck-fn-not-callable", lambda: gradcheck(3, [1.0]), InvalidTypeError, r"fn must be callable, got int"),
    ("gradcheck-input-str", lambda: gradcheck(lambda a: a, ["x"]), InvalidTypeError, r"gradcheck: inputs\[0\]"),
    ("gradcheck-input-nan", lambda: gradcheck(lambda a: a, [NAN]), InvalidArgumentError, r"inputs\[0\].*nan"),
    ("gradcheck-eps-zero", lambda: gradcheck(lambda a: a, [1.0], eps=0), InvalidArgumentError, r"eps must be positive"),
    ("gradcheck-returns-float", lambda: gradcheck(lambda a: 1.0, [1.0]), InvalidTypeError,
     r"fn must return a Value, got float"),
    ("sum-values-empty", lambda: sum_values([]), InvalidArgumentError, r"sum_values: needs at least one value"),
    ("sum-values-str-item", lambda: sum_values([Value(1.0), "a"]), InvalidTypeError, r"sum: cannot combine"),
    ("sum-values-not-iterable", lambda: sum_values(3), InvalidTypeError, r"sum_values: expected an iterable.*int"),
    ("non-finite-under-anomaly", lambda: _under_anomaly(lambda: Value(1e308, label="x") * 10), NonFiniteError,
     r"mul\(x=1e\+308, const=10\.0\) = inf"),
    # -- models: sizes, names, inputs
    ("mlp-nin-str", lambda: nn.MLP("2", [1]), InvalidTypeError, r"MLP \(nin\): expected an int, got str '2'"),
    ("mlp-nin-negative", lambda: nn.MLP(-1, [1]), InvalidArgumentError, r"MLP \(nin\): expected at least 1, got -1"),
    ("mlp-layer-size-zero", lambda: nn.MLP(2, [3, 0]), InvalidArgumentError,
     r"MLP \(nouts\[1\]\): expected at least 1"),
    ("mlp-no-layers", lambda: nn.MLP(2, []), InvalidTypeError, r"non-empty list of layer sizes"),
    ("unknown-activation", lambda: nn.MLP(2, [1], activation="softmax"), InvalidArgumentError,
     r"unknown 'softmax'; choose one of \['linear', 'relu', 'sigmoid', 'tanh'\]"),
    ("unknown-output-activation", lambda: nn.MLP(2, [1], output_activation="gelu"), InvalidArgumentError,
     r"unknown 'gelu'"),
    ("unknown-initializer", lambda: nn.MLP(2, [1], init="glorot"), InvalidArgumentError,
     r"unknown initializer 'glorot'; choose one of"),
    ("seed-str", lambda: nn.MLP(2, [1], seed="0"), InvalidTypeError, r"seed: expected an int.*got str '0'"),
    ("uniform-init-reversed", lambda: nn.init.uniform(1, -1), InvalidArgumentError,
     r"needs a <= b, got a=1\.0, b=-1\.0"),
    ("model-input-too-short", lambda: tiny_model()([1.0]), ShapeError, r"MLP: expected 2 inputs, got 1"),
    ("model-input-too-long", lambda: tiny_model()([1.0, 2.0, 3.0]), ShapeError, r"expected 2 inputs, got 3"),
    ("model-input-nan", lambda: tiny_model()([1.0, NAN]), InvalidArgumentError, r"MLP \(input 1\).*got nan"),
    ("model-input-inf", lambda: tiny_model()([INF, 1.0]), InvalidArgumentError, r"MLP \(input 0\).*got inf"),
    ("model-input-scalar", lambda: nn.MLP(1, [1], seed=0)(1.0), InvalidTypeError, r"expected a sequence of 1"),
    ("model-input-dict", lambda: tiny_model()({0: 1.0, 1: 2.0}), InvalidTypeError, r"got dict"),
    ("model-input-nested", lambda: tiny_model()([[1.0], [2.0]]), InvalidTypeError, r"MLP \(input 0\).*got list"),
    ("model-input-str", lambda: tiny_model()("ab"), InvalidTypeError, r"got str"),
    # -- losses: mismatched targets, wrong ranges
    ("loss-mismatched-targets", lambda: nn.losses.mse([Value(1.0), Value(2.0)], [1.0]), ShapeError,
     r"mse: 2 predictions but 1 targets"),
    ("loss-empty", lambda: nn.losses.mse([], []), ShapeError, r"mse: needs at least one prediction"),
    ("loss-target-str", lambda: nn.losses.sse_half([Value(1.0)], ["a"]), InvalidTypeError,
     r"sse_half \(targets\)\[0\]"),
    ("loss-target-nan", lambda: nn.losses.mse([Value(1.0)], [NAN]), InvalidArgumentError, r"targets\)\[0\].*nan"),
    ("bce-target-outside-0-1", lambda: nn.losses.binary_cross_entropy([Value(0.5)], [2.0]), InvalidArgumentError,
     r"targets must be in \[0, 1\], got 2\.0"),
    ("hinge-target-not-sign", lambda: nn.losses.hinge([Value(0.5)], [0.0]), InvalidArgumentError,
     r"targets must be -1 or \+1, got 0\.0"),
    # -- optimizers: learning rates and hyper-parameters
    ("sgd-negative-lr", lambda: nn.optim.SGD(one_param(), lr=-0.1), InvalidArgumentError,
     r"SGD: lr must be > 0, got -0\.1"),
    ("sgd-zero-lr", lambda: nn.optim.SGD(one_param(), lr=0), InvalidArgumentError, r"lr must be > 0, got 0\.0"),
    ("sgd-nan-lr", lambda: nn.optim.SGD(one_param(), lr=NAN), InvalidArgumentError, r"SGD \(lr\).*nan"),
    ("sgd-str-lr", lambda: nn.optim.SGD(one_param(), lr="0.1"), InvalidTypeError, r"SGD \(lr\).*got str"),
    ("sgd-momentum-one", lambda: nn.optim.SGD(one_param(), lr=0.1, momentum=1.0), InvalidArgumentError,
     r"momentum must be in \[0, 1\), got 1\.0"),
    ("sgd-nesterov-without-momentum", lambda: nn.optim.SGD(one_param(), lr=0.1, nesterov=True), InvalidArgumentError,
     r"nesterov=True needs a momentum > 0"),
    ("sgd-negative-weight-decay", lambda: nn.optim.SGD(one_param(), lr=0.1, weight_decay=-1), InvalidArgumentError,
     r"weight_decay must be >= 0"),
    ("optimizer-no-params", lambda: nn.optim.Adam([]), InvalidArgumentError, r"Adam: got an empty parameter list"),
    ("optimizer-float-params", lambda: nn.optim.SGD([1.0], lr=0.1), InvalidTypeError, r"params\[0\] is a float"),
    ("optimizer-interior-node", lambda: nn.optim.SGD([Value(1.0) * 2], lr=0.1), InvalidArgumentError,
     r"params\[0\] must be a leaf Value"),
    ("optimizer-repeated-param", lambda: nn.optim.SGD(one_param() * 2, lr=0.1), InvalidArgumentError,
     r"params\[1\] \(w\) appears twice"),
    ("adam-one-beta", lambda: nn.optim.Adam(one_param(), betas=(0.9,)), InvalidTypeError, r"betas must be a pair"),
    ("rprop-eta-plus-below-one", lambda: nn.optim.Rprop(one_param(), eta_plus=0.5), InvalidArgumentError,
     r"eta_plus must be > 1, got 0\.5"),
    ("optimizer-state-of-another", lambda: nn.optim.SGD(one_param(), lr=0.1).load_state_dict(
        nn.optim.Adam(one_param()).state_dict()), ModelFileError, r"SGD state dict: it was saved by 'Adam'"),
    ("state-dict-not-a-dict", lambda: tiny_model().load_state_dict(None), ModelFileError,
     r"expected a dict, got NoneType"),
    ("save-path-not-a-path", lambda: tiny_model().save(3), InvalidTypeError, r"MLP.save: path must be a str"),
    ("load-path-none", lambda: nn.MLP.load(None), InvalidTypeError, r"MLP.load: path must be a str"),
    ("load-missing-file", lambda: nn.MLP.load("/nonexistent/model.json"), ModelFileNotFoundError,
     r"/nonexistent/model.json: cannot read: No such file"),
    ("load-a-directory", lambda: nn.MLP.load(Path(__file__).parent), ModelFileError, r"cannot read"),
    # -- training: data sets, batch sizes, modes, epochs
    ("trainer-without-optimizer", lambda: nn.Trainer(tiny_model(), None), InvalidTypeError,
     r"optimizer must be an nn.optim optimizer, got NoneType"),
    ("trainer-loss-by-name", lambda: trainer(loss="mse"), InvalidTypeError, r"loss must be a function.*got 'mse'"),
    ("trainer-unknown-mode", lambda: trainer(mode="stochastic"), InvalidArgumentError,
     r"mode must be one of \['online', 'batch', 'minibatch'\], got 'stochastic'"),
    ("zero-batch-size", lambda: trainer(batch_size=0), InvalidArgumentError, r"batch_size must be >= 1, got 0"),
    ("fractional-batch-size", lambda: trainer(batch_size=2.5), InvalidTypeError, r"batch_size must be an int, got"),
    ("empty-dataset", lambda: fit([], []), InvalidArgumentError, r"fit: the data set is empty"),
    ("mismatched-targets", lambda: fit(XOR_X, [0.0, 1.0]), ShapeError, r"fit: 4 samples in X but 2 targets in y"),
    ("sample-of-wrong-width", lambda: fit([[1.0]], [1.0]), ShapeError, r"X\[0\] has 1 inputs, the model expects 2"),
    ("target-of-wrong-width", lambda: fit(XOR_X, [[1.0, 0.0]] * 4), ShapeError, r"y\[0\] has 2 values, the model has"),
    ("nan-target", lambda: fit(XOR_X, [NAN, 1.0, 1.0, 0.0]), InvalidArgumentError, r"fit: y\[0\].*got nan"),
    ("inf-in-dataset", lambda: fit([[INF, 0.0]], [1.0]), InvalidArgumentError, r"fit: X\[0\]\[0\].*got inf"),
    ("zero-epochs", lambda: fit(XOR_X, XOR_Y, epochs=0), InvalidArgumentError, r"epochs must be an int >= 1, got 0"),
    ("validation-of-wrong-width", lambda: fit(XOR_X, XOR_Y, validation=([[1.0]], [1.0])), ShapeError,
     r"fit \(validation\): X\[0\] has 1 inputs"),
    ("callback-not-a-callback", lambda: fit(XOR_X, XOR_Y, callbacks=[print]), InvalidTypeError,
     r"callbacks must be nn.trainer.Callback objects"),
    ("predict-empty", lambda: trainer().predict([]), InvalidArgumentError, r"predict: the data set is empty"),
    ("early-stopping-patience-zero", lambda: nn.trainer.EarlyStopping(patience=0), InvalidArgumentError,
     r"patience must be an int >= 1, got 0"),
    ("dataset-too-small", lambda: nn.data.spiral(1), InvalidArgumentError, r"spiral: n must be at least 2"),
    ("dataset-noise-nan", lambda: nn.data.circles(10, noise=NAN), InvalidArgumentError, r"circles \(noise\).*nan"),
    ("split-mismatched", lambda: nn.data.train_test_split([[1.0]] * 3, [0.0] * 2), ShapeError,
     r"train_test_split: 3 inputs but 2 targets"),
    # -- drawing
    ("draw-not-a-value", lambda: draw_graph(1.0), InvalidTypeError, r"draw_graph: root must be a Value, got float"),
    ("draw-max-nodes-zero", lambda: draw_graph(Value(1.0), max_nodes=0), InvalidArgumentError,
     r"max_nodes must be an int >= 1, got 0"),
    ("draw-unknown-direction", lambda: draw_graph(Value(1.0), rankdir="XY"), InvalidArgumentError,
     r"rankdir must be 'LR' or 'TB', got 'XY'"),
    ("draw-too-many-nodes", lambda: draw_graph(sum_values([Value(float(i)) for i in range(600)])), InvalidArgumentError,
     r"more than 500 nodes"),
    ("draw-network-too-many-weights", lambda: nn.draw_network(nn.MLP(2, [100, 100, 1], seed=0)), InvalidArgumentError,
     r"10300 weights, more than max_edges=2000"),
    # -- interop
    ("to-torch-not-a-model", lambda: nn.to_torch("model"), InvalidTypeError, r"expected an nn.MLP, got str"),
]


def _under_anomaly(compute: Callable[[], object]) -> object:
    with detect_anomaly():
        return compute()


@pytest.mark.parametrize("call, error, match", [pytest.param(*case[1:], id=case[0]) for case in API_CASES])
def test_bad_input_raises_one_clear_error_of_the_family(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(AutogradError, match=match) as info:
        call()
    assert type(info.value) is error


def test_there_are_at_least_forty_kinds_of_bad_input() -> None:
    assert len({case[0] for case in API_CASES}) == len(API_CASES) >= 40


def test_a_failed_operation_leaves_no_half_recorded_state() -> None:
    """After errors, recording works as before and no_grad/anomaly switches are untouched."""
    x = Value(2.0, label="x")
    for bad in (lambda: x / 0, lambda: (x - 3).log(), lambda: x * "a"):
        with pytest.raises(AutogradError):
            bad()
    with pytest.raises(DomainError), no_grad():
        (-x).sqrt()
    y = x * x
    y.backward()
    assert y.parents == (x, x) and x.grad == 4.0


def test_numbers_of_other_real_types_are_accepted_not_rejected() -> None:
    """Fractions are real numbers: accepted (converted to float), unlike str or complex."""
    assert Value(Fraction(1, 4)).data == 0.25
    assert (Value(1.0) * Fraction(1, 2)).data == 0.5


# -- hostile and corrupt model files ----------------------------------------------------


def good_document() -> dict[str, Any]:
    model = tiny_model()
    return {"format": "textbook-autograd.mlp", "version": 1, "config": model.config(), "state": model.state_dict()}


def edited(edit: Callable[[dict[str, Any]], object]) -> str:
    document = good_document()
    edit(document)
    return json.dumps(document)


def with_raw_bias(raw: str) -> str:
    """A valid file whose first bias is the literal JSON text ``raw`` (which json.dumps cannot write)."""
    document = good_document()
    document["state"]["layers.0.bias"][0] = "RAW"
    return json.dumps(document).replace('"RAW"', raw)


DEEP = 100_000

# (id, file content, regex the ModelFileError message must match)
FILE_CASES: list[tuple[str, str | bytes, str]] = [
    ("truncated", json.dumps(good_document())[:150], r"not valid JSON \(truncated or corrupt\?\)"),
    ("empty", "", r"not valid JSON"),
    ("not-utf8", b"\xff\xfe\x00garbage", r"not UTF-8 text"),
    ("nul-bytes", b"\x00" * 64, r"not valid JSON"),
    ("top-level-list", "[1, 2]", r"not a saved MLP"),
    ("top-level-null", "null", r"not a saved MLP"),
    ("wrong-format", edited(lambda d: d.update(format="pickle")), r"not a saved MLP"),
    ("missing-format", edited(lambda d: d.pop("format")), r"not a saved MLP"),
    ("future-version", edited(lambda d: d.update(version=99)), r"unsupported version 99, expected 1"),
    ("version-as-str", edited(lambda d: d.update(version="1")), r"unsupported version '1'"),
    ("missing-config", edited(lambda d: d.pop("config")), r'"config" must hold nin, nouts'),
    ("config-as-list", edited(lambda d: d.update(config=[2, [2, 1]])), r'"config" must hold'),
    ("missing-state", edited(lambda d: d.pop("state")), r"state dict: expected a dict, got NoneType"),
    ("state-as-list", edited(lambda d: d.update(state=[])), r"expected a dict, got list"),
    ("missing-key", edited(lambda d: d["state"].pop("layers.1.bias")), r"missing keys \['layers.1.bias'\]"),
    ("unexpected-key", edited(lambda d: d["state"].update({"layers.2.bias": [0.0]})),
     r"unexpected keys \['layers.2.bias'\]"),
    ("nouts-as-str", edited(lambda d: d["config"].update(nouts="2,1")), r"bad config: nouts"),
    ("negative-layer-size", edited(lambda d: d["config"].update(nouts=[-2, 1])), r"expected at least 1, got -2"),
    ("float-layer-size", edited(lambda d: d["config"].update(nouts=[2.0, 1])), r"expected an int, got float"),
    ("bool-nin", edited(lambda d: d["config"].update(nin=True)), r"nin: expected an int, got bool"),
    ("unknown-activation", edited(lambda d: d["config"].update(activation="swish")), r"unknown 'swish'"),
    ("activation-as-int", edited(lambda d: d["config"].update(activation=3)), r"activation: unknown 3"),
    ("huge-layers", edited(lambda d: d["config"].update(nouts=[10**6, 10**6])), r"exceed 5000000 parameters"),
    ("twenty-thousand-layers", edited(lambda d: d["config"].update(nouts=[1] * 20_000)),
     r"missing keys \[.*\] and \d+ more"),
    ("weight-as-str", edited(lambda d: d["state"]["layers.0.weight"][0].__setitem__(0, "0.5")),
     r"layers.0.weight\[0\]\[0\]: expected a number, got str '0.5'"),
    ("weight-as-bool", edited(lambda d: d["state"]["layers.0.weight"][0].__setitem__(0, True)), r"got bool True"),
    ("weight-as-null", edited(lambda d: d["state"]["layers.0.weight"][1].__setitem__(1, None)),
     r"layers.0.weight\[1\]\[1\]: expected a number, got NoneType"),
    ("row-too-long", edited(lambda d: d["state"]["layers.0.weight"][0].append(0.1)),
     r"layers.0.weight\[0\]: expected 2 entries, got 3"),
    ("too-few-rows", edited(lambda d: d["state"]["layers.0.weight"].pop()), r"layers.0.weight: expected 2 rows, got 1"),
    ("bias-as-dict", edited(lambda d: d["state"].update({"layers.1.bias": {"0": 1.0}})), r"expected a list of 1"),
    ("number-1e999", with_raw_bias("1e999"), r"layers.0.bias\[0\]: expected a finite number, got inf"),
    ("number-minus-1e999", with_raw_bias("-1e999"), r"expected a finite number, got -inf"),
    ("integer-10-to-the-400", with_raw_bias("1" + "0" * 400), r"layers.0.bias\[0\]: number too large for a float"),
    ("integer-with-5000-digits", with_raw_bias("9" * 5000), r"digits"),
    ("NaN-literal", with_raw_bias("NaN"), r"NaN is not a number allowed in a model file"),
    ("Infinity-literal", with_raw_bias("Infinity"), r"Infinity is not a number allowed"),
    ("deeply-nested-lists", "[" * DEEP + "]" * DEEP, r"JSON nested too deeply"),
    ("deeply-nested-objects", '{"a":' * DEEP + "1" + "}" * DEEP, r"JSON nested too deeply"),
    ("deep-nesting-inside-a-weight", with_raw_bias("[" * DEEP + "]" * DEEP), r"JSON nested too deeply"),
]


@pytest.mark.parametrize("content, match", [pytest.param(*case[1:], id=case[0]) for case in FILE_CASES])
def test_hostile_model_file_is_a_model_file_error(tmp_path: Path, content: str | bytes, match: str) -> None:
    path = tmp_path / "model.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError, match=match) as info:
        nn.MLP.load(path)
    assert type(info.value) is ModelFileError
    assert len(str(info.value)) < 2000  # readable, even when the file names 20,000 layers
    assert info.value.__cause__ is None  # no chained traceback from deep inside json


def test_file_cases_are_really_different_files() -> None:
    contents = [case[1] for case in FILE_CASES]
    assert len(set(contents)) == len(contents)
    assert json.dumps(good_document()) not in contents


def test_loading_a_bad_state_leaves_the_model_unchanged() -> None:
    """The first layer is valid and would be written first; the error in the last one must
    still leave every parameter as it was (everything is checked before anything is set)."""
    model = nn.MLP(2, [2, 1], seed=5)
    before = model.state_dict()
    document = good_document()
    document["state"]["layers.0.weight"] = [[9.0, 9.0], [9.0, 9.0]]
    document["state"]["layers.1.bias"] = [INF]
    with pytest.raises(ModelFileError, match=r"layers.1.bias\[0\]: expected a finite number, got inf"):
        model.load_state_dict(document["state"])
    assert model.state_dict() == before


BAD_STATE_FILES = {
    "missing-state", "state-as-list", "missing-key", "unexpected-key", "weight-as-str", "weight-as-bool",
    "weight-as-null", "row-too-long", "too-few-rows", "bias-as-dict", "number-1e999", "number-minus-1e999",
    "integer-10-to-the-400", "NaN-literal", "Infinity-literal",
}


@pytest.mark.parametrize(
    "content", [pytest.param(case[1], id=case[0]) for case in FILE_CASES if case[0] in BAD_STATE_FILES]
)
def test_the_state_of_a_hostile_file_leaves_the_model_unchanged(content: str) -> None:
    """Loading the state of each such file into a model (seeded differently from the file's
    weights, so any write would show) fails and leaves its weights and outputs as they were."""
    model = nn.MLP(2, [2, 1], seed=5)
    before = model.state_dict()
    output = model([0.3, -0.2]).data
    with pytest.raises(ModelFileError):
        model.load_state_dict(json.loads(content).get("state"))
    assert model.state_dict() == before
    assert model([0.3, -0.2]).data == output


def test_every_bad_state_file_is_a_case() -> None:
    assert BAD_STATE_FILES <= {case[0] for case in FILE_CASES}


# -- saving never leaves a half-written file --------------------------------------------


def _crash(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device (simulated)")


@pytest.mark.parametrize(
    "module, name",
    [
        pytest.param(json, "dumps", id="crash-while-serialising"),
        pytest.param(os, "fsync", id="crash-after-writing-before-sync"),
        pytest.param(os, "replace", id="crash-at-the-rename"),
    ],
)
def test_a_crash_during_save_keeps_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: object, name: str
) -> None:
    path = tmp_path / "model.json"
    old = nn.MLP(2, [2, 1], seed=1)
    old.save(path)
    old_bytes = path.read_bytes()
    monkeypatch.setattr(module, name, _crash)
    with pytest.raises(OSError, match="simulated"):
        nn.MLP(2, [2, 1], seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]  # no temporary left behind
    assert nn.MLP.load(path).state_dict() == old.state_dict()


def test_an_interrupt_during_save_keeps_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of writing (KeyboardInterrupt is not an Exception)."""
    path = tmp_path / "model.json"
    nn.MLP(2, [1], seed=1).save(path)
    old_bytes = path.read_bytes()

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        nn.MLP(2, [1], seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_saving_into_a_missing_directory_names_the_model_file(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "model.json"
    with pytest.raises(FileNotFoundError, match=r"model.json: cannot write the model file"):
        tiny_model().save(target)


def test_saved_numbers_are_finite_and_the_file_is_plain_json(tmp_path: Path) -> None:
    """Nothing non-standard (NaN, Infinity) can be written, so any JSON reader can read it."""
    path = tmp_path / "model.json"
    tiny_model().save(path)
    document = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in file"))
    numbers = [x for row in document["state"]["layers.0.weight"] for x in row]
    assert all(math.isfinite(x) for x in numbers)


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, message",
    [
        pytest.param(["--optimizer", "lbfgs"], r"--optimizer: invalid choice: 'lbfgs'", id="unknown-optimizer"),
        pytest.param(["--activation", "gelu"], r"--activation: invalid choice: 'gelu'", id="unknown-activation"),
        pytest.param(["--dataset", "mnist"], r"argument --dataset: invalid choice: 'mnist'", id="unknown-dataset"),
        pytest.param(["--lr", "-0.1"], r"argument --lr: must be a number > 0, got -0.1", id="negative-lr"),
        pytest.param(["--lr", "nan"], r"argument --lr: must be a number > 0, got nan", id="nan-lr"),
        pytest.param(["--batch-size", "0"], r"argument --batch-size: must be an integer >= 1, got 0", id="zero-batch"),
        pytest.param(["--epochs", "0"], r"argument --epochs: must be an integer >= 1, got 0", id="zero-epochs"),
        pytest.param(["--hidden", "2", "x"], r"argument --hidden", id="layer-size-not-a-number"),
    ],
)
def test_bad_command_line_arguments_are_argparse_errors(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from nn.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", *arguments, "--no-progress"])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_diverging_command_line_run_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nn.cli import main

    code = main(["train", "--lr", "1e30", "--activation", "linear", "--output-activation", "linear",
                 "--epochs", "50", "--no-progress", "--out", str(tmp_path)])
    assert code == 1
    error = capsys.readouterr().err
    assert re.search(r"python -m nn: error: training diverged at epoch \d+.*smaller learning rate", error)


def test_labels_full_of_dot_and_html_syntax_are_drawn_verbatim(dot_program: str) -> None:
    """A label is data, not markup: quotes, braces, bars, angle brackets and newlines
    must neither break Graphviz's parser nor inject nodes."""
    import subprocess

    pytest.importorskip("graphviz", reason="drawing needs the graphviz package (extra `viz`)")

    from autograd.draw import draw_graph

    hostile = 'a"b<c>{d}|e\\ &amp; ]; digraph { x [label="pwn'
    x = Value(1.0, label=hostile)
    y = (x * 2).tanh()
    y.label = "</TD></TR></TABLE>>]; z [label=\"pwn\n"
    y.backward()
    source = draw_graph(y).source
    result = subprocess.run([dot_program, "-Tplain"], input=source.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    node_lines = [line for line in result.stdout.decode().splitlines() if line.startswith("node ")]
    assert len(node_lines) == 6  # x, 2, x·2, its op, tanh and its op: nothing injected
