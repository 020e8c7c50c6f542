"""`autograd.trace`: a graph recorded once and replayed over a batch with numpy must
give what eager mode gives sample by sample — outputs, and parameter gradients
summed over the batch (∂E/∂w = Σ_p ∂E_p/∂w) — for every rule of the op table.

The reference is the eager engine itself (checked against PyTorch and finite
differences in test_ops.py), run one sample at a time.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest
from conftest import require_module
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from op_cases import CASES, OpCase
from test_engine_properties import build
from test_engine_properties import step as program_step

import nn
from autograd import Trace, Value, grad, no_grad, ops, sum_values, trace
from autograd.backward import topological_order
from autograd.errors import (
    DivisionByZeroError,
    DomainError,
    InvalidArgumentError,
    InvalidTypeError,
    NumericOverflowError,
    ShapeError,
    TraceError,
)

np = require_module("numpy", extra="fast")


def scaled_case(case: OpCase, weights: list[Value]) -> Callable[[list[Value]], Value]:
    """f(x) = op(w_1·x_1, ..., w_k·x_k) · w_out: gradients reach every weight through the op."""
    *w_in, w_out = weights
    return lambda x: case.engine(*[w * xi for w, xi in zip(w_in, x)]) * w_out


def batch_for(case: OpCase) -> list[list[float]]:
    """The case's points (both sides of every kink) and a shrunk copy: still in the op's domain."""
    return [list(p) for p in case.points] + [[0.9 * x for x in p] for p in case.points]


def eager_per_sample(
    fn: Callable[[list[Value]], Value], weights: list[Value], batch: list[list[float]]
) -> tuple[list[float], list[float]]:
    """Outputs sample by sample, and the weights' gradients accumulated over the batch."""
    for w in weights:
        w.zero_grad()
    outputs = []
    for sample in batch:
        out = fn([Value(x) for x in sample])
        out.backward()
        outputs.append(out.data)
    return outputs, [w.grad for w in weights]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_traced_outputs_and_gradients_match_eager(case: OpCase) -> None:
    arity = len(case.points[0])
    weights = [Value(1.0, label=f"w{i}") for i in range(arity)] + [Value(1.5, label="w_out")]
    fn = scaled_case(case, weights)
    batch = batch_for(case)
    expected_out, expected_grads = eager_per_sample(fn, weights, batch)

    for w in weights:
        w.zero_grad()
    step = trace(fn, example=batch[0])
    out = step.forward(np.array(batch))
    step.backward()

    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([w.grad for w in weights], expected_grads, rtol=1e-12, atol=1e-12)


def test_every_rule_of_the_table_is_replayed() -> None:
    """The cases above cover the whole table (the traced graphs contain every rule,
    in a group or in a chain of single nodes)."""
    seen: set[str] = set()
    for case in CASES:
        weights = [Value(1.0) for _ in case.points[0]] + [Value(1.0)]
        step = trace(scaled_case(case, weights), example=list(case.points[0]))
        seen |= {group.rule.name for group in step.groups}
        seen |= {rule.name for chain in step.chains for rule in chain.rules}
    table = {rule.name for rule in (*ops.BINARY_RULES, *ops.UNARY_RULES, ops.SUM)}
    assert table <= seen
    assert ops.power(3.0).name in seen and ops.leaky_relu(0.2).name in seen


def test_batch_gradients_are_summed_into_grad_and_accumulate() -> None:
    """y_p = w·x_p + b with dout_p: ∂/∂w = Σ dout_p·x_p, ∂/∂b = Σ dout_p (by hand: 1·1 + 2·3 = 7, 3)."""
    w, b = Value(2.0), Value(0.5)
    step = trace(lambda x: w * x[0] + b, example=[0.0])
    out = step.forward([[1.0], [3.0]])
    assert out.tolist() == [2.5, 6.5]
    step.backward(np.array([1.0, 2.0]))
    assert (w.grad, b.grad) == (7.0, 3.0)
    step.backward(np.array([1.0, 2.0]))  # leaves accumulate, as in eager mode
    assert (w.grad, b.grad) == (14.0, 6.0)


