"""Multi-class training: loss=nn.losses.cross_entropy takes class indices 0..K-1 as
targets for K logits; accuracy is argmax accuracy and predict returns classes.
References: PyTorch (float64, same weights) and a small case worked by hand.
"""

from __future__ import annotations

import math

import pytest
from conftest import require_module

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError


def net(seed: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 6, seed=seed), nn.Tanh(), nn.Linear(6, 3, seed=seed + 1))


def torch_twin(torch, model):
    twin = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    twin.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in model.state_dict().items()})
    return twin


def test_batch_mode_on_three_spirals_is_torchs_cross_entropy_sgd_step(torch):
    X, y = nn.data.spiral(30, noise=0.0, seed=0, classes=3)
    assert set(y) == {0, 1, 2}
    model = net()
    twin = torch_twin(torch, model)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9), nn.losses.cross_entropy,
                         mode="batch")  # fmt: skip
    history = trainer.fit(X, y, epochs=3, progress=False)
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.5, momentum=0.9)
    inputs, targets = torch.tensor(X, dtype=torch.float64), torch.tensor(y)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(twin(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    state = twin.state_dict()
    for key, value in model.state_dict().items():
        assert torch.tensor(value).flatten().tolist() == pytest.approx(state[key].flatten().tolist(), abs=1e-10), key
    assert history.loss == pytest.approx(losses, abs=1e-12)
    assert len(history.accuracy) == 3


def test_accuracy_is_argmax_accuracy_and_predict_gives_classes(torch):
    """Logits z = W·x with W = [[1, 0], [0, 1], [-1, -1]], no bias:
    x = (2, 0) -> (2, 0, -2): class 0;  x = (0, 2) -> (0, 2, -2): class 1;
    x = (-1, -1) -> (-1, -1, 2): class 2;  x = (1, 0.5) -> (1, 0.5, -1.5): class 0.
    Targets 0, 1, 2, 1: three of four right. The loss is PyTorch's cross_entropy of these logits."""
    model = nn.Sequential(nn.Linear(2, 3, bias=False))
    model.load_state_dict({"0.weight": [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]})
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), loss=nn.losses.cross_entropy)
    X, y = [[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [1.0, 0.5]], [0, 1, 2, 1]
    scores = trainer.evaluate(X, y)
    logits = [[2.0, 0.0, -2.0], [0.0, 2.0, -2.0], [-1.0, -1.0, 2.0], [1.0, 0.5, -1.5]]
    logits = torch.tensor(logits, dtype=torch.float64)
    expected = float(torch.nn.functional.cross_entropy(logits, torch.tensor(y)))
    assert scores == {"loss": pytest.approx(expected, abs=1e-15), "accuracy": 0.75}
    assert trainer.predict(X) == [0, 1, 2, 0]
    assert trainer.evaluate(X, [0.0, 1.0, 2.0, 1.0]) == scores  # labels as floats, e.g. from numpy


def test_the_traced_engine_trains_multiclass_like_eager():
    require_module("numpy", extra="fast")
    X, y = nn.data.yin_yang(40, seed=0)
    runs = {}
    for engine in ("eager", "traced"):
        model = net(3)
        trainer = nn.Trainer(model, nn.optim.Adam(model.parameters(), lr=0.05), nn.losses.cross_entropy,
                             batch_size=8, engine=engine)  # fmt: skip
        history = trainer.fit(X, y, epochs=3, validation=(X[:10], y[:10]), progress=False)
        runs[engine] = ([p.data for p in model.parameters()], history, trainer.predict(X))
    (eager, h_eager, p_eager), (traced, h_traced, p_traced) = runs["eager"], runs["traced"]
    assert traced == pytest.approx(eager, abs=1e-10)
    for series in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert getattr(h_traced, series) == pytest.approx(getattr(h_eager, series), abs=1e-10), series
    assert p_traced == p_eager


@pytest.mark.parametrize(
    "targets, error, message",
    [
        ([0, 1, 3], InvalidArgumentError, r"y\[2\] is 3, not a class index 0..2 \(one per output of the model\)"),
        ([0, 1.5, 2], InvalidArgumentError, r"y\[1\] is 1.5, not a class index"),
        ([0, -1, 2], InvalidArgumentError, r"y\[1\] is -1, not a class index"),
        ([0, "1", 2], InvalidTypeError, r"y\[1\] must be a class index \(cross_entropy's targets\), got str"),
        ([0, [0.0, 1.0, 0.0], 2], InvalidTypeError, r"y\[1\] must be a class index"),
        ([0, math.nan, 2], InvalidArgumentError, r"y\[1\]"),
    ],
)
def test_targets_that_are_not_class_indices_are_clear_errors(targets, error, message):
    model = net()
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), loss=nn.losses.cross_entropy)
    with pytest.raises(error, match=message):
        trainer.fit([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], targets, epochs=1, progress=False)


def test_one_output_cannot_be_a_class_distribution():
    model = nn.Sequential(nn.Linear(2, 1))
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), loss=nn.losses.cross_entropy)
    with pytest.raises(InvalidArgumentError, match="not a class index 0..0"):
        trainer.fit([[0.0, 0.0], [1.0, 1.0]], [0, 1], epochs=1, progress=False)


def test_the_traced_form_of_cross_entropy_subtracts_each_samples_own_maximum(torch):
    """Traced at logits (0, 0, 0), replayed at (1000, -1000, 0) with class 2: a maximum frozen at 0
    would overflow e^1000; the replay gives PyTorch's loss, log(e^1000 + e^-1000 + 1) - 0 = 1000."""
    np = require_module("numpy", extra="fast")
    from autograd import trace
    from nn.trainer import _one_hot_cross_entropy

    replay = trace(_one_hot_cross_entropy, [0.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    logits = [[1000.0, -1000.0, 0.0], [1.0, 2.0, 3.0]]
    got = replay.forward(np.array(logits), np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits, dtype=torch.float64), torch.tensor([2, 0]),
                                                 reduction="none")  # fmt: skip
    assert got.tolist() == pytest.approx(expected.tolist(), rel=1e-15)
