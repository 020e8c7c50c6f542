"""Trainer(scheduler=..., clip=...): a learning-rate schedule stepped once per epoch and
gradient-norm clipping between backward and step, as in PyTorch's usual loop.

Expected numbers come from PyTorch (float64, same weights, the loop written out in the
test) or are worked by hand in the docstrings.
"""

from __future__ import annotations

import math

import pytest

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError

X10 = [[0.1 * i, (-1) ** i * 0.2 * i] for i in range(10)]
Y10 = [float(i % 3 == 0) for i in range(10)]


def torch_copy(torch, model):
    """The same 2-3-1 sigmoid MLP in PyTorch, float64, with the same weights."""
    state = model.state_dict()
    layers = []
    for i, size in enumerate(model.nouts):
        linear = torch.nn.Linear(model.layers[i].nin, size).double()
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(state[f"layers.{i}.weight"], dtype=torch.float64))
            linear.bias.copy_(torch.tensor(state[f"layers.{i}.bias"], dtype=torch.float64))
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def ours_flat(model):
    return [p.data for p in model.parameters()]


def torch_flat(reference):
    """PyTorch's parameters in our order: for each layer, neuron by neuron its weights then its bias."""
    values = []
    for linear in reference[::2]:
        for row, b in zip(linear.weight.tolist(), linear.bias.tolist()):
            values += [*row, b]
    return values


def test_batch_mode_with_clipping_is_torchs_clipped_sgd_step(torch):
    """Each epoch: mean MSE over the 10 samples, backward, clip_grad_norm_(max_norm 0.05), SGD step.
    The gradient norm of this net on this data is about 0.1, so every update is clipped."""
    model = nn.MLP(2, [3, 1], seed=1)
    reference = torch_copy(torch, model)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    trainer = nn.Trainer(model, optimizer, mode="batch", clip=0.05)
    history = trainer.fit(X10, Y10, epochs=3, progress=False)

    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    X, y = torch.tensor(X10, dtype=torch.float64), torch.tensor(Y10, dtype=torch.float64)[:, None]
    norms = []
    for _ in range(3):
        torch_optimizer.zero_grad()
        torch.nn.functional.mse_loss(reference(X), y).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05)))
        torch_optimizer.step()
    assert ours_flat(model) == pytest.approx(torch_flat(reference), abs=1e-12)
    assert history.grad_norm == pytest.approx(norms, rel=1e-12)
    assert all(norm > 0.05 for norm in norms) and history.clipped == [1, 1, 1]


def test_clipping_never_changes_a_gradient_shorter_than_the_limit():
    """clip = 1e6 is far above any gradient norm here: c = min(1, 1e6/(‖g‖ + 1e-6)) = 1, the same run as without."""
    runs = []
    for clip in (None, 1e6):
        model = nn.MLP(2, [3, 1], seed=1)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5), mode="minibatch", batch_size=4, clip=clip)
        history = trainer.fit(X10, Y10, epochs=2, progress=False)
        runs.append(ours_flat(model))
    assert runs[0] == runs[1]
    assert history.clipped == [0, 0] and len(history.grad_norm) == 2


def test_the_scheduler_steps_once_per_epoch_like_torchs_loop(torch):
    """StepLR(step_size=2, γ = 0.1) from η₀ = 0.5: epochs 1, 2 train with 0.5, epochs 3, 4 with 0.05
    (η(t) = η₀·γ^⌊t/2⌋ for the t = epoch − 1 steps taken before it); after 4 steps η = 0.005.

    Adam, as SGD's momentum buffer keeps the η of past updates here, not in PyTorch (see nn.optim.SGD).
    """
    model = nn.MLP(2, [3, 1], seed=1)
    reference = torch_copy(torch, model)
    optimizer = nn.optim.Adam(model.parameters(), lr=0.5)
    scheduler = nn.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    trainer = nn.Trainer(model, optimizer, mode="minibatch", batch_size=5, shuffle=False, scheduler=scheduler)
    history = trainer.fit(X10, Y10, epochs=4, progress=False)
    assert history.lr == pytest.approx([0.5, 0.5, 0.05, 0.05], rel=1e-15)
    assert optimizer.lr == pytest.approx(0.005, rel=1e-15) and scheduler.last_epoch == 4

    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=0.5)
    torch_scheduler = torch.optim.lr_scheduler.StepLR(torch_optimizer, step_size=2, gamma=0.1)
    X, y = torch.tensor(X10, dtype=torch.float64), torch.tensor(Y10, dtype=torch.float64)[:, None]
    for _ in range(4):
        for start in (0, 5):  # two mini-batches of 5, in order
            torch_optimizer.zero_grad()
            torch.nn.functional.mse_loss(reference(X[start : start + 5]), y[start : start + 5]).backward()
            torch_optimizer.step()
        torch_scheduler.step()
    assert ours_flat(model) == pytest.approx(torch_flat(reference), abs=1e-12)
    assert optimizer.lr == pytest.approx(torch_scheduler.get_last_lr()[0], rel=1e-15)