def test_parameters_are_re_read_on_every_replay() -> None:
    w = Value(2.0)
    step = trace(lambda x: w * x[0], example=[1.0])
    assert step.forward([[3.0]]).tolist() == [6.0]
    w.data = -1.0
    assert step.forward([[3.0]]).tolist() == [-3.0]
    assert step.parameters == [w]


def test_constants_are_frozen_and_inputs_are_not_parameters() -> None:
    w = Value(1.0)
    step = trace(lambda x, t: (w * x[0] - t) ** 2 + 0.5, [0.0], 0.0)
    assert step.parameters == [w]
    # (1·2 - 1)² + 0.5 and (1·3 - 5)² + 0.5
    assert step.forward([[2.0], [3.0]], [1.0, 5.0]).tolist() == [1.5, 4.5]
    step.backward()
    assert w.grad == 2 * (2.0 - 1.0) * 2.0 + 2 * (3.0 - 5.0) * 3.0


def test_list_outputs_give_a_samples_by_outputs_array() -> None:
    w = Value(3.0)
    step = trace(lambda x: [w * x[0], w + x[1], x[0]], example=[0.0, 0.0])
    out = step.forward([[1.0, 2.0], [4.0, 5.0]])
    assert out.tolist() == [[3.0, 5.0, 1.0], [12.0, 8.0, 4.0]]
    step.backward(np.array([[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]]))
    assert w.grad == 1.0 * 1.0 + 2.0 * 4.0 + 10.0 + 20.0


def test_deep_and_narrow_graphs_replay_like_eager() -> None:
    """Two chains 300 deep side by side (levels of two nodes of one rule, replayed as a
    chain), mixing rules and reading the same weights at every step, then joined."""
    a, b = Value(0.9, label="a"), Value(0.3, label="b")

    def narrow(x: list[Value]) -> Value:
        u, v = x[0], x[1]
        for i in range(300):
            u, v = (u * a + b).tanh(), (v * a - b * x[0]).sin()
            if i % 3 == 0:
                u, v = u + v * 0.5, v / (1.5 + u * u)
        return u * v + u

    batch = [[0.5, -1.0], [1.5, 0.25], [-0.7, 0.1], [2.0, -2.0]]
    expected_out, expected_grads = eager_per_sample(narrow, [a, b], batch)
    for w in (a, b):
        w.zero_grad()
    step = trace(narrow, example=batch[0])
    assert sum(len(chain.rules) for chain in step.chains) > 1000  # nearly every node
    np.testing.assert_allclose(step.forward(batch), expected_out, rtol=1e-12, atol=1e-12)
    step.backward()
    np.testing.assert_allclose([a.grad, b.grad], expected_grads, rtol=1e-12, atol=1e-12)


def test_a_traced_mlp_matches_the_eager_mlp() -> None:
    model = nn.MLP(2, [4, 3, 2], activation="tanh", output_activation="sigmoid", seed=3)
    X = [[0.5, -1.0], [1.5, 0.25], [-0.7, 0.1]]
    for p in model.parameters():
        p.zero_grad()
    eager = []
    for x in X:
        out = model(x)
        sum_values(out).backward()  # type: ignore[arg-type]
        eager.append([o.data for o in out])  # type: ignore[union-attr]
    expected = [p.grad for p in model.parameters()]
    for p in model.parameters():
        p.zero_grad()
    step = trace(model, example=[0.0, 0.0])
    np.testing.assert_allclose(step.forward(X), eager, rtol=1e-12, atol=1e-12)
    step.backward()
    np.testing.assert_allclose([p.grad for p in model.parameters()], expected, rtol=1e-12, atol=1e-12)


# -- what tracing cannot follow is reported -------------------------------------------


