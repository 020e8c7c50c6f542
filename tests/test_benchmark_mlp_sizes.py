"""The MLP-sizes benchmark's guard: its contestants (the Trainer with the traced engine, the replay alone,
the step written by hand in numpy, PyTorch) train alike from the same weights, checked on tiny
sizes. The numpy step is an independent derivation (matrix calculus, in its docstring); PyTorch
is the reference. No timing here."""

from __future__ import annotations

from types import ModuleType

import pytest

from benchmarks import mlp_sizes as bench

pytest.importorskip("numpy")

TINY = [bench.Workload(2, (3, 4), 5), bench.Workload(3, (5, 2), 8)]


@pytest.mark.parametrize("workload", TINY, ids=lambda w: w.name)
def test_traced_trainer_numpy_and_pytorch_give_the_same_losses_step_by_step(
    workload: bench.Workload, torch: ModuleType
) -> None:
    runs = bench.contestants(workload, torch, seed=1)
    assert list(runs) == ["traced", "replay", "numpy", "torch"]
    losses = bench.check_same_losses(runs, steps=3)
    assert len(losses) == 3
    assert losses[2] < losses[0]  # the updates were applied (gradient descent on a smooth loss, small η)


def test_without_pytorch_the_traced_trainer_the_replay_and_numpy_still_agree() -> None:
    runs = bench.contestants(TINY[1], torch=None, seed=2)
    assert list(runs) == ["traced", "replay", "numpy"]
    bench.check_same_losses(runs, steps=2)


def test_the_check_rejects_contestants_whose_losses_differ() -> None:
    workload = TINY[0]
    X, y = bench.make_data(workload)
    weights = bench.weights_of(bench.make_model(workload))
    shifted = [(W, [b + 1e-6 for b in bias]) for W, bias in weights]  # one bias moved: a different model
    runs = {"numpy": bench.numpy_contestant(weights, X, y), "shifted": bench.numpy_contestant(shifted, X, y)}
    with pytest.raises(AssertionError, match="step 1: numpy gives loss"):
        bench.check_same_losses(runs)


def test_the_workloads_are_the_four_sizes_of_issue_14() -> None:
    assert [(w.name, w.samples) for w in bench.WORKLOADS] == [
        ("2-16-16-1", 100),
        ("2-64-64-1", 1000),
        ("16-64-64-1", 1000),
        ("64-128-128-1", 256),
    ]
