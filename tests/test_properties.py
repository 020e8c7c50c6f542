"""Property tests beyond the engine basics (which check gradcheck on random graphs):

- random expression graphs agree with the same graph built in PyTorch float64,
  values and gradients, to ~1e-10 relative;
- any model survives save/load: state dict identical, file bytes identical on re-save;
- optimizers fed random gradients follow the same trajectory as `torch.optim`.

PyTorch is the independent reference throughout (the `torch` fixture).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import autograd
import nn
from autograd import Value, sum_values
from autograd.errors import ModelFileError
from nn.interop import torch_key

# Property tests that take the `torch` fixture: the fixture is session-scoped, so
# reusing it across generated examples is safe.
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Namespace:
    """The few functions that are spelled differently on Values and on torch tensors."""

    softplus: Callable[[Any], Any]
    leaky_relu: Callable[[Any, float], Any]
    total: Callable[[list[Any]], Any]
    atan2: Callable[[Any, Any], Any]
    hypot: Callable[[Any, Any], Any]
    maximum: Callable[[Any, Any], Any]
    minimum: Callable[[Any, Any], Any]


ENGINE = Namespace(
    softplus=lambda x: x.softplus(),
    leaky_relu=lambda x, s: x.leaky_relu(s),
    total=sum_values,
    atan2=autograd.atan2,
    hypot=autograd.hypot,
    maximum=autograd.maximum,
    minimum=autograd.minimum,
)


def torch_namespace(torch: ModuleType) -> Namespace:
    functional = torch.nn.functional
    return Namespace(
        softplus=functional.softplus,
        leaky_relu=lambda x, s: functional.leaky_relu(x, s),
        total=lambda xs: torch.stack(xs).sum(),
        atan2=torch.atan2,
        hypot=torch.hypot,
        maximum=torch.maximum,
        minimum=torch.minimum,
    )


# Each step makes a node from two earlier nodes a, b (any earlier node, so nodes
# are shared). Domain-limited ops read `positive` = a² + 0.5 > 0, and exponents are
# squashed by tanh, so every graph stays inside every domain without overflow.
def _positive(a: Any) -> Any:
    return a * a + 0.5


STEPS: dict[str, Callable[[Any, Any, Namespace], Any]] = {
    "add": lambda a, b, ns: a + b,
    "sub": lambda a, b, ns: a - b,
    "mul": lambda a, b, ns: a.tanh() * b,
    "div": lambda a, b, ns: a / (b * b + 0.5),
    "pow": lambda a, b, ns: _positive(a) ** b.tanh(),
    "rpow": lambda a, b, ns: 1.7 ** a.tanh(),
    "pow_number": lambda a, b, ns: a.tanh() ** 3,
    "pow_negative": lambda a, b, ns: _positive(a) ** -1.5,
    "rsub": lambda a, b, ns: 2.0 - a,
    "rdiv": lambda a, b, ns: 1.0 / _positive(a),
    "neg": lambda a, b, ns: -a,
    "abs": lambda a, b, ns: abs(a),
    "exp": lambda a, b, ns: a.tanh().exp(),
    "log": lambda a, b, ns: _positive(a).log(),
    "sqrt": lambda a, b, ns: _positive(a).sqrt(),
    "tanh": lambda a, b, ns: a.tanh(),
    "sigmoid": lambda a, b, ns: a.sigmoid(),
    "relu": lambda a, b, ns: a.relu(),
    "leaky_relu": lambda a, b, ns: ns.leaky_relu(a, 0.1),
    "softplus": lambda a, b, ns: ns.softplus(a),
    "sin": lambda a, b, ns: a.sin(),
    "cos": lambda a, b, ns: a.cos(),
    "sum": lambda a, b, ns: ns.total([a, b, a]),
    "tan": lambda a, b, ns: a.tanh().tan(),
    "sinh": lambda a, b, ns: a.tanh().sinh(),
    "cosh": lambda a, b, ns: a.tanh().cosh(),
    "asin": lambda a, b, ns: (0.9 * a.tanh()).asin(),
    "acos": lambda a, b, ns: (0.9 * a.tanh()).acos(),
    "atan": lambda a, b, ns: a.atan(),
    "log1p": lambda a, b, ns: _positive(a).log1p(),
    "expm1": lambda a, b, ns: a.tanh().expm1(),
    "log2": lambda a, b, ns: _positive(a).log2(),
    "log10": lambda a, b, ns: _positive(a).log10(),
    "atan2": lambda a, b, ns: ns.atan2(a, _positive(b)),
    "hypot": lambda a, b, ns: ns.hypot(a, _positive(b)),
    "maximum": lambda a, b, ns: ns.maximum(a, b),
    "minimum": lambda a, b, ns: ns.minimum(a, b),
    "clamp": lambda a, b, ns: a.clamp(-0.5, 0.5),
}
KINKED = {"abs", "relu", "leaky_relu"}

program_steps = st.lists(
    st.tuples(st.sampled_from(sorted(STEPS)), st.integers(0, 10_000), st.integers(0, 10_000)),
    min_size=1,
    max_size=15,
)


def build(program: list[tuple[str, int, int]], leaves: list[Any], ns: Namespace, kinks: list[float] | None) -> Any:
    """Run ``program`` on ``leaves``; the output sums the last three nodes so early ones matter."""
    nodes = list(leaves)
    for name, i, j in program:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if name in KINKED and kinks is not None:
            kinks.append(float(a))
        if name in ("maximum", "minimum") and kinks is not None and a is not b:
            kinks.append(float(a) - float(b))  # a tie of two different nodes
        if name == "clamp" and kinks is not None:
            kinks.append(abs(float(a)) - 0.5)
        nodes.append(STEPS[name](a, b, ns))
    return ns.total(nodes[-3:]) if len(nodes) > 1 else nodes[0] * 1.0


def close(ours: float, reference: float, rel: float = 1e-10, abs_tol: float = 1e-12) -> bool:
    return abs(ours - reference) <= abs_tol + rel * abs(reference)


@PROPERTY_SETTINGS
@given(point=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4), program=program_steps)
def test_random_graphs_match_pytorch_values_and_gradients(
    torch: ModuleType, point: list[float], program: list[tuple[str, int, int]]
) -> None:
    kinks: list[float] = []
    leaves = [Value(x, label=f"x{i}") for i, x in enumerate(point)]
    output = build(program, leaves, ENGINE, kinks)
    # Near a kink the two libraries may round to different sides of it.
    assume(all(abs(k) > 1e-9 for k in kinks))
    output.backward()

    tensors = [torch.tensor(x, requires_grad=True) for x in point]
    reference = build(program, tensors, torch_namespace(torch), None)
    reference.backward()

    assert close(output.data, reference.item()), (output.data, reference.item())
    for leaf, tensor in zip(leaves, tensors):
        expected = 0.0 if tensor.grad is None else tensor.grad.item()
        assert close(leaf.grad, expected), (leaf.label, leaf.grad, expected)


def test_every_op_of_the_table_appears_in_the_random_graphs() -> None:
    """A new rule in autograd.ops must get a step here (parametric families: pow_number, leaky_relu)."""
    from autograd import ops

    rules = {rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)} | {"clamp"}
    assert rules <= set(STEPS), rules - set(STEPS)


# -- save/load round trips ----------------------------------------------------------

finite_weights = st.floats(allow_nan=False, allow_infinity=False)  # includes ±0.0, subnormals, ±1.8e308


@st.composite
def models_with_any_weights(draw: st.DrawFn, weights: st.SearchStrategy[float] = finite_weights) -> nn.MLP:
    nin = draw(st.integers(1, 4))
    nouts = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    activations = st.sampled_from(["sigmoid", "tanh", "relu", "linear"])
    model = nn.MLP(nin, nouts, activation=draw(activations), output_activation=draw(activations), seed=0)
    state = {
        key: [draw(st.lists(weights, min_size=len(row), max_size=len(row))) for row in value]
        if key.endswith("weight")
        else draw(st.lists(weights, min_size=len(value), max_size=len(value)))
        for key, value in model.state_dict().items()
    }
    model.load_state_dict(state)
    return model


def bit_patterns(state: dict[str, Any]) -> str:
    """The state with every float spelled by repr (so -0.0 differs from 0.0): bitwise identity."""
    return json.dumps(state, sort_keys=True)


@settings(max_examples=40, deadline=None)
@given(model=models_with_any_weights())
def test_any_model_survives_save_and_load_bit_for_bit(model: nn.MLP) -> None:
    with tempfile.TemporaryDirectory() as directory:
        first, second = Path(directory, "a.json"), Path(directory, "b.json")
        model.save(first)
        loaded = nn.MLP.load(first)
        assert loaded.config() == model.config()
        assert bit_patterns(loaded.state_dict()) == bit_patterns(model.state_dict())
        loaded.save(second)
        assert second.read_bytes() == first.read_bytes()


# -- optimizers against torch.optim ---------------------------------------------------

gradient = st.one_of(st.just(0.0), st.floats(1e-4, 5.0), st.floats(-5.0, -1e-4))


@st.composite
def optimizer_cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[float], list[list[float]]]:
    """(name, our hyper-parameters, initial weights, gradients for each step)."""
    name = draw(st.sampled_from(["sgd", "rprop", "adam"]))
    if name == "sgd":
        momentum = draw(st.one_of(st.just(0.0), st.floats(0.01, 0.99)))
        config = {
            "lr": draw(st.floats(1e-3, 1.0)),
            "momentum": momentum,
            "nesterov": momentum > 0 and draw(st.booleans()),
            "weight_decay": draw(st.one_of(st.just(0.0), st.floats(1e-4, 0.1))),
        }
    elif name == "rprop":
        step_init = draw(st.floats(1e-3, 1.0))
        config = {
            "eta_minus": draw(st.floats(0.1, 0.9)),
            "eta_plus": draw(st.floats(1.01, 2.0)),
            "step_init": step_init,
            "step_min": draw(st.floats(0.0, 1e-3)),
            "step_max": draw(st.floats(step_init, 50.0)),
        }
    else:
        config = {
            "lr": draw(st.floats(1e-4, 0.1)),
            "betas": (draw(st.floats(0.0, 0.99)), draw(st.floats(0.9, 0.9999))),
            "eps": draw(st.floats(1e-10, 1e-6)),
        }
    n = draw(st.integers(1, 4))
    weights = draw(st.lists(st.floats(-3.0, 3.0), min_size=n, max_size=n))
    steps = draw(st.lists(st.lists(gradient, min_size=n, max_size=n), min_size=1, max_size=8))
    return name, config, weights, steps


def torch_optimizer(torch: ModuleType, name: str, config: dict[str, Any], params: list[Any]) -> Any:
    """The same optimizer in torch.optim, with torch's names for our hyper-parameters."""
    if name == "sgd":
        return torch.optim.SGD(params, **config)
    if name == "rprop":
        return torch.optim.Rprop(
            params,
            lr=config["step_init"],
            etas=(config["eta_minus"], config["eta_plus"]),
            step_sizes=(config["step_min"], config["step_max"]),
        )
    return torch.optim.Adam(params, **config)


