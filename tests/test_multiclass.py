"""Multi-class learning end to end, without the Trainer: a small nn.Sequential learns the
three yin-yang classes with softmax cross-entropy and Adam. The loss is traced once
(`autograd.trace`, the class of each sample a traced input) and replayed over the batch;
its first updates equal eager mode's, and held-out argmax accuracy ends far above chance."""

from __future__ import annotations

import copy

import pytest
from conftest import require_module

import nn
from autograd import trace

np = require_module("numpy", extra="fast")


def three_class_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16, seed=0), nn.Tanh(), nn.Linear(16, 3, seed=1))


def argmax_accuracy(model: nn.Sequential, X: list[list[float]], y: list[int]) -> float:
    """The fraction of points whose largest logit is their class."""
    hits = 0
    for x, t in zip(X, y):
        logits = [z.data for z in model(x)]
        hits += logits.index(max(logits)) == t
    return hits / len(y)


def full_batch_adam_steps(model: nn.Sequential, X, y, steps: int, engine: str) -> list[float]:
    """``steps`` Adam updates on the mean cross-entropy of the whole batch; the loss before each."""
    opt = nn.optim.Adam(model.parameters(), lr=0.05)
    traced = trace(lambda x, t: nn.losses.cross_entropy(model(x), t), [0.0, 0.0], 0) if engine == "traced" else None
    history = []
    for _ in range(steps):
        model.zero_grad()
        if traced is not None:
            history.append(float(traced.forward(X, y).mean()))
            traced.backward(1.0 / len(y))
        else:
            loss = nn.losses.cross_entropy([model(x) for x in X], y)
            loss.backward()
            history.append(loss.data)
        opt.step()
    return history


def test_traced_multi_class_steps_equal_eager_steps():
    X, y = nn.data.yin_yang(30, 0.0, seed=5)
    eager_model = three_class_model()
    traced_model = copy.deepcopy(eager_model)
    eager_losses = full_batch_adam_steps(eager_model, X, y, 3, "eager")
    traced_losses = full_batch_adam_steps(traced_model, X, y, 3, "traced")
    assert traced_losses == pytest.approx(eager_losses, rel=1e-12)
    np.testing.assert_allclose(
        [p.data for p in traced_model.parameters()], [p.data for p in eager_model.parameters()], rtol=1e-10, atol=1e-12
    )


def test_a_small_sequential_learns_the_three_yin_yang_classes_with_cross_entropy_and_adam():
    X, y = nn.data.yin_yang(300, 0.0, seed=0)
    X_test, y_test = nn.data.yin_yang(300, 0.0, seed=1)
    model = three_class_model()
    losses = full_batch_adam_steps(model, X, y, 300, "traced")
    # Chance: accuracy 1/3. Untrained, the loss is near log 3 = 1.10 (small logits).
    assert losses[0] == pytest.approx(1.1, abs=0.2) and losses[-1] < 0.3
    assert argmax_accuracy(model, X_test, y_test) > 0.85
