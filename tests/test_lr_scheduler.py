"""Learning-rate schedules, each compared with torch.optim.lr_scheduler's learning
rates over 100 steps (PyTorch is the independent reference)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import nn
from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError
from nn.optim import lr_scheduler

SCHEDULES: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    # name: (ours given an optimizer, torch's given (torch, optimizer))
    "StepLR": (lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
               lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "ExponentialLR": (lambda o: lr_scheduler.ExponentialLR(o, gamma=0.97),
                      lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.97)),
    "LinearLR": (lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=40),
                 lambda t, o: t.optim.lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=40)),
    "LinearLR decay to 0": (lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=100),
                            lambda t, o: t.optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.0,
                                                                       total_iters=100)),
    "CosineAnnealingLR": (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
                          lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_learning_rates_equal_pytorch_over_100_steps(name: str, torch) -> None:
    ours_of, theirs_of = SCHEDULES[name]
    optimizer = nn.optim.SGD([Value(1.0)], lr=0.1, momentum=0.9)
    ours = ours_of(optimizer)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    theirs = theirs_of(torch, reference)
    assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
    for step in range(100):
        reference.step()
        theirs.step()
        ours.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15), f"step {step}"
        assert optimizer.lr == ours.get_last_lr()[0]


def test_step_lr_by_hand() -> None:
    """η₀ = 1, γ = 0.1, step_size = 2: 1, 1, 0.1, 0.1, 0.01 (worked by hand)."""
    optimizer = nn.optim.SGD([Value(1.0)], lr=1.0)
    schedule = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    seen = [schedule.get_last_lr()[0]]
    for _ in range(4):
        schedule.step()
        seen.append(optimizer.lr)
    assert seen == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01], rel=1e-15)


def test_a_schedule_resumes_from_its_state_dict() -> None:
    optimizer = nn.optim.Adam([Value(1.0)], lr=0.01)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for _ in range(4):
        schedule.step()
    saved = schedule.state_dict()
    other = nn.optim.Adam([Value(1.0)], lr=0.5)
    resumed = lr_scheduler.CosineAnnealingLR(other, T_max=10)
    resumed.load_state_dict(saved)
    assert other.lr == optimizer.lr
    schedule.step()
    resumed.step()
    assert other.lr == optimizer.lr


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda o: lr_scheduler.StepLR(o, step_size=0), InvalidArgumentError, "step_size"),
        (lambda o: lr_scheduler.StepLR(o, step_size=1.5), InvalidTypeError, "step_size"),
        (lambda o: lr_scheduler.ExponentialLR(o, gamma=float("nan")), InvalidArgumentError, "gamma"),
        (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), InvalidArgumentError, "start_factor"),
        (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), InvalidArgumentError, "T_max"),
        (lambda o: lr_scheduler.StepLR(object(), step_size=1), InvalidTypeError, "learning rate"),
    ],
)
def test_bad_arguments_are_named(make: Callable[[Any], Any], error: type, words: str) -> None:
    optimizer = nn.optim.SGD([Value(1.0)], lr=0.1)
    with pytest.raises(error, match=words):
        make(optimizer)
