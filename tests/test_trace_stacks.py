"""Layers with the same weights applied side by side (a sequence model's positions) are replayed
as one batched product W·[X₁ … X_P] (`_Stack`, `_StackedLayer` in autograd.trace.schedule and autograd.trace.layers).

Checked against eager mode run one sample at a time, to 1e-12, as every fused path
(tests/test_trace_fusion.py); overflow and detect_anomaly go through the single layers,
whose reports are eager mode's.
"""

from __future__ import annotations

import math
import random

import pytest
from conftest import require_module
from test_trace_fusion import batch_of, eager, matrix, replay

from autograd import Value, detect_anomaly, sum_values, trace
from autograd.errors import NonFiniteError
from autograd.trace import kernels
from autograd.trace.layers import _StackedLayer

np = require_module("numpy", extra="fast")
stacked_layer = _StackedLayer


def positions(w: list[list[Value]], b: list[Value] | None, P: int, n: int):
    """y_p = tanh(W·x_p (+ b)) for P positions x_p = x[p·n : (p + 1)·n] of one input vector."""

    def fn(x: list[Value]) -> Value:
        total = []
        for p in range(P):
            xs = x[p * n : (p + 1) * n]
            for i, row in enumerate(w):
                terms = [wij * xj for wij, xj in zip(row, xs)] + ([b[i]] if b else [])
                total.append(sum_values(terms).tanh())
        return sum_values(total)

    return fn


def assert_one_stack_equals_eager(fn, params, batch) -> None:
    """The replay finds one stacked layer, and its outputs and gradients equal eager mode's to 1e-12."""
    expected_out, expected_grads = eager(fn, params, batch)
    out, grads, step = replay(fn, params, batch)
    assert [type(layer) for layer in step.fused_layers] == [stacked_layer]  # type: ignore[attr-defined]
    np.testing.assert_allclose(out, [o[0] for o in expected_out], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("call_size", [None, 12])  # 12: each layer cut into calls of one sample
def test_one_product_for_every_position_equals_eager(bias: bool, call_size: int | None, monkeypatch) -> None:
    monkeypatch.setattr(kernels, "BLAS_CALL_SIZE", call_size)
    rng = random.Random(1)
    w = matrix(3, 4, rng)
    b = [Value(rng.uniform(-1, 1)) for _ in range(3)] if bias else None
    params = [v for row in w for v in row] + (b or [])
    fn = positions(w, b, P=5, n=4)
    batch = batch_of(6, 20, 2)
    assert_one_stack_equals_eager(fn, params, batch)


def test_positions_sharing_inputs_and_a_weight_used_twice_get_every_gradient() -> None:
    """Overlapping windows (position p reads x[p : p + 3]: every input feeds several positions)
    and w[1][2] is w[0][0] again: the gradients of all uses add up."""
    rng = random.Random(3)
    w = matrix(2, 3, rng)
    w[1][2] = w[0][0]
    params = [w[0][0], w[0][1], w[0][2], w[1][0], w[1][1]]
    inner = [Value(rng.uniform(-1, 1)) for _ in range(5)]

    def fn(x: list[Value]) -> Value:
        h = [xi * v for xi, v in zip(x, inner)]  # inputs that need a gradient (inner is a parameter)
        return sum_values(
            [sum_values([wij * hj for wij, hj in zip(row, h[p : p + 3])]).sigmoid() for p in range(3) for row in w]
        )

    params += inner
    batch = batch_of(4, 5, 4)
    assert_one_stack_equals_eager(fn, params, batch)


def test_overflow_in_one_position_gives_eagers_inf_and_nan() -> None:
    """By IEEE-754 as in test_trace_fusion: 1e200·1e200 - 1e200·1e200 is inf - inf = nan in
    position 1 of sample 1; the rest stays finite. The stack hands over to its layers."""
    w = [[Value(1e200), Value(-1e200)], [Value(1.0), Value(2.0)]]

    def fn(x: list[Value]) -> list[Value]:
        return [sum_values([row[0] * x[2 * p], row[1] * x[2 * p + 1]]) for p in range(2) for row in w]

    batch = [[1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1e200, 1e200]]
    expected, _ = eager(fn, [], batch)
    assert math.isnan(expected[1][2])
    step = trace(fn, example=batch[0])
    assert [type(layer) for layer in step.fused_layers] == [stacked_layer]
    np.testing.assert_array_equal(step.forward(batch), expected)


def test_an_overflowing_gradient_gives_eagers_inf() -> None:
    """∂/∂w = Σ 1e300·x with x = 1e300 in one position: inf, as eagerly."""
    w = [[Value(1e-300), Value(0.0)], [Value(0.0), Value(0.0)]]
    params = [v for row in w for v in row]

    def fn(x: list[Value]) -> Value:
        return sum_values([sum_values([row[0] * x[2 * p], row[1] * x[2 * p + 1]]) * 1e300 for p in range(2)
                           for row in w])  # fmt: skip

    batch = [[1.0, 1.0, 1.0, 1.0], [1e300, 1.0, 1.0, 1.0]]
    _, expected_grads = eager(fn, params, batch)
    assert expected_grads[0] == math.inf
    _, grads, step = replay(fn, params, batch)
    assert [type(layer) for layer in step.fused_layers] == [stacked_layer]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(grads, expected_grads)


def test_detect_anomaly_names_the_product_in_a_stacked_layer() -> None:
    w = [[Value(0.5, label="w00"), Value(0.25, label="w01")], [Value(0.5, label="w10"), Value(2.0, label="w11")]]

    def fn(x: list[Value]) -> list[Value]:
        return [sum_values([row[0] * x[2 * p], row[1] * x[2 * p + 1]]) for p in range(2) for row in w]

    step = trace(fn, example=[1.0, 1.0, 1.0, 1.0])
    assert [type(layer) for layer in step.fused_layers] == [stacked_layer]
    w[1][1].data = math.nan
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"mul\(nan, 3\.0\) = nan .*sample 0.*inputs: w11, x2"):
        step.forward([[1.0, 3.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
