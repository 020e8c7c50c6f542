"""The array API of a trace (`Trace.forward(..., theta=)`, `Trace.gradient`) and its fast replay.

A training loop may keep the parameters in an array: ``forward(batch, theta=θ)`` replays with
θ instead of the parameters' ``.data``, and ``gradient(dout)`` returns Σ_p dout_p·∂out_p/∂w
as an array instead of adding it to ``.grad``. The replay first runs the whole tape with no
diagnostics and falls back to the careful, step-by-step replay where anything is not finite;
both must give what eager mode gives. The reference is the eager engine, one sample at a time.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable

import pytest
from conftest import require_module
from op_cases import CASES, OpCase
from test_trace import batch_for, eager_per_sample, scaled_case

from autograd import Value, atan2, detect_anomaly, sum_values, trace
from autograd.errors import DomainError, NonFiniteError, ShapeError, TraceError

np = require_module("numpy", extra="fast")


def mlp(weights: list[list[Value]], x: list[Value]) -> Value:
    """A hand-written 2-3-2-1 tanh network (no `nn`): its layers are found and fused by the trace."""
    w1, w2, w3 = weights
    h = [sum_values([w1[i * 2 + j] * x[j] for j in range(2)] + [w1[6 + i]]).tanh() for i in range(3)]
    h = h[::-1]  # the second layer reads the first's outputs last first
    g = [sum_values([w2[i * 3 + j] * h[j] for j in range(3)] + [w2[6 + i]]).relu() for i in range(2)]
    return sum_values([w3[0] * g[0], w3[1] * g[1], w3[2]])


def mlp_weights(seed: int) -> list[list[Value]]:
    rng = np.random.default_rng(seed)
    return [[Value(float(v), label=f"w{k}_{i}") for i, v in enumerate(rng.standard_normal(n))]
            for k, n in ((1, 9), (2, 8), (3, 3))]  # fmt: skip


BATCH = np.random.default_rng(0).standard_normal((7, 2)).tolist()


def test_forward_with_theta_replays_those_values_and_leaves_the_parameters_alone() -> None:
    weights = mlp_weights(1)
    step = trace(lambda x: mlp(weights, x), BATCH[0])
    before = [p.data for p in step.parameters]
    theta = np.random.default_rng(2).standard_normal(len(step.parameters))
    out = step.forward(BATCH, theta=theta)
    assert [p.data for p in step.parameters] == before
    for p, value in zip(step.parameters, theta.tolist()):  # eager mode with the same numbers
        p.data = value
    expected, _ = eager_per_sample(lambda x: mlp(weights, x), [], BATCH)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_gradient_returns_the_batch_gradient_and_touches_no_grad() -> None:
    weights = mlp_weights(3)
    flat = [w for layer in weights for w in layer]
    _, expected = eager_per_sample(lambda x: mlp(weights, x), flat, BATCH)
    for w in flat:
        w.grad = 0.25
    step = trace(lambda x: mlp(weights, x), BATCH[0])
    assert len(step.fused_layers) == 2
    step.forward(BATCH)
    total = step.gradient()
    assert [w.grad for w in flat] == [0.25] * len(flat)
    by_value = dict(zip(map(id, step.parameters), total.tolist()))
    np.testing.assert_allclose([by_value[id(w)] for w in flat], expected, rtol=1e-12, atol=1e-12)


def test_a_batch_checked_once_replays_as_the_arrays_do() -> None:
    """forward(trace.batch(X)) gives eager's outputs and gradients, and the batch is not checked again."""
    weights = mlp_weights(4)
    flat = [w for layer in weights for w in layer]
    expected, gradients = eager_per_sample(lambda x: mlp(weights, x), flat, BATCH)
    step = trace(lambda x: mlp(weights, x), BATCH[0])
    batch = step.batch(BATCH)
    assert len(batch) == len(BATCH)
    with pytest.raises(ValueError, match="read-only"):
        batch.block[0, 0] = 5.0  # what was checked cannot change
    for _ in range(2):  # the same batch replays again
        np.testing.assert_allclose(step.forward(batch), expected, rtol=1e-12, atol=1e-12)
        by_value = dict(zip(map(id, step.parameters), step.gradient().tolist()))
        np.testing.assert_allclose([by_value[id(w)] for w in flat], gradients, rtol=1e-12, atol=1e-12)
    other = trace(lambda x: mlp(weights, x), BATCH[0])
    with pytest.raises(TraceError, match="made by another trace"):
        other.forward(batch)
    with pytest.raises(ShapeError):
        step.batch([[1.0, 2.0, 3.0]])  # checked as forward checks


