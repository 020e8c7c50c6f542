"""Threads: `no_grad` (and the gradient state it guards) belongs to the thread that
set it, and training two models in two threads gives, bit for bit, what two
sequential runs give (the sequential runs are the reference).

The interpreter is told to switch threads very often (`sys.setswitchinterval`), so
that the threads really interleave inside the engine.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import nn
from autograd import Value, is_grad_enabled, no_grad
from autograd.mode import overrides
from nn.trainer import ENGINES

TIMEOUT = 60


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def run_in_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Start all targets together (a barrier), wait for them, re-raise the first failure."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def runner(k: int, target: Callable[[], Any]) -> None:
        try:
            barrier.wait(TIMEOUT)
            results[k] = target()
        except BaseException as exc:  # handed to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(k, t)) for k, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_leaving_no_grad_in_one_thread_does_not_end_it_in_another() -> None:
    """A enters no_grad; B enters and leaves no_grad while A is still inside: A must
    still record nothing, and B records again (each thread restores its own state)."""
    a_inside, b_done = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def thread_a() -> None:
        with no_grad():
            a_inside.set()
            assert b_done.wait(TIMEOUT)
            seen["a_enabled"] = is_grad_enabled()
            seen["a_parents"] = (Value(1.0) * 2).parents
        seen["a_after"] = is_grad_enabled()

    def thread_b() -> None:
        assert a_inside.wait(TIMEOUT)
        seen["b_before"] = is_grad_enabled()
        with no_grad():
            seen["b_inside"] = is_grad_enabled()
        seen["b_parents"] = len((Value(1.0) * 2).parents)
        b_done.set()

    run_in_threads(thread_a, thread_b)
    assert seen == {
        "a_enabled": False,
        "a_parents": (),
        "a_after": True,
        "b_before": True,
        "b_inside": False,
        "b_parents": 2,
    }


def test_many_threads_toggling_no_grad_each_see_only_their_own_state() -> None:
    """Eight threads enter and leave (nested) no_grad blocks 2000 times, checking at every
    step that recording matches their own nesting depth."""

    def toggler(depth_pattern: tuple[int, ...]) -> Callable[[], int]:
        def run() -> int:
            checks = 0
            for i in range(2000):
                depth = depth_pattern[i % len(depth_pattern)]
                blocks = [no_grad() for _ in range(depth)]
                for block in blocks:
                    block.__enter__()
                recorded = (Value(1.0) + 1).parents != ()
                assert recorded == (depth == 0) and is_grad_enabled() == (depth == 0)
                for block in reversed(blocks):
                    block.__exit__(None, None, None)
                assert is_grad_enabled()
                checks += 1
            return checks

        return run

    patterns = [(0,), (1,), (2,), (0, 1), (1, 0, 2), (3, 0), (0, 0, 1), (2, 1, 0)]
    assert run_in_threads(*(toggler(p) for p in patterns)) == [2000] * len(patterns)
    # The count that lets every operation skip the thread-local switches is back to zero.
    assert overrides.active == 0


def test_switch_count_returns_to_zero_when_blocks_raise() -> None:
    """no_grad, detect_anomaly and trace each leave their switches, and the count, on error."""
    from autograd import detect_anomaly, trace

    for block in (no_grad, detect_anomaly):
        with pytest.raises(RuntimeError), block():
            assert overrides.active == 1
            raise RuntimeError("boom")
        assert overrides.active == 0

    def bad(x: Value) -> Value:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        trace(bad, [0.0])
    assert overrides.active == 0
    assert (Value(1.0) * 2).parents != ()


def test_backward_in_parallel_threads_on_separate_graphs() -> None:
    """Each thread: y = Σ_k sin(k·x)·x over k = 1..200; dy/dx = Σ_k [k·cos(k·x)·x + sin(k·x)]."""

    def differentiate(x0: float) -> Callable[[], tuple[float, float]]:
        def run() -> tuple[float, float]:
            x = Value(x0)
            y = sum((x * k).sin() * x for k in range(1, 201))
            y.backward()
            expected = sum(k * math.cos(k * x0) * x0 + math.sin(k * x0) for k in range(1, 201))
            return x.grad, expected

        return run

    for grad_value, expected in run_in_threads(*(differentiate(0.1 * i) for i in range(1, 7))):
        assert grad_value == pytest.approx(expected, rel=1e-10, abs=1e-10)


def train(model_seed: int, mode: str, engine: str = "eager") -> tuple[dict[str, Any], list[float]]:
    """Train a small MLP on 40 moons points for 3 epochs; the model's state and the loss history."""
    X, y = nn.data.moons(40, noise=0.1, seed=model_seed)
    model = nn.MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=model_seed)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    trainer = nn.Trainer(model, optimizer, mode=mode, batch_size=8, seed=model_seed, engine=engine)
    history = trainer.fit(X, y, epochs=3, progress=False)
    return model.state_dict(), history.loss


