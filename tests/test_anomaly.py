"""`detect_anomaly`: the first NaN or infinity, forward or backward, stops the program
with a `NonFiniteError` naming the op, its inputs and where the node sits.

Expected numbers come from IEEE-754 arithmetic worked by hand: 1e308 · 10 overflows
to inf; d(log x)/dx at x = 1e-170 is 1e170, times an upstream gradient 1e300 gives
1e470, which overflows to inf.
"""

from __future__ import annotations

import math
import threading

import pytest

from autograd import Value, detect_anomaly, grad, is_grad_enabled, no_grad, sum_values
from autograd import anomaly as anomaly_module
from autograd.errors import AutogradError, NonFiniteError
from autograd.mode import mode


def test_off_by_default_overflow_gives_inf_silently() -> None:
    """Without the context manager the engine follows IEEE-754: 1e308 · 10 = inf."""
    y = Value(1e308, label="x") * 10
    assert y.data == math.inf


def test_forward_overflow_names_op_inputs_and_labels() -> None:
    x = Value(1e308, label="x")
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"forward: mul\(x=1e\+308, const=10\.0\) = inf") as info:
        x * 10
    assert "x" in str(info.value)


def test_non_finite_error_belongs_to_both_families() -> None:
    with detect_anomaly(), pytest.raises(FloatingPointError):
        Value(1e308) * 10
    with detect_anomaly(), pytest.raises(AutogradError):
        Value(1e308) * 10


def test_first_nan_is_reported_not_a_later_one() -> None:
    """inf - inf = NaN: the sub node is the first non-finite value made inside the block."""
    y = Value(1e308, label="big") * 10  # inf, made outside: allowed
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"sub\(.*inf.*inf.*\) = nan"):
        z = y - y
        z * 2  # never reached


def test_forward_message_gives_label_path_of_unlabelled_inputs() -> None:
    """A neuron's pre-activation has no label; the message walks up to its labelled parameters."""
    w1, w2, b = Value(1e200, label="L1.N0.w1"), Value(1e200, label="L1.N0.w2"), Value(0.0, label="L1.N0.b")
    z = sum_values([w1 * 1e100, w2 * 1e100, b])  # 2e300, finite
    with detect_anomaly(), pytest.raises(NonFiniteError) as info:
        z * 1e10
    message = str(info.value)
    assert "mul" in message
    assert "L1.N0.w1" in message and "L1.N0.w2" in message


def test_backward_overflow_names_op_and_label_path() -> None:
    """y = 1e300 · log(x) at x = 1e-170: ∂y/∂x = 1e300 / x = 1e470 -> inf."""
    x = Value(1e-170, label="x")
    with detect_anomaly():
        y = x.log() * 1e300
        assert math.isfinite(y.data)
        with pytest.raises(NonFiniteError, match=r"backward.*log\(x=1e-170\).*into x"):
            y.backward()


def test_backward_overflow_without_anomaly_gives_inf() -> None:
    x = Value(1e-170, label="x")
    y = x.log() * 1e300
    y.backward()
    assert x.grad == math.inf


def test_backward_anomaly_through_unlabelled_interior_node_names_labelled_ancestor() -> None:
    """h = log(x) is unlabelled; the gradient 1e300 · (1/1e-170) overflows flowing into x."""
    x = Value(1e-170, label="L1.N0.w1")
    with detect_anomaly():
        h = x.log()
        y = (h * 1e300) * 1.0
        with pytest.raises(NonFiniteError, match="L1.N0.w1"):
            y.backward()


def test_functional_grad_also_checks_gradients() -> None:
    """`grad` is a backward pass too: the same overflow must be caught there."""
    x = Value(1e-170, label="x")
    y = x.log() * 1e300
    assert grad(y, [x]) == [math.inf]
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"log\(x=1e-170\)"):
        grad(y, [x])


def test_create_graph_gradients_are_checked_as_recorded_forward_ops() -> None:
    x = Value(1e-170, label="x")
    y = x.log() * 1e300
    with detect_anomaly(), pytest.raises(NonFiniteError):
        grad(y, [x], create_graph=True)


def test_checks_forward_values_under_no_grad_too() -> None:
    with no_grad(), detect_anomaly(), pytest.raises(NonFiniteError, match="mul"):
        Value(1e308) * 10
    assert is_grad_enabled()


def test_nested_blocks_restore_the_outer_state() -> None:
    assert not mode.anomaly
    with detect_anomaly():
        with detect_anomaly():
            assert mode.anomaly
        assert mode.anomaly
        with pytest.raises(NonFiniteError):
            Value(1e308) * 10
    assert not mode.anomaly
    assert mode.fast
    assert (Value(1e308) * 10).data == math.inf


def test_state_restored_when_the_block_raises() -> None:
    with pytest.raises(NonFiniteError), detect_anomaly():
        Value(1e308) * 10
    assert not mode.anomaly and mode.fast
    with pytest.raises(KeyError), detect_anomaly():
        raise KeyError("unrelated")
    assert not mode.anomaly and mode.fast


def test_finite_computation_inside_is_unchanged() -> None:
    """d/dx [x·sin x] = sin x + x cos x, at x = 0.7."""
    with detect_anomaly():
        x = Value(0.7, label="x")
        y = x * x.sin()
        y.backward()
    assert x.grad == pytest.approx(math.sin(0.7) + 0.7 * math.cos(0.7), rel=1e-15)


def test_no_check_runs_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off means off: the checking functions are never called (no cost on the fast path)."""

    def fail(*args: object) -> None:
        raise AssertionError("anomaly check called while detect_anomaly is off")

    monkeypatch.setattr(anomaly_module, "check_forward", fail)
    monkeypatch.setattr(anomaly_module, "check_backward", fail)
    x = Value(2.0)
    y = (x * x).log()
    y.backward()
    assert x.grad == pytest.approx(1.0)  # d/dx log(x²) = 2/x


def test_anomaly_mode_is_per_thread() -> None:
    """A thread inside detect_anomaly does not switch it on for another thread."""
    entered, release = threading.Event(), threading.Event()
    seen: list[float] = []

    def watcher() -> None:
        with detect_anomaly():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=watcher)
    thread.start()
    try:
        assert entered.wait(10)
        seen.append((Value(1e308) * 10).data)
    finally:
        release.set()
        thread.join()
    assert seen == [math.inf]