def test_a_seed_checked_once_weights_the_outputs_as_its_array_does() -> None:
    """gradient(trace.seed(dout, n)) is gradient(dout): eager's Σ_p dout_p·∂out_p/∂w, at every step."""
    weights = mlp_weights(5)
    flat = [w for layer in weights for w in layer]
    dout = np.random.default_rng(6).uniform(-1, 1, len(BATCH))
    step = trace(lambda x: mlp(weights, x) * 1.0, BATCH[0])
    for w in flat:
        w.grad = 0.0
    for x, d in zip(BATCH, dout.tolist()):  # eager: each sample's output weighted by its dout
        (mlp(weights, [Value(v) for v in x]) * d).backward()
    expected = [w.grad for w in flat]
    seed = step.seed(dout, len(BATCH))
    with pytest.raises(ValueError, match="read-only"):
        seed.block[0, 0] = 5.0  # what was checked cannot change
    for _ in range(2):
        step.forward(BATCH)
        by_value = dict(zip(map(id, step.parameters), step.gradient(seed).tolist()))
        np.testing.assert_allclose([by_value[id(w)] for w in flat], expected, rtol=1e-12, atol=1e-12)
    step.forward(BATCH[:3])
    with pytest.raises(ShapeError, match="this Seed is for 7 samples, the forward had 3"):
        step.gradient(seed)
    other = trace(lambda x: mlp(weights, x), BATCH[0])
    other.forward(BATCH)
    with pytest.raises(TraceError, match="made by another trace"):
        other.gradient(seed)
    with pytest.raises(ShapeError):
        step.seed(dout[:3], len(BATCH))  # checked as gradient checks


def test_theta_must_hold_every_parameter() -> None:
    weights = mlp_weights(4)
    step = trace(lambda x: mlp(weights, x), BATCH[0])
    with pytest.raises(ShapeError, match=r"theta must hold the 20 parameters, got shape \(19,\)"):
        step.forward(BATCH, theta=np.zeros(19))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_fast_and_the_careful_replay_agree_with_eager(case: OpCase) -> None:
    """Without anomaly detection the fast replay runs; under it the careful one (it checks every
    step): both equal eager mode, for every rule of the table."""
    weights = [Value(1.0) for _ in case.points[0]] + [Value(1.5)]
    fn = scaled_case(case, weights)
    batch = batch_for(case)
    expected_out, expected_grads = eager_per_sample(fn, weights, batch)
    step = trace(fn, example=batch[0])
    fast = step.forward(batch), step.gradient()
    with detect_anomaly():
        careful = step.forward(batch), step.gradient()
    by_value = dict(zip(map(id, step.parameters), range(len(weights))))
    order = [by_value[id(w)] for w in weights]
    for out, grads in (fast, careful):
        np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads[order], expected_grads, rtol=1e-12, atol=1e-12)


def relu_mlp(weights: list[list[Value]], x: list[Value]) -> Value:
    """2-3-3-1 with relu after both hidden layers (no `nn`): each relu group reads a fused layer."""
    w1, w2, w3 = weights
    h = [sum_values([w1[i * 2 + j] * x[j] for j in range(2)] + [w1[6 + i]]).relu() for i in range(3)]
    g = [sum_values([w2[i * 3 + j] * h[j] for j in range(3)] + [w2[9 + i]]).relu() for i in range(3)]
    return sum_values([w3[j] * g[j] for j in range(3)] + [w3[3]])


def relu_weights() -> list[list[Value]]:
    rng = np.random.default_rng(5)
    w1 = [*rng.standard_normal(6).tolist(), 0.0, 0.0, -0.5]  # the first two units have no bias: 0 at x = 0
    w2 = [*rng.standard_normal(9).tolist(), 0.5, 0.75, 1.0]  # positive biases: a gradient flows back at x = 0
    return [[Value(float(v)) for v in layer] for layer in (w1, w2, rng.standard_normal(4).tolist())]