@PROPERTY_SETTINGS
@given(case=optimizer_cases())
def test_optimizers_follow_the_torch_optim_trajectory(
    torch: ModuleType, case: tuple[str, dict[str, Any], list[float], list[list[float]]]
) -> None:
    name, config, weights, steps = case
    ours = [Value(w) for w in weights]
    optimizer = nn.optim.OPTIMIZERS[name](ours, **config)
    theirs = [torch.tensor(w, requires_grad=True) for w in weights]
    reference = torch_optimizer(torch, name, config, theirs)
    for t, grads in enumerate(steps):
        for p, tensor, g in zip(ours, theirs, grads):
            p.grad = g
            tensor.grad = torch.tensor(g)
        optimizer.step()
        reference.step()
        for p, tensor in zip(ours, theirs):
            assert close(p.data, tensor.item(), rel=1e-10, abs_tol=1e-10), (name, t, p.data, tensor.item())


@settings(max_examples=30, deadline=None)
@given(case=optimizer_cases(), split=st.integers(0, 8))
def test_optimizer_resumed_from_its_json_state_continues_the_same_trajectory(
    case: tuple[str, dict[str, Any], list[float], list[list[float]]], split: int
) -> None:
    """Stop after `split` steps, save the state dict as JSON, resume in a new optimizer:
    the weights end exactly where an uninterrupted run ends."""
    name, config, weights, steps = case
    split = min(split, len(steps))
    make = nn.optim.OPTIMIZERS[name]

    def run(params: list[Value], optimizer: Any, grads_per_step: list[list[float]]) -> None:
        for grads in grads_per_step:
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()

    straight = [Value(w) for w in weights]
    run(straight, make(straight, **config), steps)

    interrupted = [Value(w) for w in weights]
    first = make(interrupted, **config)
    run(interrupted, first, steps[:split])
    saved = json.loads(json.dumps(first.state_dict()))
    resumed = make(interrupted, **config)
    resumed.load_state_dict(saved)
    run(interrupted, resumed, steps[split:])
    assert [p.data for p in interrupted] == [p.data for p in straight]


