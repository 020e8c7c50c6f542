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

import nn
from autograd import Value, detect_anomaly, grad, is_grad_enabled, no_grad, sum_values
from autograd import anomaly as anomaly_module
from autograd.errors import AutogradError, NonFiniteError
from autograd.mode import mode
from nn.trainer import ENGINES


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


def test_label_path_search_is_bounded_in_huge_unlabelled_graphs() -> None:
    """The label of a distant ancestor is looked for among at most 10,000 nodes: an error
    message in a graph of a million unlabelled nodes must come at once, not after a search."""
    x = Value(0.5, label="x")
    near, far = x, x
    for _ in range(100):
        near = near * 1.0
    for _ in range(20_000):
        far = far * 1.0
    assert anomaly_module.label_path(near) == "computed from x"
    assert anomaly_module.label_path(far) == "unlabelled"
    assert anomaly_module.label_path(Value(1.0, requires_grad=False)) == "constant"


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


# -- training that diverges ----------------------------------------------------------

X_LINE = [[1.0], [2.0], [3.0]]
T_LINE = [2.0, 4.0, 6.0]


def line_model(w: float, b: float) -> nn.MLP:
    """o = w·x + b: one linear neuron."""
    model = nn.MLP(1, [1], activation="linear", seed=0)
    model.load_state_dict({"layers.0.weight": [[w]], "layers.0.bias": [b]})
    return model


def simulate_batch_sgd(w: float, b: float, lr: float, epochs: int) -> tuple[tuple[float, float], int]:
    """Full-batch SGD on E = (1/3)·Σ_p (w·x_p + b - t_p)², in plain floats, written from the formulas
    ∂E/∂w = Σ_p x_p·2·d_p/3 and ∂E/∂b = Σ_p 2·d_p/3 with d_p = w·x_p + b - t_p.

    Returns the last (w, b) whose loss was finite and the epoch at which it stopped being so.
    """
    last = (w, b)
    for epoch in range(1, epochs + 1):
        d = [w * x + b - t for (x,), t in zip(X_LINE, T_LINE)]
        loss = sum(di * di for di in d) / 3
        if not math.isfinite(loss):
            return last, epoch
        last = (w, b)
        grad_w = sum(x * (2.0 * di * (1 / 3)) for (x,), di in zip(X_LINE, d))
        grad_b = sum(2.0 * di * (1 / 3) for di in d)
        if not (math.isfinite(grad_w) and math.isfinite(grad_b)):
            return last, epoch
        w, b = w - lr * grad_w, b - lr * grad_b
    raise AssertionError("the simulation did not diverge")


@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_stops_at_the_first_non_finite_loss_and_restores_the_last_finite_model(engine: str) -> None:
    """With η = 10 the error is multiplied by about 1 - 2η·mean(x²) ≈ -92 per epoch: it overflows
    after ~80 epochs. The trainer must stop at that epoch and hand back exactly the weights of the
    previous epoch (the last ones whose loss was finite), as the plain-float simulation finds."""
    (w_expected, b_expected), epoch = simulate_batch_sgd(0.5, 0.0, lr=10.0, epochs=1000)
    model = line_model(0.5, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=10.0), mode="batch", engine=engine)
    message = rf"training diverged at epoch {epoch}, batch 1: .*restored.*smaller learning rate"
    with pytest.raises(NonFiniteError, match=message):
        trainer.fit(X_LINE, T_LINE, epochs=1000, progress=False)
    state = model.state_dict()
    assert state["layers.0.weight"][0][0] == pytest.approx(w_expected, rel=1e-12)
    assert state["layers.0.bias"][0] == pytest.approx(b_expected, rel=1e-12)
    assert len(trainer.history.loss) == epoch - 1
    assert all(math.isfinite(loss) for loss in trainer.history.loss)
    assert trainer.history.stopped_reason == f"diverged at epoch {epoch}, batch 1"


@pytest.mark.parametrize("training_mode", ["online", "batch", "minibatch"])
@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_is_not_silent_in_any_mode(training_mode: str, engine: str) -> None:
    model = line_model(0.5, 0.0)
    optimizer = nn.optim.SGD(model.parameters(), lr=10.0)
    trainer = nn.Trainer(model, optimizer, mode=training_mode, batch_size=2, engine=engine)
    with pytest.raises(NonFiniteError, match="training diverged"):
        trainer.fit(X_LINE, T_LINE, epochs=1000, progress=False)
    assert all(math.isfinite(p.data) for p in model.parameters())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_model_that_is_non_finite_from_the_start_is_left_as_it_was(engine: str) -> None:
    """w = 1e300: (w·3 - 6)² overflows on the very first batch; there is no earlier finite model."""
    model = line_model(1e300, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch", engine=engine)
    with pytest.raises(NonFiniteError, match="training diverged at epoch 1, batch 1: .*parameters are unchanged"):
        trainer.fit(X_LINE, T_LINE, epochs=5, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[1e300]], "layers.0.bias": [0.0]}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_second_fit_never_restores_weights_from_the_first(engine: str) -> None:
    """After a finite first fit the user loads other weights; if the next fit diverges at once,
    the model must keep those weights, not silently get the first fit's back."""
    model = line_model(0.5, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.01), mode="batch", engine=engine)
    trainer.fit(X_LINE, T_LINE, epochs=3, progress=False)
    model.load_state_dict({"layers.0.weight": [[1e300]], "layers.0.bias": [0.0]})
    with pytest.raises(NonFiniteError):
        trainer.fit(X_LINE, T_LINE, epochs=3, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[1e300]], "layers.0.bias": [0.0]}


