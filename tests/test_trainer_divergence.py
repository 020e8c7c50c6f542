"""Trainer.fit stops on every non-finite number and hands back a consistent state.

Whatever the loss and wherever the NaN or infinity appears (a prediction, the loss,
a gradient, the parameters after any update including the last, the validation
pass), fit raises NonFiniteError after restoring the last parameters that gave a
finite loss and finite gradients together with the optimizer's state at that point,
and the history holds only complete, finite epochs. Expected states are worked by
hand in each test (IEEE arithmetic) or are the untouched starting state.
"""

from __future__ import annotations

import math

import pytest

import nn
from autograd.errors import InvalidArgumentError, NonFiniteError
from nn import cli


def line(w: float, b: float, activation: str = "linear") -> nn.MLP:
    model = nn.MLP(1, [1], activation=activation, seed=0)
    model.load_state_dict({"layers.0.weight": [[w]], "layers.0.bias": [b]})
    return model


def two_inputs(w1: float, w2: float, b: float) -> nn.MLP:
    model = nn.MLP(2, [1], activation="sigmoid", seed=0)
    model.load_state_dict({"layers.0.weight": [[w1, w2]], "layers.0.bias": [b]})
    return model


def assert_history_is_complete_and_finite(history: nn.History) -> None:
    lengths = {len(history.loss), len(history.updates), len(history.epoch_time)}
    if history.val_loss:
        lengths.add(len(history.val_loss))
    assert len(lengths) == 1, history
    for series in (history.loss, history.accuracy, history.val_loss, history.val_accuracy):
        assert all(math.isfinite(v) for v in series)


@pytest.mark.parametrize("engine", ["eager", "traced"])
def test_a_nan_prediction_with_binary_cross_entropy_restores_parameters_and_momentum(engine):
    """Weights (1e308, 1e308), bias 0, online, no shuffling, SGD η = 1e-300, α = 0.5.

    Sample 1, x = (0.1, -0.1), t = 0: net = 1e307 - 1e307 = 0, p = σ(0) = 0.5, and
    ∂E/∂net = (p - t)/(p(1 - p)) · p(1 - p) = 0.5, so ∂E/∂w = 0.5·x (±5e-2, negligible
    beside 1e308 after η) and ∂E/∂b = 0.5: Δb = -η·0.5 = -5e-301, b = -5e-301.
    Sample 2, x = (0.2, -0.2), t = 1: net = -5e-301, p = 0.5 - tiny, finite loss, and a
    second update is taken. Sample 3, x = (2, -2): net = 2e308 - 2e308 = inf - inf = NaN,
    a NaN prediction. The last state with a finite loss is the one sample 2 saw: b = -5e-301,
    the momentum buffer Δb(1) = -5e-301, one step taken.
    """
    if engine == "traced":
        pytest.importorskip("numpy", reason="traced replay needs numpy (extra `fast`)")
    model = two_inputs(1e308, 1e308, 0.0)
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-300, momentum=0.5)
    trainer = nn.Trainer(
        model, optimizer, loss=nn.losses.binary_cross_entropy, mode="online", shuffle=False, engine=engine
    )
    X = [[0.1, -0.1], [0.2, -0.2], [2.0, -2.0]]
    with pytest.raises(NonFiniteError, match=r"diverged at epoch 1, batch 3: .*prediction is nan.*restored"):
        trainer.fit(X, [0.0, 1.0, 1.0], epochs=1, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[1e308, 1e308]], "layers.0.bias": [-5e-301]}
    assert optimizer.steps == 1
    assert optimizer.state["delta"][2] == -5e-301
    assert trainer.history.loss == [] and trainer.history.stopped_reason == "diverged at epoch 1, batch 3"


def test_a_relu_net_that_overflows_in_the_validation_pass_is_restored_with_a_consistent_history():
    """The second review's example: SGD η = 1e60 on moons with validation, batch mode.

    Epoch 1 takes one update to weights near 1e58 (finite loss, finite validation loss);
    epoch 2's update makes the validation outputs overflow. The state restored is the one
    epoch 2's update started from: the model and optimizer after exactly one update, i.e.
    what a separate run of one epoch ends with.
    """
    X, y = nn.data.moons(60, noise=0.1, seed=0)
    X_train, X_test, y_train, y_test = nn.data.train_test_split(X, y, 0.25, seed=0)

    def run(epochs):
        model = nn.MLP(2, [4, 1], activation="relu", output_activation="linear", seed=0)
        optimizer = nn.optim.SGD(model.parameters(), lr=1e60, momentum=0.9)
        trainer = nn.Trainer(model, optimizer, mode="batch")
        return trainer, lambda: trainer.fit(X_train, y_train, epochs, validation=(X_test, y_test), progress=False)

    trainer, fit = run(3)
    with pytest.raises(NonFiniteError, match="diverged at epoch 2, after its last update: on the validation set"):
        fit()
    assert_history_is_complete_and_finite(trainer.history)
    assert len(trainer.history.loss) == 1
    one_epoch, fit_one = run(1)
    fit_one()
    assert trainer.model.state_dict() == one_epoch.model.state_dict()
    assert trainer.optimizer.state_dict() == one_epoch.optimizer.state_dict()
    assert math.isfinite(trainer.evaluate(X_test, y_test)["loss"])