# -- the export to PyTorch -------------------------------------------------------------


@PROPERTY_SETTINGS
@given(model=models_with_any_weights())
def test_any_model_goes_to_torch_and_comes_back_bit_for_bit(torch: ModuleType, model: nn.MLP) -> None:
    assert bit_patterns(nn.from_torch(nn.to_torch(model)).state_dict()) == bit_patterns(model.state_dict())


@PROPERTY_SETTINGS
@given(
    model=models_with_any_weights(st.floats(-3.0, 3.0)),
    x=st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4),
)
def test_any_exported_model_computes_the_same_outputs_and_gradients(
    torch: ModuleType, model: nn.MLP, x: list[float]
) -> None:
    """Random architecture, activations, weights and input: outputs, input gradients and
    parameter gradients of L = Σ_k out_k² agree with torch to 1e-12."""
    seq = nn.to_torch(model)
    inputs = [Value(xi) for xi in x[: model.nin]]
    out = model(inputs)
    outputs = out if isinstance(out, list) else [out]
    sum_values([o * o for o in outputs]).backward()
    tensor_x = torch.tensor(x[: model.nin], requires_grad=True)
    tensor_out = seq(tensor_x)
    (tensor_out**2).sum().backward()
    pairs = list(zip([o.data for o in outputs], tensor_out.tolist()))
    pairs += list(zip([v.grad for v in inputs], tensor_x.grad.tolist()))
    torch_grads = {name: p.grad for name, p in seq.named_parameters()}
    for i, layer in enumerate(model.layers):
        weight_grads = torch_grads[torch_key(f"layers.{i}.weight")].tolist()
        bias_grads = torch_grads[torch_key(f"layers.{i}.bias")].tolist()
        for k, neuron in enumerate(layer.neurons):
            pairs += list(zip([w.grad for w in neuron.w], weight_grads[k]))
            pairs.append((neuron.b.grad, bias_grads[k]))
    assert all(close(a, b, rel=1e-12, abs_tol=1e-12) for a, b in pairs), pairs