def test_history_records_the_learning_rate_of_every_epoch():
    """Without a schedule η is constant; Rprop has no learning rate (its steps adapt), so no entry."""
    model = nn.MLP(2, [3, 1], seed=1)
    history = nn.Trainer(model, nn.optim.Adam(model.parameters(), lr=0.01)).fit(X10, Y10, 3, progress=False)
    assert history.lr == [0.01, 0.01, 0.01] and history.grad_norm == [] and history.clipped == []
    history = nn.Trainer(model, nn.optim.Rprop(model.parameters())).fit(X10, Y10, 2, progress=False)
    assert history.lr == []
    assert set(history.to_dict()) >= {"lr", "grad_norm", "clipped"}


def line(w: float, b: float) -> nn.MLP:
    model = nn.MLP(1, [1], activation="linear", seed=0)
    model.load_state_dict({"layers.0.weight": [[w]], "layers.0.bias": [b]})
    return model


@pytest.mark.parametrize("epochs, where", [(1, "after its last update"), (3, "epoch 2, batch 1")])
def test_a_divergence_restores_the_schedule_with_the_parameters(epochs, where):
    """w = 0.5, b = 0, x = 1e150, t = 0, mse, SGD η₀ = 1e-290, ExponentialLR(γ = 0.5).

    Epoch 1's update is finite (w = 0.5 − 1e10) but the loss after it is (1e160)² = inf. It is
    seen by the final scoring (1 epoch) or by epoch 2's first batch (3 epochs); in both cases the
    scheduler has stepped once (η = 5e-291, last_epoch 1). The last finite state is the one before
    epoch 1's update: w = 0.5, last_epoch 0, η = η₀ = 1e-290.
    """
    model = line(0.5, 0.0)
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-290)
    scheduler = nn.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    trainer = nn.Trainer(model, optimizer, mode="batch", scheduler=scheduler)
    with pytest.raises(NonFiniteError, match=f"diverged at {where if epochs == 3 else 'epoch 1, ' + where}"):
        trainer.fit([[1e150]], [0.0], epochs=epochs, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[0.5]], "layers.0.bias": [0.0]}
    assert scheduler.last_epoch == 0 and optimizer.lr == 1e-290 and scheduler.get_last_lr() == [1e-290]


def test_clip_and_scheduler_are_checked():
    model = nn.MLP(2, [1], seed=0)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    other = nn.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InvalidArgumentError, match=r"clip \(the largest gradient norm\) must be > 0, got 0.0"):
        nn.Trainer(model, optimizer, clip=0)
    with pytest.raises(InvalidArgumentError, match="clip"):
        nn.Trainer(model, optimizer, clip=math.nan)
    with pytest.raises(InvalidTypeError, match="clip"):
        nn.Trainer(model, optimizer, clip="1")
    with pytest.raises(InvalidTypeError, match="scheduler must be an nn.lr_scheduler schedule"):
        nn.Trainer(model, optimizer, scheduler=0.5)
    with pytest.raises(InvalidArgumentError, match="made for another optimizer"):
        nn.Trainer(model, optimizer, scheduler=nn.lr_scheduler.StepLR(other, step_size=1))