@pytest.mark.parametrize(
    "branch",
    [
        lambda x: x[0] if x[0] > 0 else -x[0],
        lambda x: x[0] if x[0] >= 0 else -x[0],
        lambda x: x[0] if x[0] < 1 else -x[0],
        lambda x: x[0] if x[0] <= 1 else -x[0],
        lambda x: x[0] * math.exp(float(x[0])),
        lambda x: max(x[0], x[1]),
    ],
    ids=[">", ">=", "<", "<=", "float", "max"],
)
def test_reading_a_value_while_tracing_raises_trace_error(branch: object) -> None:
    with pytest.raises(TraceError, match="while tracing"):
        trace(branch, example=[1.0, 2.0])  # type: ignore[arg-type]
    # The switch is off again: comparisons work after the failed trace.
    assert Value(1.0) < Value(2.0) and float(Value(3.0)) == 3.0


def test_no_grad_inside_a_traced_function_raises_trace_error() -> None:
    def cut(x: list[Value]) -> Value:
        with no_grad():
            return x[0] * 2

    with pytest.raises(TraceError, match="no_grad"):
        trace(cut, example=[1.0])


def test_tracing_in_one_thread_does_not_affect_comparisons_in_another() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def slow_model(x: list[Value]) -> Value:
        started.set()
        release.wait(5)
        return x[0] * 2

    worker = threading.Thread(target=lambda: trace(slow_model, example=[1.0]))
    worker.start()
    started.wait(5)
    seen.append(Value(1.0) < Value(2.0))
    release.set()
    worker.join()
    assert seen == [True]


def test_fn_must_return_values() -> None:
    with pytest.raises(TraceError, match="must return a Value"):
        trace(lambda x: 3.0, example=[1.0])
    with pytest.raises(InvalidTypeError):
        trace(42, example=[1.0])  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        trace(lambda x: x[0], example=["a"])  # type: ignore[list-item]


# -- bad batches and domain errors ------------------------------------------------------


@pytest.fixture
def two_input_step() -> Trace:
    w = Value(1.0)
    return trace(lambda x, t: (w * x[0] + x[1] - t) ** 2, [0.0, 0.0], 0.0)