# -- traced replay ----------------------------------------------------------------------


def test_traced_replay_reports_the_first_non_finite_value_under_detect_anomaly() -> None:
    """The same overflow as eagerly (10 · 1e308), here in sample 1 of a replayed batch."""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    w = Value(10.0, label="w")
    replay = trace(lambda x: w * x, 0.5)
    assert list(replay.forward([1.0, 1e308])) == [10.0, math.inf]  # off: IEEE-754, like eager mode
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"forward: mul\(10\.0, 1e\+308\) = inf .*sample 1"):
        replay.forward([1.0, 1e308])


def test_traced_replay_reports_a_non_finite_gradient_under_detect_anomaly() -> None:
    """y = 1e300 · log(w·x) at w·x = 1e-170: ∂y/∂(w·x) = 1e470 -> inf, as in the eager test above."""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    w = Value(1e-170, label="w")
    replay = trace(lambda x: (w * x).log() * 1e300, 1.0)
    replay.forward([1.0])
    replay.backward()
    assert w.grad == math.inf
    with detect_anomaly():
        replay.forward([1.0])
        with pytest.raises(NonFiniteError, match=r"backward.*log\(1e-170\).*sample 0"):
            replay.backward()


@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_under_detect_anomaly_names_the_op_and_still_restores_the_model(engine: str) -> None:
    """x = 1e200, t = 0, w = 1e-200, η = 1: epoch 1 gives o = 1 (finite), ∂E/∂w = 2·o·x = 2e200,
    so w becomes 1e-200 - 2e200 = -2e200 and epoch 2 computes w·x = -2e400 -> -inf. The anomaly
    names that product; the trainer still hands back w = 1e-200, b = 0 (the last finite model)."""
    model = line_model(1e-200, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=1.0), mode="batch", engine=engine)
    # (eager messages carry the labels, traced ones the sample index)
    message = r"diverged at epoch 2, batch 1: anomaly in forward: mul\((L1.N0.w1=)?-2e\+200, (const=)?1e\+200\)"
    with detect_anomaly(), pytest.raises(NonFiniteError, match=message + ".*restored"):
        trainer.fit([[1e200]], [0.0], epochs=5, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[1e-200]], "layers.0.bias": [0.0]}


# Every way of making a node, fed one infinite input (made before the block, where the engine
# follows IEEE-754): under detect_anomaly each must refuse its non-finite result. This guards
# the fast paths of the engine, which skip the check when anomaly detection is off.
MAKERS_OF_NON_FINITE = {
    "add": lambda big: big + 1.0,
    "radd": lambda big: 1.0 + big,
    "sub": lambda big: big - 1.0,
    "rsub": lambda big: 1.0 - big,
    "mul": lambda big: big * 2.0,
    "rmul": lambda big: 2.0 * big,
    "div": lambda big: big / 2.0,
    "rdiv-by-tiny": lambda big: 1.0 / Value(5e-324),  # 2e323 overflows to inf
    "div-by-tiny": lambda big: Value(1.0) / 5e-324,
    "neg": lambda big: -big,
    "abs": lambda big: abs(-big),
    "exp": lambda big: big.exp(),
    "log": lambda big: big.log(),
    "sqrt": lambda big: big.sqrt(),
    "relu": lambda big: big.relu(),
    "leaky_relu": lambda big: big.leaky_relu(0.1),
    "softplus": lambda big: big.softplus(),
    "pow-number": lambda big: big**2,
    "pow-value": lambda big: big ** Value(2.0),
    "sum_values": lambda big: sum_values([big, Value(1.0)]),
}


@pytest.mark.parametrize("make", MAKERS_OF_NON_FINITE.values(), ids=list(MAKERS_OF_NON_FINITE))
def test_every_operation_is_checked_under_detect_anomaly(make) -> None:
    big = Value(1e308, label="big") * 10.0  # inf
    assert not math.isfinite(make(big).data)  # off: IEEE-754 lets it through
    with detect_anomaly(), pytest.raises(NonFiniteError, match="anomaly in forward"):
        make(big)