@pytest.mark.parametrize("engine", ENGINES)
def test_two_models_trained_in_two_threads_match_sequential_runs(engine: str) -> None:
    sequential = [train(1, "minibatch", engine), train(2, "online", engine)]
    parallel = run_in_threads(lambda: train(1, "minibatch", engine), lambda: train(2, "online", engine))
    assert parallel == sequential  # exact: same floats in the same order


def test_training_is_unaffected_by_another_thread_evaluating_under_no_grad() -> None:
    """While one thread trains, another runs a different model inside no_grad the whole time."""
    reference = train(3, "batch")
    stop = threading.Event()
    other = nn.MLP(2, [4, 1], seed=9)

    def evaluate_until_stopped() -> int:
        calls = 0
        with no_grad():
            while not stop.is_set():
                assert other([0.1, 0.2]).parents == ()  # type: ignore[union-attr]
                calls += 1
        return calls

    def train_then_stop() -> tuple[dict[str, Any], list[float]]:
        try:
            return train(3, "batch")
        finally:
            stop.set()

    trained, evaluations = run_in_threads(train_then_stop, evaluate_until_stopped)
    assert trained == reference
    assert evaluations > 0


def test_backward_in_eight_threads_through_one_shared_subgraph() -> None:
    """Eight threads each put their own head on one shared subgraph and call backward() 20 times.

    Shared: leaves w = 0.3, x = 2.0 and a chain of interior nodes u_0 = w·x,
    u_{i+1} = tanh(u_i) for i < 100, ending in s = u_100. Thread k's head is
    y_k = k·s + sin(s). By hand (chain rule, worked below in plain floats):
        ∂y_k/∂s = k + cos(s),   ∂s/∂u_0 = Π_i (1 - u_{i+1}²),
        ∂y_k/∂w = ∂y_k/∂s · ∂s/∂u_0 · x,   ∂y_k/∂x = ∂y_k/∂s · ∂s/∂u_0 · w.
    Leaves accumulate: after all passes w.grad = 20 · Σ_k ∂y_k/∂w (and likewise x). Each
    thread's own interior node h_k = k·s reads ∂y_k/∂h_k = 1 right after its pass, and the
    shared node s holds ∂y_k/∂s of one of the threads (the latest pass through it), never
    a mixture. (Before the fix every pass reset the shared nodes' .grad to 0 while the
    other threads were adding into them.)
    """
    w, x = Value(0.3, label="w"), Value(2.0, label="x")
    s = w * x
    u, ds_du0 = 0.6, 1.0
    for _ in range(100):
        s = s.tanh()
        u = math.tanh(u)
        ds_du0 *= 1 - u * u
    passes, threads = 20, range(1, 9)

    def dy_ds(k: int) -> float:
        return k + math.cos(u)

    def head(k: int) -> Callable[[], list[float]]:
        def run() -> list[float]:
            seen = []
            for _ in range(passes):
                h = s * k
                y = h + s.sin()
                y.backward()
                seen.append(h.grad)
            return seen

        return run

    for seen in run_in_threads(*(head(k) for k in threads)):
        assert seen == [1.0] * passes
    expected_w = passes * sum(dy_ds(k) * ds_du0 * 2.0 for k in threads)
    expected_x = passes * sum(dy_ds(k) * ds_du0 * 0.3 for k in threads)
    assert w.grad == pytest.approx(expected_w, rel=1e-12)
    assert x.grad == pytest.approx(expected_x, rel=1e-12)
    assert any(s.grad == pytest.approx(dy_ds(k), rel=1e-12) for k in threads)


def test_traced_replays_in_eight_threads_add_into_one_shared_parameter() -> None:
    """Eight threads, each with its own trace of y = tanh(w·x) over one shared w = 0.5, replay
    the batch x = [1, 2] and call backward 20 times. By hand, one replay adds
    Σ_p (1 - tanh²(w·x_p))·x_p into w.grad; all of them 8·20 times that."""
    pytest.importorskip("numpy", reason="tracing needs numpy")
    from autograd import trace

    w = Value(0.5, label="w")
    one_replay = sum((1 - math.tanh(0.5 * x) ** 2) * x for x in (1.0, 2.0))

    def replay() -> None:
        step = trace(lambda x: (w * x[0]).tanh(), [0.0])
        for _ in range(20):
            step.forward([[1.0], [2.0]])
            step.backward()

    run_in_threads(*[replay] * 8)
    assert w.grad == pytest.approx(8 * 20 * one_replay, rel=1e-12)
