"""Adam with L2 weight decay and AdamW (decoupled), each against torch.optim step by
step to 1e-10 (PyTorch is the independent reference), and AdamW's first step by hand."""

from __future__ import annotations

import pytest
from test_optim import assert_same_trajectory, our_trajectory, torch_trajectory

import nn
from autograd import Value


@pytest.mark.parametrize(
    "kwargs", [{"lr": 0.05, "weight_decay": 0.1}, {"lr": 0.01, "betas": (0.85, 0.99), "weight_decay": 1.0}]
)
def test_adam_with_weight_decay_matches_torch(torch, kwargs):
    assert_same_trajectory(
        our_trajectory(lambda p: nn.optim.Adam(p, **kwargs)),
        torch_trajectory(torch, lambda p: torch.optim.Adam(p, **kwargs)),
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"lr": 0.05, "weight_decay": 0.1}, {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.5}],
)
def test_adamw_matches_torch(torch, kwargs):
    assert_same_trajectory(
        our_trajectory(lambda p: nn.optim.AdamW(p, **kwargs)),
        torch_trajectory(torch, lambda p: torch.optim.AdamW(p, **kwargs)),
    )


def test_adamw_first_step_by_hand():
    """w = 2, g = 0.5, η = 0.1, λ = 0.5: decay 2 − 0.1·0.5·2 = 1.9, then m̂ = g, v̂ = g², so
    the Adam step is −η·g/(|g| + ε) = −0.1·0.5/(0.5 + 1e-8)."""
    w = Value(2.0)
    w.grad = 0.5
    nn.optim.AdamW([w], lr=0.1, weight_decay=0.5).step()
    assert w.data == pytest.approx(1.9 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)


def test_adam_and_adamw_differ_once_weight_decay_is_on():
    """L2 decay goes through the moments in Adam, not in AdamW: the same settings move w differently."""
    adam, adamw = Value(2.0), Value(2.0)
    for w, make in ((adam, nn.optim.Adam), (adamw, nn.optim.AdamW)):
        optimizer = make([w], lr=0.1, weight_decay=0.5)
        for g in (0.5, -0.2, 0.1):
            w.grad = g
            optimizer.step()
    assert abs(adam.data - adamw.data) > 1e-3


def test_adamw_state_dict_round_trip():
    params = [Value(1.0), Value(-2.0)]
    optimizer = nn.optim.AdamW(params, lr=0.05, weight_decay=0.2)
    for p in params:
        p.grad = 0.3
    optimizer.step()
    other = nn.optim.AdamW([Value(1.0), Value(-2.0)])
    other.load_state_dict(optimizer.state_dict())
    assert other.state_dict() == optimizer.state_dict()
    assert other.weight_decay == 0.2