@pytest.mark.parametrize(
    ("batches", "error", "match"),
    [
        (([[1.0, 2.0, 3.0]], [0.0]), ShapeError, r"argument 0 must have shape \(n, 2\), got \(1, 3\)"),
        (([1.0, 2.0], [0.0]), ShapeError, r"argument 0 must have shape \(n, 2\)"),
        (([[1.0, 2.0]], [[0.0]]), ShapeError, r"argument 1 must have shape \(n,\)"),
        (([[1.0, 2.0]], [0.0, 1.0]), ShapeError, "argument 1 has 2 samples, argument 0 has 1"),
        (([[1.0, 2.0], [1.0]], [0.0, 1.0]), ShapeError, "argument 0 is not a rectangular array"),
        (([[1.0, 2.0]],), ShapeError, "expected 2 batch argument"),
        ((np.zeros((0, 2)), []), ShapeError, "empty"),
        (([["a", "b"]], [0.0]), InvalidTypeError, "argument 0 must hold real numbers, got dtype <U1"),
        (([[1.0, math.nan]], [0.0]), InvalidArgumentError, "input 1 of sample 0 is nan"),
    ],
)
def test_bad_batches_are_refused_with_the_shape(
    two_input_step: Trace, batches: tuple, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        two_input_step.forward(*batches)


def test_backward_needs_a_forward_and_a_matching_dout(two_input_step: Trace) -> None:
    with pytest.raises(TraceError, match="forward"):
        two_input_step.backward()
    two_input_step.forward([[1.0, 2.0], [3.0, 4.0]], [0.0, 1.0])
    with pytest.raises(ShapeError, match="dout"):
        two_input_step.backward(np.ones(3))


@pytest.mark.parametrize(
    ("fn", "batch", "error", "match"),
    [
        (lambda x: x[0].log(), [[1.0], [2.0], [-2.0]], DomainError, r"log\(-2\.0\).*sample 2"),
        (lambda x: x[0].sqrt(), [[4.0], [-1.0]], DomainError, r"sqrt.*sample 1"),
        (lambda x: x[0] / x[1], [[1.0, 2.0], [1.0, 0.0]], DivisionByZeroError, r"div\(1\.0, 0\.0\).*sample 1"),
        (lambda x: x[0] ** x[1], [[2.0, 0.5], [-8.0, 0.5]], DomainError, r"pow\(-8\.0, 0\.5\).*sample 1"),
        (lambda x: x[0] ** -1, [[2.0, 0.0], [0.0, 0.0]], DivisionByZeroError, r"pow-1\(0\.0\).*sample 1"),
        (lambda x: x[0] ** x[1], [[2.0, 1.0], [0.0, -1.0]], DivisionByZeroError, r"pow\(0\.0, -1\.0\).*sample 1"),
    ],
    ids=["log", "sqrt", "div", "pow-base", "pow-zero", "pow-zero-base-value-exponent"],
)
def test_domain_errors_name_the_op_and_the_sample(fn: object, batch: list, error: type, match: str) -> None:
    """The same errors eager mode raises (checked by the first call), plus the sample index."""
    with pytest.raises(error):
        fn([Value(x) for x in batch[-1]])  # type: ignore[operator]
    step = trace(fn, example=[1.0] * len(batch[0]))  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        step.forward(batch)


def test_derivative_errors_in_the_replayed_backward_name_the_sample() -> None:
    """d√u/du = 1/(2√u) is infinite at u = 0: eager backward raises, and so does the replay."""
    w = Value(1.0)
    fn = lambda x: (w * x[0]).sqrt()  # noqa: E731
    with pytest.raises(DivisionByZeroError):
        fn([Value(0.0)]).backward()
    w.zero_grad()
    step = trace(fn, example=[1.0])
    step.forward([[4.0], [0.0]])
    with pytest.raises(DivisionByZeroError, match=r"sqrt.*sample 1"):
        step.backward()
    assert w.grad == 0.0  # nothing half-accumulated


def test_an_overflowing_product_is_let_through_as_in_eager_mode() -> None:
    """1e200·1e200 is inf for Python floats too (no exception): the replay agrees."""
    eager = (Value(1e200) * Value(1e200)).data
    step = trace(lambda x: x[0] * x[1], example=[1.0, 1.0])
    assert step.forward([[1e200, 1e200]]).tolist() == [eager] == [math.inf]


# -- Trainer(engine="traced") -------------------------------------------------------------


def train(engine: str, mode: str, optimizer: str, loss: object = nn.losses.mse) -> tuple[list[float], nn.History]:
    model = nn.MLP(2, [5, 3, 2], activation="tanh", output_activation="sigmoid", seed=1)
    X, labels = nn.data.moons(24, noise=0.1, seed=2)
    y = [[label, 1.0 - label] for label in labels]
    params = model.parameters()
    opt = nn.optim.SGD(params, lr=0.5, momentum=0.9) if optimizer == "sgd" else nn.optim.Adam(params, lr=0.01)
    trainer = nn.Trainer(model, opt, loss=loss, mode=mode, batch_size=5, seed=3, engine=engine)  # type: ignore[arg-type]
    history = trainer.fit(X, y, epochs=4, progress=False)
    return [p.data for p in params], history


@pytest.mark.parametrize("mode", ["online", "batch", "minibatch"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_traced_training_ends_with_the_parameters_of_eager_training(mode: str, optimizer: str) -> None:
    eager_params, eager_history = train("eager", mode, optimizer)
    traced_params, traced_history = train("traced", mode, optimizer)
    assert eager_history.loss[-1] != eager_history.loss[0]  # the runs did learn something
    np.testing.assert_allclose(traced_params, eager_params, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(traced_history.loss, eager_history.loss, rtol=1e-10, atol=1e-10)
    assert traced_history.accuracy == eager_history.accuracy


def test_hinge_reads_no_traced_target_so_traced_training_equals_eager() -> None:
    """hinge is max(0, 1 − t·o) with the relu row and checks only targets that are numbers."""
    ends = []
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [5, 2], activation="tanh", output_activation="linear", seed=1)
        X, labels = nn.data.moons(24, noise=0.1, seed=2)
        y = [[2 * label - 1, 1 - 2 * label] for label in labels]  # ±1
        opt = nn.optim.SGD(model.parameters(), lr=0.1)
        trainer = nn.Trainer(model, opt, loss=nn.losses.hinge, mode="minibatch", batch_size=5, seed=3, engine=engine)
        history = trainer.fit(X, y, epochs=4, progress=False)
        ends.append(([p.data for p in model.parameters()], history.loss))
    (eager_params, eager_loss), (traced_params, traced_loss) = ends
    assert eager_loss[-1] != eager_loss[0]
    np.testing.assert_allclose(traced_params, eager_params, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(traced_loss, eager_loss, rtol=1e-10, atol=1e-10)


def test_binary_cross_entropy_is_a_rule_so_traced_training_equals_eager() -> None:
    eager_params, _ = train("eager", "minibatch", "sgd", loss=nn.losses.binary_cross_entropy)
    traced_params, _ = train("traced", "minibatch", "sgd", loss=nn.losses.binary_cross_entropy)
    np.testing.assert_allclose(traced_params, eager_params, rtol=1e-10, atol=1e-10)


# -- random graphs ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=3),
    batch=st.lists(st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=2), min_size=1, max_size=5),
    program=st.lists(program_step, min_size=1, max_size=12),
)
def test_random_graphs_replay_like_eager(
    weights: list[float], batch: list[list[float]], program: list[tuple[str, int, int]]
) -> None:
    """Random graphs from the op table (shared subexpressions, repeated parents) mixing
    parameters and traced inputs. Summation order may differ from eager accumulation
    (sorted scatters), hence 1e-10 rather than the 1e-12 of single ops."""
    params = [Value(w) for w in weights]
    fn = lambda x: build(program, [*params, *x], [])  # noqa: E731
    expected_out, expected_grads = eager_per_sample(fn, params, batch)
    assume(all(math.isfinite(v) for v in [*expected_out, *expected_grads]))
    for p in params:
        p.zero_grad()
    replay = trace(fn, example=batch[0])
    np.testing.assert_allclose(replay.forward(batch), expected_out, rtol=1e-10, atol=1e-10)
    replay.backward()
    np.testing.assert_allclose([p.grad for p in params], expected_grads, rtol=1e-10, atol=1e-10)


# -- derivatives taken inside a traced function ------------------------------------------


@pytest.mark.parametrize(
    ("op", "derivative"),
    [
        (lambda u: u.relu(), lambda u: 1.0 if u > 0 else 0.0),
        (lambda u: u.leaky_relu(0.1), lambda u: 1.0 if u > 0 else 0.1),
        (lambda u: abs(u), lambda u: 1.0 if u > 0 else -1.0 if u < 0 else 0.0),
    ],
    ids=["relu", "leaky_relu", "abs"],
)
def test_create_graph_derivatives_of_piecewise_ops_are_replayed_per_sample(
    op: Callable[[Value], Value], derivative: Callable[[float], float]
) -> None:
    """f(x) = w·∂op(w·x)/∂x = w²·op'(w·x), traced at x = 1 (where op' = 1) and replayed on both sides.

    By hand: op' is relu' = [u > 0], leaky_relu' = 1 or 0.1, abs' = sign(u); each is
    piecewise constant, so ∂f/∂w = 2w·op'(w·x) and the batch's sum is 2w·Σ_p op'(w·x_p).
    (Before the fix op' was read once at trace time: 2.25 for every sample.)
    """
    w = Value(1.5, label="w")

    def fn(x: list[Value]) -> Value:
        (d,) = grad(op(w * x[0]), [x[0]], create_graph=True)
        return w * d  # type: ignore[operator]

    batch = [2.0, -2.0, 0.5, -0.5, 0.0]
    step = trace(fn, example=[1.0])
    out = step.forward([[x] for x in batch])
    step.backward()
    assert out.tolist() == pytest.approx([1.5 * 1.5 * derivative(1.5 * x) for x in batch], rel=1e-15)
    assert w.grad == pytest.approx(sum(2 * 1.5 * derivative(1.5 * x) for x in batch), rel=1e-15)


def test_the_issue_example_leaky_relu_derivative_is_not_frozen() -> None:
    """d/dx leaky_relu(x, 0.1)·2 = 2 for x > 0, 0.2 for x < 0: [2, 0.2, 2] at x = [1, -1, 2]."""
    step = trace(lambda x: grad(x[0].leaky_relu(0.1) * 2, [x[0]], create_graph=True)[0], [1.0])
    assert step.forward([[1.0], [-1.0], [2.0]]).tolist() == pytest.approx([2.0, 0.2, 2.0], rel=1e-15)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs"])
def test_recorded_derivatives_of_piecewise_ops_match_torch_to_second_order(torch: object, name: str) -> None:
    """grad(op(x), create_graph=True) is now a node (rows STEP, POSITIVE, SIGN); its value and its own
    derivative (0 away from the kink) equal PyTorch's double backward."""
    F = torch.nn.functional  # type: ignore[attr-defined]
    ours = {"relu": lambda u: u.relu(), "leaky_relu": lambda u: u.leaky_relu(0.1), "abs": lambda u: abs(u)}[name]
    theirs = {"relu": F.relu, "leaky_relu": lambda u: F.leaky_relu(u, 0.1), "abs": torch.abs}[name]  # type: ignore[attr-defined]
    for point in (-1.5, 0.7):
        x = Value(point)
        (d,) = grad(ours(x), [x], create_graph=True)
        assert any(v.op in ("step", "positive", "sign") for v in topological_order(d))  # type: ignore[arg-type]
        (d2,) = grad(d, [x])  # type: ignore[arg-type]
        t = torch.tensor(point, requires_grad=True)  # type: ignore[attr-defined]
        (td,) = torch.autograd.grad(theirs(t), t, create_graph=True)  # type: ignore[attr-defined]
        (td2,) = torch.autograd.grad(td, t, allow_unused=True, materialize_grads=True)  # type: ignore[attr-defined]
        assert (d.data, d2) == (td.item(), td2.item())


def test_the_step_and_sign_rows_carry_their_formula() -> None:
    for rule in (ops.STEP, ops.POSITIVE, ops.SIGN):
        assert len(rule.formula) == 2 and rule.local_derivative(0).endswith("= 0")
        assert rule.derivative(ops.FloatMath, 2.0, 1.0) == (0.0,)


def test_a_float_gradient_inside_a_traced_function_raises_trace_error() -> None:
    """grad() without create_graph gives floats computed at trace time: the replay would reuse them."""
    w = Value(2.0)

    def fn(x: list[Value]) -> Value:
        (d,) = grad((w * x[0]) ** 2, [w])  # 2·w·x², a float: frozen in a trace
        return w * d  # type: ignore[operator]

    with pytest.raises(TraceError, match="create_graph=True"):
        trace(fn, [1.0])


def test_backward_inside_a_traced_function_raises_trace_error() -> None:
    """backward() writes float gradients into .grad; read back in the function, they would be frozen."""

    def fn(x: list[Value]) -> Value:
        y = x[0] * x[0]
        y.backward()
        return y

    with pytest.raises(TraceError, match="backward"):
        trace(fn, [1.0])
    assert (Value(1.0) * 2).parents != ()  # the tracing switch is off again


# -- the output gradient of Trace.backward --------------------------------------------------


@pytest.mark.parametrize(
    ("dout", "error", "match"),
    [
        (None, InvalidTypeError, "got NoneType None"),
        ("1.5", InvalidTypeError, "got str '1.5'"),
        (True, InvalidTypeError, "got bool True"),
        (1j, InvalidTypeError, "got complex"),
        (math.nan, InvalidArgumentError, "finite number, got nan"),
        (math.inf, InvalidArgumentError, "finite number, got inf"),
        (10**400, NumericOverflowError, "too large"),
        ([True, False], InvalidTypeError, "dtype bool"),
        (["1.5", "2"], InvalidTypeError, "dtype <U3"),
        ([Value(1.0), Value(2.0)], InvalidTypeError, "dtype object"),
        ([1.0, math.inf], InvalidArgumentError, "dout of sample 1 is inf"),
        ([[1.0], [2.0, 3.0]], ShapeError, "dout"),
        ([1.0, 2.0, 3.0], ShapeError, r"shape of forward's result \(2,\), got \(3,\)"),
        ([[1.0], [2.0]], ShapeError, r"\(2,\), got \(2, 1\)"),
    ],
    ids=["None", "str", "bool", "complex", "nan", "inf", "huge-int", "bool-array", "str-array",
         "Values", "inf-entry", "ragged", "length", "column"],
)
def test_a_bad_dout_is_refused_by_name_and_changes_no_gradient(
    two_input_step: Trace, dout: object, error: type, match: str
) -> None:
    """Like eager ``backward(gradient)``: a finite real number (or an array of them), nothing else."""
    (w,) = two_input_step.parameters
    two_input_step.forward([[1.0, 2.0], [3.0, 4.0]], [0.0, 1.0])
    with pytest.raises(error, match=match):
        two_input_step.backward(dout)
    assert w.grad == 0.0


def test_with_several_outputs_dout_must_be_a_number_or_samples_by_outputs() -> None:
    """Two samples x = 1, 10 and two outputs y₁ = w·x, y₂ = 100·w: an (n,) dout is ambiguous when
    n equals the number of outputs, so only (n, outputs) is accepted.

    By hand, dout = [[1, 0], [1, 0]] weights y₁ of each sample: ∂/∂w = 1 + 10 = 11. Meant as
    per-sample weights, [1, 0] asks for both outputs of sample 1: 1 + 100 = 101; before the
    fix it was read silently as per-output weights, giving 11."""
    w = Value(2.0, label="w")
    step = trace(lambda x: [w * x[0], w * 100.0], [0.0])
    step.forward([[1.0], [10.0]])
    for ambiguous in ([1.0, 0.0], np.array([1.0, 1.0])):
        with pytest.raises(ShapeError, match=r"\(2, 2\), got \(2,\)"):
            step.backward(ambiguous)
    step.backward([[1.0, 0.0], [1.0, 0.0]])
    assert w.grad == 11.0
    step.backward(np.float32(0.5))  # one number weights every sample and output: ½·(1 + 100 + 10 + 100)
    assert w.grad == 11.0 + 105.5


def test_a_numpy_integer_or_zero_dimensional_dout_is_one_number() -> None:
    """∂/∂w Σ_p dout·w·x_p = dout·Σ x_p = 3·(1 + 2) = 9 for dout 3 given three ways."""
    w = Value(1.0)
    step = trace(lambda x: w * x[0], [0.0])
    step.forward([[1.0], [2.0]])
    for dout in (3, np.int64(3), np.array(3.0)):
        w.zero_grad()
        step.backward(dout)
        assert w.grad == 9.0


# -- an argument with no numbers ------------------------------------------------------------


def test_an_empty_example_is_an_argument_of_width_zero() -> None:
    """trace(lambda x: w * 2, []): fn ignores its (empty) list; each sample is an empty row.

    By hand, with w = 3: every output is 6, and ∂/∂w of the sum over three samples is 3·2 = 6.
    (Before the fix the width 0 was taken for "a single number" and every forward failed in
    a numpy reshape.)"""
    w = Value(3.0)
    step = trace(lambda x: w * 2, [])
    assert step.forward([[], [], []]).tolist() == [6.0, 6.0, 6.0]
    assert step.forward(np.zeros((3, 0))).tolist() == [6.0, 6.0, 6.0]
    step.backward()
    assert w.grad == 6.0
    with pytest.raises(ShapeError, match=r"argument 0 must have shape \(n, 0\), got \(3,\)"):
        step.forward([1.0, 2.0, 3.0])


def test_an_empty_example_beside_others_keeps_the_inputs_in_place() -> None:
    """f(a, b, c) = w·b[0] + c with a = [] : (2·1 + 5, 2·4 + 6) = (7, 14); ∂/∂w = 1 + 4 = 5."""
    w = Value(2.0)
    step = trace(lambda a, b, c: w * b[0] + c, [], [0.0], 0.0)
    assert step.forward([[], []], [[1.0], [4.0]], [5.0, 6.0]).tolist() == [7.0, 14.0]
    step.backward()
    assert w.grad == 5.0