RELU_BATCH = [[0.0, 0.0], [-0.0, 0.0], *np.random.default_rng(6).standard_normal((9, 2)).tolist()]


@pytest.mark.parametrize("anomaly", [False, True], ids=["fast", "careful"])
def test_relu_after_a_fused_layer_in_place_and_its_slope_as_a_comparison_equal_eager(anomaly) -> None:
    """relu(0) = 0 with slope 0, negatives cut, signed zeros: the fast replay's in-place relu and its
    slope [x > 0] give eager's numbers, as the careful replay does."""
    weights = relu_weights()
    flat = [w for layer in weights for w in layer]
    expected, gradients = eager_per_sample(lambda x: relu_mlp(weights, x), flat, RELU_BATCH)
    step = trace(lambda x: relu_mlp(weights, x), RELU_BATCH[0])
    assert len(step.fused_layers) == 3 and sum(g.after_layer for g in step.groups) == 2
    with detect_anomaly() if anomaly else contextlib.nullcontext():
        out = step.forward(RELU_BATCH)
        total = step.gradient()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    by_value = dict(zip(map(id, step.parameters), total.tolist()))
    np.testing.assert_allclose([by_value[id(w)] for w in flat], gradients, rtol=1e-12, atol=1e-12)
    assert all(group.feeds_layers for group in step.groups)  # only the next layer reads each (signed zeros: below)


def relus_of_tanh(x: list[Value]) -> list[Value]:
    """relu(tanh(x_j)) for three inputs, one group: -0.0 at x_j = -0.0 before eager's + 0.0."""
    return [v.tanh().relu() for v in x]


SIGNED_ZEROS = [[-0.0, 0.0, -0.0], [-0.0, -0.0, -0.0], [0.5, -0.0, -2.0]]


class FirstOfEqualZeros:
    """numpy, but with the np.maximum of its documentation, np.where(x1 >= x2, x1, x2) (NaN kept):
    max(-0.0, 0.0) is -0.0. Builds differ there (x86's maxpd gives the second, +0.0), so the fast
    pass's relu is tested with this one too, for the case where its + 0.0 matters."""

    def __getattr__(self, name: str) -> object:
        return getattr(np, name)

    @staticmethod
    def maximum(a: object, b: object, out: object = None) -> object:
        result = np.where((np.asarray(a) >= b) | np.isnan(a), a, b)
        if out is None:
            return result
        out[...] = result  # type: ignore[index]
        return out