def test_adam_with_the_largest_learning_rate_leaves_model_and_optimizer_untouched():
    """Adam's first step moves each weight by about η·sign(g) = ±1.7e308 (m̂/√v̂ = ±1 at t = 1):
    the weights stay finite, the next predictions do not, and the only state with a finite
    loss is the starting one."""
    X, y = nn.data.moons(40, noise=0.1, seed=0)
    model = nn.MLP(2, [4, 1], activation="relu", output_activation="linear", seed=0)
    start = model.state_dict()
    optimizer = nn.optim.Adam(model.parameters(), lr=1.7e308)
    trainer = nn.Trainer(model, optimizer, mode="batch")
    with pytest.raises(NonFiniteError, match="training diverged at epoch 2, batch 1: a prediction is inf"):
        trainer.fit(X, y, epochs=2, progress=False)
    assert model.state_dict() == start
    assert optimizer.steps == 0 and optimizer.state == {"m": [0.0] * 17, "v": [0.0] * 17}  # 2·4 + 4 + 4 + 1 parameters
    assert_history_is_complete_and_finite(trainer.history)


@pytest.mark.parametrize("engine", ["eager", "traced"])
def test_the_last_update_is_checked_too(engine):
    """w = 0.5, b = 0, one sample x = 1e150, t = 0, mse, one epoch, SGD η = 1e-290, α = 0.5.

    Before the update: o = 5e149, E = o² = 2.5e299 (finite), ∂E/∂w = 2·o·x = 1e300, ∂E/∂b = 2o
    = 1e150 (finite). The update gives w = 0.5 - 1e10 (finite) and then o = -1e160, E = 1e320:
    inf. No later batch would see it; fit must, and put back w = 0.5, b = 0 and the zero buffers.
    """
    if engine == "traced":
        pytest.importorskip("numpy", reason="traced replay needs numpy (extra `fast`)")
    model = line(0.5, 0.0)
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-290, momentum=0.5)
    trainer = nn.Trainer(model, optimizer, mode="batch", engine=engine)
    with pytest.raises(NonFiniteError, match="diverged at epoch 1, after its last update: on the training set"):
        trainer.fit([[1e150]], [0.0], epochs=1, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[0.5]], "layers.0.bias": [0.0]}
    assert optimizer.steps == 0 and optimizer.state["delta"] == [0.0, 0.0]
    assert trainer.history.loss == [(0.5 * 1e150) ** 2]  # o = w·x, E = o², in floats


def test_a_non_finite_gradient_with_a_finite_loss_stops_before_the_step():
    """w = 1e-12, b = 0, x = 1e160, t = 0: o = 1e148 and E = o² = 1e296 are finite, but
    ∂E/∂w = 2·o·x = 2e308 is above the largest float (1.797e308): inf. No step is taken."""
    model = line(1e-12, 0.0)
    optimizer = nn.optim.SGD(model.parameters(), lr=1e-300)
    trainer = nn.Trainer(model, optimizer, mode="batch")
    with pytest.raises(NonFiniteError, match=r"epoch 1, batch 1: the gradient of L1\.N0\.w1 is inf.*unchanged"):
        trainer.fit([[1e160]], [0.0], epochs=3, progress=False)
    assert model.state_dict() == {"layers.0.weight": [[1e-12]], "layers.0.bias": [0.0]}
    assert optimizer.steps == 0


def test_early_stopping_never_scores_a_diverged_model():
    """EarlyStopping(monitor="loss") scores the training set after each epoch: an overflow there
    is a divergence like any other, not an exception from inside a callback."""
    model = line(0.5, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=1e-290), mode="batch")
    with pytest.raises(NonFiniteError, match="after its last update: on the training set"):
        trainer.fit([[1e150]], [0.0], epochs=3, progress=False, callbacks=nn.EarlyStopping())
    assert model.state_dict() == {"layers.0.weight": [[0.5]], "layers.0.bias": [0.0]}


def test_evaluate_of_a_model_with_non_finite_outputs_is_a_non_finite_error():
    model = line(1e300, 0.0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(NonFiniteError, match="evaluate: on the data given, a prediction is inf"):
        trainer.evaluate([[1e10]], [0.0])
    with pytest.raises(InvalidArgumentError, match="call fit first"):
        trainer.training_loss()


@pytest.mark.parametrize(
    "options",
    [
        ["--activation", "relu", "--output-activation", "linear", "--lr", "1e200", "--epochs", "2"],
        ["--optimizer", "adam", "--lr", "1.7e308", "--epochs", "2", "--activation", "relu",
         "--output-activation", "linear"],
    ],
)  # fmt: skip
def test_the_command_line_ends_a_divergence_with_exit_status_1(options, capsys):
    assert cli.main(["train", "--no-progress", *options]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m nn: error: training diverged") and "Traceback" not in err
