"""Trainer(engine="auto"): traced replay where the model and loss can be traced, eager otherwise,
with one line saying which and why; the two engines give the same training to 1e-10."""

from __future__ import annotations

import pytest
from conftest import require_module

import nn
from autograd.errors import InvalidArgumentError

X, Y = nn.data.moons(24, noise=0.1, seed=0)


def fit(engine, loss=nn.losses.mse, output_activation="sigmoid", targets=Y):
    model = nn.MLP(2, [4, 1], output_activation=output_activation, seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), loss, batch_size=8,
                         engine=engine)  # fmt: skip
    line = trainer.choose_engine(X, targets)
    history = trainer.fit(X, targets, epochs=3, progress=False)
    return trainer, line, [p.data for p in model.parameters()], history.loss


def test_auto_traces_a_model_and_loss_that_can_be_traced_with_the_same_results():
    require_module("numpy", extra="fast")
    trainer, line, params, losses = fit("auto")
    assert trainer.engine == "traced" and line.startswith("engine: traced (")
    _, line, eager_params, eager_losses = fit("eager")
    assert line == "engine: eager (a graph of Values for every sample)"
    assert params == pytest.approx(eager_params, abs=1e-10) and losses == pytest.approx(eager_losses, abs=1e-10)


def branching_loss(prediction, target):
    """mse weighted by a Python branch on the target's number: tracing refuses it."""
    first = target[0] if isinstance(target, list) else target
    return nn.losses.mse(prediction, target) * (1.0 if float(first) > 0.5 else 2.0)


def test_auto_falls_back_to_eager_for_a_loss_that_branches_on_values_and_says_why():
    """float(t) inside the loss would freeze the traced example's branch: tracing refuses it."""
    require_module("numpy", extra="fast")
    trainer, line, params, losses = fit("auto", branching_loss)
    assert trainer.engine == "eager"
    assert line.startswith("engine: eager (a graph of Values for every sample; the model and loss cannot be traced: ")
    _, _, eager_params, eager_losses = fit("eager", branching_loss)
    assert params == eager_params and losses == eager_losses


def test_an_unknown_engine_names_the_choices():
    model = nn.MLP(2, [1], seed=0)
    with pytest.raises(InvalidArgumentError, match=r"engine must be one of \['eager', 'traced', 'auto'\], got 'jit'"):
        nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), engine="jit")