@pytest.fixture(params=["numpy", "first of equal zeros"])
def maximum_of_zeros(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it after a trace's first replay (which sets the program module's numpy): from then on the
    fast pass runs with numpy's own np.maximum, or with `FirstOfEqualZeros`'s."""
    from autograd.trace import program

    def use() -> None:
        if request.param != "numpy":
            monkeypatch.setattr(program, "np", FirstOfEqualZeros())
            assert np.signbit(program.np.maximum(np.array([-0.0]), 0.0)).all()

    return use


def test_a_relu_read_by_a_sign_sensitive_op_gives_eagers_positive_zero(maximum_of_zeros) -> None:
    """Eager relu(-0.0) is +0.0, and atan2(+0.0, -1) = π where atan2(-0.0, -1) = -π: a relu group
    read by anything but a fused layer keeps the + 0.0, down to the sign."""
    weights = [Value(0.5)]

    def fn(x: list[Value]) -> Value:
        return sum_values([atan2(h, -1.0) for h in relus_of_tanh(x)]) * weights[0]

    expected, gradients = eager_per_sample(fn, weights, SIGNED_ZEROS)
    step = trace(fn, SIGNED_ZEROS[0])
    (group,) = [g for g in step.groups if g.relu]
    assert not group.feeds_layers
    step.forward(SIGNED_ZEROS)
    maximum_of_zeros()
    out = step.forward(SIGNED_ZEROS)
    assert step._last_fast
    assert out.tolist() == expected  # exactly: ±π·0.5 per zero, the sign of each zero decides
    assert step.gradient().tolist() == pytest.approx(gradients, rel=1e-12, abs=1e-12)
    relu_rows = step._last[0][group.outputs]
    assert not np.signbit(relu_rows).any()


def test_a_relu_only_a_fused_layer_reads_may_keep_a_negative_zero_with_eagers_numbers(maximum_of_zeros) -> None:
    """Read only by a fused layer's product, a relu's -0.0 is not made +0.0 (the product adds to
    +0.0 whatever eager's sum of zeros gives, so it cannot pass the sign on): the numbers are
    eager mode's all the same, equal as numbers, and the gradients too."""
    w = [[Value(v) for v in row] for row in ([0.5, -1.0, 2.0], [-0.25, 0.75, 1.5])]
    flat = [v for row in w for v in row]

    def fn(x: list[Value]) -> Value:
        h = relus_of_tanh(x)
        return sum_values([sum_values([wij * hj for wij, hj in zip(row, h)]).tanh() for row in w])

    expected, gradients = eager_per_sample(fn, flat, SIGNED_ZEROS)
    step = trace(fn, SIGNED_ZEROS[0])
    (group,) = [g for g in step.groups if g.relu]
    assert group.feeds_layers and len(step.fused_layers) == 1
    step.forward(SIGNED_ZEROS)
    maximum_of_zeros()
    out = step.forward(SIGNED_ZEROS)
    assert step._last_fast
    assert out.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    by_value = dict(zip(map(id, step.parameters), step.gradient().tolist()))
    assert [by_value[id(v)] for v in flat] == pytest.approx(gradients, rel=1e-12, abs=1e-12)


def test_relu_after_a_layer_that_overflows_falls_back_and_gives_eagers_infinities_and_nans() -> None:
    """A layer output of ±inf (1e300·1e10) makes the fast forward give up; the careful forward and the
    backward after it give eager mode's numbers, inf and NaN included."""
    weights = relu_weights()
    weights[0][0].data = 1e300
    weights[0][1].data = -1e300
    flat = [w for layer in weights for w in layer]
    batch = [[1e10, 0.0], [-1e10, 0.0], [1e10, 1e10], [0.5, -0.25]]
    expected, gradients = eager_per_sample(lambda x: relu_mlp(weights, x), flat, batch)
    assert not all(math.isfinite(v) for v in [*expected, *gradients])  # the case is really non-finite
    step = trace(lambda x: relu_mlp(weights, x), batch[3])
    out = step.forward(batch)
    assert not step._last_fast
    total = step.gradient()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    by_value = dict(zip(map(id, step.parameters), total.tolist()))
    np.testing.assert_allclose([by_value[id(w)] for w in flat], gradients, rtol=1e-12, atol=1e-12)


def test_a_nan_weight_under_detect_anomaly_names_the_product_feeding_the_relu() -> None:
    weights = relu_weights()
    step = trace(lambda x: relu_mlp(weights, x), RELU_BATCH[2])
    weights[0][0].data = math.nan
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"anomaly in forward: mul\(nan, .*sample 0"):
        step.forward(RELU_BATCH)


def test_a_domain_error_in_the_fast_replay_is_reported_by_the_careful_one() -> None:
    w = Value(1.0)
    step = trace(lambda x: (w * x[0]).log(), [1.0])
    with pytest.raises(DomainError, match=r"log.*sample 2"):
        step.forward([[1.0], [2.0], [-3.0]])


def test_an_inf_minus_inf_gives_eagers_nan_after_the_fast_replay_gives_up() -> None:
    """inf - inf raises numpy's invalid flag in the fast replay; eager mode gives NaN, and so does the replay."""
    w = Value(1.0)
    fn = lambda x: w * x[0] * x[0] - w * x[1] * x[1]  # noqa: E731
    eager = fn([Value(1e200), Value(1e200)]).data
    step = trace(fn, [1.0, 1.0])
    out = step.forward([[1e200, 1e200], [1.0, 2.0]])
    assert math.isnan(eager) and math.isnan(out[0]) and out[1] == -3.0