# -- fuzzing the model loader ----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def good_model_document() -> dict[str, Any]:
    model = nn.MLP(2, [3, 1], seed=0)
    return {"format": "textbook-autograd.mlp", "version": 1, "config": model.config(), "state": model.state_dict()}


def paths_in(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (dict keys and list indices), the root included."""
    found = [prefix]
    children: Any = []
    if isinstance(document, dict):
        children = document.items()
    elif isinstance(document, list):
        children = enumerate(document)
    for key, child in children:
        found += paths_in(child, (*prefix, key))
    return found


def as_floats(numbers: Any) -> Any:
    """Nested lists (and dicts) of numbers with every number as a float, as a model holds them."""
    if isinstance(numbers, dict):
        return {key: as_floats(value) for key, value in numbers.items()}
    if isinstance(numbers, list):
        return [as_floats(x) for x in numbers]
    return float(numbers)


def parsed(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:  # not JSON, or not UTF-8
        return None


def load_outcome(content: bytes) -> str:
    """Load ``content`` as a model file: "ok", or "refused" for a ModelFileError. Anything
    else (a bare exception from deep inside) propagates and fails the test.

    What loads is exactly what the file says (config, and every number bit for bit);
    loading never writes the file; and the file's state fed to a live model's
    `load_state_dict` loads all of it or, refused, nothing (`state_loads_all_or_nothing`).
    """
    document = parsed(content)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "model.json")
        path.write_bytes(content)
        try:
            model = nn.MLP.load(path)
        except ModelFileError:
            outcome = "refused"
        else:
            outcome = "ok"
            assert model.config() == document["config"]
            assert bit_patterns(model.state_dict()) == bit_patterns(as_floats(document["state"]))
        assert path.read_bytes() == content
    state_loads_all_or_nothing(document.get("state") if isinstance(document, dict) else document)
    return outcome


def state_loads_all_or_nothing(state: Any) -> None:
    """`load_state_dict` into a live model of the good document's architecture (other weights):
    accepted, the model holds exactly ``state``; refused, the model is unchanged."""
    model = nn.MLP(2, [3, 1], seed=1)
    before = bit_patterns(model.state_dict())
    try:
        model.load_state_dict(state)
    except ModelFileError:
        assert bit_patterns(model.state_dict()) == before, "a refused state dict changed the model"
        return
    assert bit_patterns(model.state_dict()) == bit_patterns(as_floats(state))


@settings(max_examples=50, deadline=None)
@given(document=json_values)
def test_any_json_document_is_refused_with_model_file_error(document: Any) -> None:
    assert load_outcome(json.dumps(document).encode()) == "refused"


@settings(max_examples=50, deadline=None)
@given(data=st.data(), replacement=json_values)
def test_a_good_file_with_any_part_replaced_loads_or_is_refused_cleanly(data: st.DataObject, replacement: Any) -> None:
    document = good_model_document()
    path = data.draw(st.sampled_from(paths_in(document)[1:]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = replacement
    load_outcome(json.dumps(document).encode())


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_good_file_with_bytes_cut_or_inserted_loads_or_is_refused_cleanly(data: st.DataObject) -> None:
    content = json.dumps(good_model_document()).encode()
    start = data.draw(st.integers(0, len(content)))
    end = data.draw(st.integers(start, min(len(content), start + 20)))
    inserted = data.draw(st.binary(max_size=8))
    load_outcome(content[:start] + inserted + content[end:])


@settings(max_examples=50, deadline=None)
@given(data=st.data(), replacement=json_values, name=st.sampled_from(["sgd", "rprop", "adam"]))
def test_an_optimizer_state_with_any_part_replaced_loads_or_is_refused_cleanly(
    data: st.DataObject, replacement: Any, name: str
) -> None:
    """Resuming from a corrupt optimizer state: ModelFileError, and the optimizer unchanged."""
    params = [Value(0.5), Value(-1.0)]
    optimizer = nn.optim.OPTIMIZERS[name](params, **({"lr": 0.1} if name == "sgd" else {}))
    for p in params:
        p.grad = 0.3
    optimizer.step()
    state = json.loads(json.dumps(optimizer.state_dict()))
    before = json.dumps(optimizer.state_dict())
    path = data.draw(st.sampled_from(paths_in(state)))
    if path:
        parent = state
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = replacement
    else:
        state = replacement
    try:
        optimizer.load_state_dict(state)
    except ModelFileError:
        assert json.dumps(optimizer.state_dict()) == before
