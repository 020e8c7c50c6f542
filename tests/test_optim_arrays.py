"""Optimizer.step_arrays (the traced Trainer's step on numpy arrays) runs the same update
formula as Optimizer.step (one weight at a time, on the Values): the reference is `step`
itself, the scalar path that tests/test_optim.py checks against PyTorch and by hand.
Elementwise IEEE arithmetic is the same on a float and in an array, so the two must agree
exactly, step by step, buffers included.
"""

from __future__ import annotations

import pytest
from conftest import require_module

import nn
from autograd import Value

np = require_module("numpy", extra="fast")

STEPS = 6

OPTIMIZERS = {
    "sgd": lambda p: nn.optim.SGD(p, lr=0.1),
    "momentum": lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.9),
    "nesterov": lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01),
    "rprop": lambda p: nn.optim.Rprop(p),
    "rprop_clamped": lambda p: nn.optim.Rprop(p, eta_minus=0.3, eta_plus=1.5, step_init=0.5, step_min=0.2,
                                              step_max=0.8),  # fmt: skip
    "adam": lambda p: nn.optim.Adam(p, lr=0.01),
    "adam_weight_decay": lambda p: nn.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    "adamw": lambda p: nn.optim.AdamW(p, lr=0.01, weight_decay=0.05),
}


def gradients(rng, n: int) -> list[list[float]]:
    """STEPS gradient vectors: random signs (so Rprop's signs agree and flip), with exact zeros
    and, for some weights, the same gradient again or its negative."""
    grads = []
    for t in range(STEPS):
        g = rng.standard_normal(n)
        g[rng.random(n) < 0.2] = 0.0
        if t > 0:
            g[:3] = -np.array(grads[-1][:3])  # a sign change for three weights
            g[3:6] = grads[-1][3:6]  # the same sign again
        grads.append(g.tolist())
    return grads


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_the_array_step_equals_the_scalar_step_exactly_step_by_step(make) -> None:
    rng = np.random.default_rng(7)
    start = rng.standard_normal(40).tolist()
    start[10] = 0.0
    params = [Value(w) for w in start]
    scalar = make(params)
    array = make([Value(w) for w in start])
    theta = np.array(start)
    state = {name: np.array(values) for name, values in array.state.items()}
    for t, g in enumerate(gradients(rng, len(start)), start=1):
        for p, gi in zip(params, g):
            p.grad = gi
        scalar.step()
        theta = array.step_arrays(theta, np.array(g), state)
        assert theta.tolist() == [p.data for p in params], f"weights after step {t}"
        for name in scalar.buffers:
            assert state[name].tolist() == scalar.state[name], f"{name} after step {t}"
        assert array.steps == scalar.steps == t


def test_rprop_arrays_take_both_branches() -> None:
    """The sign-dependent branches are exercised: Δ grows (η⁺), shrinks (η⁻, step skipped) and stays."""
    optimizer = nn.optim.Rprop([Value(0.0) for _ in range(3)])
    state = {name: np.array(values) for name, values in optimizer.state.items()}
    theta = np.zeros(3)
    theta = optimizer.step_arrays(theta, np.array([1.0, 1.0, 0.0]), state)
    theta = optimizer.step_arrays(theta, np.array([1.0, -1.0, 2.0]), state)
    # weight 0: same sign, Δ = 0.1·1.2 = 0.12, w = -0.1 - 0.12; weight 1: flipped, Δ = 0.05, no move,
    # g(t-1) := 0; weight 2: previous gradient 0, Δ stays 0.1, w = -0.1.
    assert theta.tolist() == pytest.approx([-0.22, -0.1, -0.1], abs=1e-15)
    assert state["step_size"].tolist() == pytest.approx([0.12, 0.05, 0.1], abs=1e-15)
    assert state["previous_grad"].tolist() == [1.0, 0.0, 2.0]


def test_the_array_step_reads_the_learning_rate_a_scheduler_set() -> None:
    optimizer = nn.optim.SGD([Value(1.0)], lr=0.1)
    scheduler = nn.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    state = {"delta": np.zeros(1)}
    theta = optimizer.step_arrays(np.array([1.0]), np.array([1.0]), state)
    scheduler.step()
    theta = optimizer.step_arrays(theta, np.array([1.0]), state)
    assert theta.tolist() == [1.0 - 0.1 - 0.05]