def test_a_layer_reading_its_inputs_last_first_names_the_eager_product_under_anomaly() -> None:
    """The second layer reads the first's outputs in reversed slots (it is replayed with W's columns
    reversed); the first product that is not finite is still the one eager mode names."""
    weights = mlp_weights(5)
    x = [0.3, -0.2]
    step = trace(lambda v: mlp(weights, v), x)
    weights[1][3].data = math.nan  # w2[1][0], times h[0] (slot order: the last input): the product not finite
    with detect_anomaly(), pytest.raises(NonFiniteError) as eager_error:
        mlp(weights, [Value(v) for v in x])
    with detect_anomaly(), pytest.raises(NonFiniteError) as traced_error:
        step.forward([x])
    # eager: "mul(input=nan, input=h) = nan [...]"; the replay names the same product (h to 1e-12: numpy's tanh)
    pattern = r"anomaly in forward: mul\((\w+=)?nan, (\w+=)?([-0-9.e]+)\) = nan"
    eager = re.match(pattern, str(eager_error.value))
    traced = re.match(pattern + r" \(traced replay, sample 0", str(traced_error.value))
    assert eager is not None and traced is not None, (eager_error.value, traced_error.value)
    assert float(traced.group(3)) == pytest.approx(float(eager.group(3)), rel=1e-12)
    assert "inputs: w2_3, computed" in str(traced_error.value)


@pytest.mark.parametrize("name", ["relu", "step", "positive", "sign"])
def test_the_switches_of_the_numpy_namespace_give_floatmaths_numbers_signed_zeros_and_nans_included(
    name: str,
) -> None:
    """NumpyMath's relu, step, positive and sign avoid np.where (slow on mixed signs): each entry
    must still be FloatMath's number for that entry, down to the sign of a zero."""
    from autograd.ops import FloatMath
    from autograd.trace import NumpyMath

    xs = [-0.0, 0.0, -1.0, 2.0, math.nan, -math.inf, math.inf, 1e-320, -1e-320]
    with np.errstate(invalid="raise", divide="raise"):  # as in the replay: no flag may be raised either
        got = getattr(NumpyMath, name)(np.array([xs])).tolist()[0]
    for x, value in zip(xs, got):
        expected = getattr(FloatMath, name)(x)
        assert (math.isnan(value) and math.isnan(expected)) or (
            value == expected and math.copysign(1.0, value) == math.copysign(1.0, expected)
        ), (x, value, expected)


@pytest.mark.parametrize("n", [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 2.5])
def test_the_numpy_power_rule_for_a_constant_power_gives_floatmaths_numbers(n: float) -> None:
    """NumpyMath.power_rule takes a constant power's cases at once (0 for n = 0, 2·x for n = 2):
    each entry must still be FloatMath's n·x^(n-1) (0 for n = 0), zeros, NaN and inf included."""
    from autograd.ops import FloatMath
    from autograd.trace import NumpyMath

    xs = [-0.0, 0.0, -1.5, 2.0, 0.25, math.nan, -math.inf, math.inf, 1e-320, 1e300]
    with np.errstate(all="ignore"):
        got = np.broadcast_to(NumpyMath.power_rule(np.array([xs]), n), (1, len(xs))).tolist()[0]
    for x, value in zip(xs, got):
        try:
            expected = FloatMath.power_rule(x, n)
        except (ArithmeticError, ValueError):  # a pole or a negative base: the replay's flag, not compared
            continue
        assert (math.isnan(value) and math.isnan(expected)) or (
            value == expected and math.copysign(1.0, value) == math.copysign(1.0, expected)
        ), (x, n, value, expected)


def test_an_output_returned_twice_gets_both_seeds() -> None:
    """fn returns [y, y] for one node y = w·x: ∂/∂w of dout_0·y + dout_1·y is (dout_0 + dout_1)·x,
    by hand: (1 + 10)·2 + (2 + 20)·3 = 88."""
    w = Value(0.5)

    def fn(x: list[Value]) -> list[Value]:
        y = w * x[0]
        return [y, y]

    step = trace(fn, [1.0])
    step.forward([[2.0], [3.0]])
    assert step.gradient(np.array([[1.0, 10.0], [2.0, 20.0]])).tolist() == [88.0]