# Each graph has ∂y/∂x >= 2 at the point given (or x reached twice), so back-propagating the seed
# 1e308 overflows in the gradient flowing into x: the backward pass must name it under detect_anomaly.
GRADIENTS_OVERFLOWING = {
    "add-twice": (1.0, lambda x: x + x),
    "sub": (1.0, lambda x: x - (-x)),
    "sum_values-twice": (1.0, lambda x: sum_values([x, x])),
    "mul": (1.0, lambda x: x * 2.0),
    "div": (1.0, lambda x: x / 0.5),
    "pow-number": (1.0, lambda x: x**2),  # 2x
    "pow-value-exponent": (1.0, lambda x: Value(10.0) ** x),  # 10^x·log 10
    "exp": (1.0, lambda x: x.exp()),  # e
    "log": (0.5, lambda x: x.log()),  # 1/x = 2
    "sqrt": (0.01, lambda x: x.sqrt()),  # 1/(2√x) = 5
    "tanh-and-x": (0.0, lambda x: x.tanh() + x),  # 1 - tanh²(0) + 1 = 2
}


@pytest.mark.parametrize("point, make", GRADIENTS_OVERFLOWING.values(), ids=list(GRADIENTS_OVERFLOWING))
def test_every_backward_path_is_checked_under_detect_anomaly(point: float, make) -> None:
    x = Value(point, label="x")
    make(x).backward(1e308)
    assert x.grad == math.inf  # off: IEEE-754 lets it through
    with detect_anomaly():
        x = Value(point, label="x")
        y = make(x)
        with pytest.raises(NonFiniteError, match=r"anomaly in backward.*into x"):
            y.backward(1e308)


# -- traced replay of a parameter made non-finite after tracing (issue 11, item 21) ---------

NON_FINITE_PARAMETER_GRAPHS = {
    # w·x alone on its level: replayed node by node (a chain of the tape).
    "chain": lambda w: lambda x: (w * x[0]).sigmoid(),
    # three products on one level: replayed as one group.
    "group": lambda w: lambda x: sum_values([w * x[0], w * x[1], w * x[2]]).sigmoid(),
}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("graph", NON_FINITE_PARAMETER_GRAPHS.values(), ids=list(NON_FINITE_PARAMETER_GRAPHS))
def test_traced_replay_stops_at_a_parameter_made_non_finite_like_eager(graph, bad: float) -> None:
    """After ``w.data = nan`` (or ±inf) eager mode under detect_anomaly raises at w·x (nan·1 = nan,
    ±inf·1 = ±inf by IEEE-754); the replay must raise there too, naming the op, w and the sample,
    and leave w.grad alone. (Before the fix it returned nan, or σ(±inf) = 1.0 / 0.0 with zero gradients.)"""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    w = Value(0.5, label="w")
    fn = graph(w)
    replay = trace(fn, [1.0, 1.0, 1.0])
    w.data = bad
    with detect_anomaly():
        with pytest.raises(NonFiniteError, match=r"anomaly in forward: mul\(w="):
            fn([Value(1.0)] * 3)  # the eager reference
        message = rf"anomaly in forward: mul\({bad}, 1\.0\) = {bad} .*sample 0.*inputs: w, x[123]"
        with pytest.raises(NonFiniteError, match=message):
            replay.forward([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    assert w.grad == 0.0


def test_traced_replay_names_the_first_sample_that_goes_non_finite() -> None:
    """w·x = 1e300·1e10 overflows to inf (IEEE-754) in sample 2 only: the report names sample 2."""
    pytest.importorskip("numpy", reason="tracing needs numpy (pip install 'textbook-autograd[fast]')")
    from autograd.trace import trace

    w = Value(1e300, label="w")
    replay = trace(lambda x: (w * x[0]).tanh(), [1.0])
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"mul\(1e\+300, 10000000000\.0\) = inf .*sample 2"):
        replay.forward([[1.0], [-1.0], [1e10]])


# Overflow from finite inputs: off, IEEE-754's inf (these used to raise NumericOverflowError
# for exp and pow); under detect_anomaly, NonFiniteError naming the op. By hand: e^1000,
# (1e200)², 2^2000 and 1e200^2 all exceed the largest float, 1.8e308.
OVERFLOWS_FROM_FINITE = {
    "exp": lambda: Value(1000.0, label="x").exp(),
    "pow2": lambda: Value(1e200, label="x") ** 2,
    "rpow2": lambda: 2.0 ** Value(2000.0, label="x"),
    "pow": lambda: Value(1e200, label="x") ** Value(2.0, label="y"),
}


@pytest.mark.parametrize("make", OVERFLOWS_FROM_FINITE.values(), ids=list(OVERFLOWS_FROM_FINITE))
def test_overflow_from_finite_inputs_is_inf_and_stops_under_detect_anomaly(make) -> None:
    assert make().data == math.inf
    name = [key for key, value in OVERFLOWS_FROM_FINITE.items() if value is make][0]
    with detect_anomaly(), pytest.raises(NonFiniteError, match=rf"anomaly in forward: {name}\(x="):
        make()


def test_a_nan_written_into_a_parameter_stops_at_the_first_operation() -> None:
    """relu used to turn NaN into 0, hiding it from the anomaly check downstream."""
    w = Value(1.0, label="w")
    w.data = math.nan
    assert math.isnan(w.relu().data)
    with detect_anomaly(), pytest.raises(NonFiniteError, match=r"relu\(w=nan\) = nan"):
        w.relu()
