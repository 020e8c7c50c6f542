"""Trainer(engine="traced") keeps weights, gradients and optimizer buffers in arrays during
`fit` and writes them back to the model: whatever reads the model (after fit, in a callback,
early stopping, a resumed run from the state dict) sees what eager training gives.

The reference is the eager engine (a graph of Values per sample, the optimizers' scalar
step), which tests/test_trainer*.py and tests/test_optim.py check against PyTorch and by hand.
"""

from __future__ import annotations

import pytest
from conftest import require_module

import nn
from autograd import Value
from autograd.errors import ShapeError

require_module("numpy", extra="fast")

X, Y = nn.data.moons(30, noise=0.2, seed=3)

OPTIMIZERS = {
    "sgd": lambda p: nn.optim.SGD(p, lr=0.2),
    "nesterov": lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rprop": lambda p: nn.optim.Rprop(p),
    "adam": lambda p: nn.optim.Adam(p, lr=0.05, weight_decay=0.01),
    "adamw": lambda p: nn.optim.AdamW(p, lr=0.05),
}


def train(engine, make_optimizer, mode="minibatch", scheduler=False, clip=None, epochs=4, callbacks=()):
    model = nn.MLP(2, [5, 4, 1], activation="tanh", output_activation="sigmoid", seed=2)
    optimizer = make_optimizer(model.parameters())
    schedule = None
    if scheduler and hasattr(optimizer, "lr"):  # (Rprop has no learning rate to schedule)
        schedule = nn.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    trainer = nn.Trainer(model, optimizer, nn.losses.binary_cross_entropy, mode=mode, batch_size=8, seed=5,
                         engine=engine, scheduler=schedule, clip=clip)  # fmt: skip
    history = trainer.fit(X, Y, epochs=epochs, progress=False, callbacks=callbacks)
    return model, optimizer, history


def assert_same_training(traced, eager) -> None:
    (model, optimizer, history), (e_model, e_optimizer, e_history) = traced, eager
    assert [p.data for p in model.parameters()] == pytest.approx([p.data for p in e_model.parameters()], abs=1e-10)
    assert [p.grad for p in model.parameters()] == pytest.approx([p.grad for p in e_model.parameters()], abs=1e-10)
    assert optimizer.steps == e_optimizer.steps
    for name in optimizer.buffers:
        assert optimizer.state[name] == pytest.approx(e_optimizer.state[name], abs=1e-10), name
    for series in ("loss", "accuracy", "updates", "lr", "grad_norm", "clipped"):
        assert getattr(history, series) == pytest.approx(getattr(e_history, series), abs=1e-10), series


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("mode", ["batch", "minibatch", "online"])
def test_traced_training_ends_with_eagers_weights_and_optimizer_state(make, mode) -> None:
    assert_same_training(train("traced", make, mode), train("eager", make, mode))


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_with_a_scheduler_and_clipping_too(make) -> None:
    options = {"scheduler": True, "clip": 0.05, "epochs": 5}
    traced, eager = train("traced", make, **options), train("eager", make, **options)
    assert sum(traced[2].clipped) > 0  # the clip is active, not a no-op
    assert_same_training(traced, eager)


def test_a_resumed_run_from_the_state_dicts_continues_like_one_run() -> None:
    """fit twice (the second from the first's written-back weights and buffers) = eager's two fits."""
    runs = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [4, 1], output_activation="sigmoid", seed=1)
        optimizer = nn.optim.Adam(model.parameters(), lr=0.05)
        nn.Trainer(model, optimizer, mode="batch", engine=engine).fit(X, Y, epochs=3, progress=False)
        resumed_model = nn.MLP(2, [4, 1], output_activation="sigmoid", seed=9)
        resumed_model.load_state_dict(model.state_dict())
        resumed = nn.optim.Adam(resumed_model.parameters(), lr=0.05)
        resumed.load_state_dict(optimizer.state_dict())
        nn.Trainer(resumed_model, resumed, mode="batch", engine=engine).fit(X, Y, epochs=3, progress=False)
        runs[engine] = [p.data for p in resumed_model.parameters()], resumed.state_dict()
    assert runs["traced"][0] == pytest.approx(runs["eager"][0], abs=1e-10)
    assert runs["traced"][1]["steps"] == runs["eager"][1]["steps"] == 6
    for name in ("m", "v"):
        assert runs["traced"][1]["state"][name] == pytest.approx(runs["eager"][1]["state"][name], abs=1e-10)


class Recorder(nn.trainer.Callback):
    """Reads the model and the optimizer at each epoch's end; changes the learning rate after epoch 2."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[float], list[float]]] = []

    def on_epoch_end(self, trainer, epoch, history) -> None:
        self.seen.append(([p.data for p in trainer.model.parameters()], list(trainer.optimizer.state["delta"])))
        if epoch == 2:
            trainer.optimizer.lr = 0.05


def test_callbacks_see_the_current_weights_and_their_changes_are_kept() -> None:
    make = OPTIMIZERS["nesterov"]
    recorders = {engine: Recorder() for engine in ("eager", "traced")}
    results = {engine: train(engine, make, callbacks=[recorders[engine]]) for engine in recorders}
    assert len(recorders["traced"].seen) == 4
    for (weights, delta), (e_weights, e_delta) in zip(recorders["traced"].seen, recorders["eager"].seen):
        assert weights == pytest.approx(e_weights, abs=1e-10)
        assert delta == pytest.approx(e_delta, abs=1e-10)
    assert_same_training(results["traced"], results["eager"])


class ShakeWeights(nn.trainer.Callback):
    """A callback that writes the model: every weight halved after each epoch."""

    def on_epoch_end(self, trainer, epoch, history) -> None:
        for p in trainer.model.parameters():
            p.data *= 0.5


def test_a_callback_that_changes_the_weights_is_followed_by_the_next_epoch() -> None:
    make = OPTIMIZERS["adam"]
    traced, eager = (train(engine, make, callbacks=[ShakeWeights()]) for engine in ("traced", "eager"))
    assert_same_training(traced, eager)


def test_early_stopping_restores_the_best_epoch_like_eager() -> None:
    results = {}
    for engine in ("eager", "traced"):
        stopper = nn.trainer.EarlyStopping(patience=2, restore_best=True)
        make = OPTIMIZERS["nesterov"]
        model, _, history = train(engine, make, epochs=30, callbacks=[stopper])
        results[engine] = [p.data for p in model.parameters()], stopper.best_epoch, history.epochs
    assert results["traced"][1:] == results["eager"][1:]
    assert results["traced"][2] < 30  # it stopped early, and restored an earlier epoch's weights
    assert results["traced"][0] == pytest.approx(results["eager"][0], abs=1e-10)


def test_validation_scores_use_the_weights_in_training() -> None:
    runs = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [4, 1], output_activation="sigmoid", seed=4)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5), mode="minibatch", batch_size=5,
                             engine=engine)  # fmt: skip
        runs[engine] = trainer.fit(X[:20], Y[:20], epochs=3, validation=(X[20:], Y[20:]), progress=False)
    assert runs["traced"].val_loss == pytest.approx(runs["eager"].val_loss, abs=1e-12)
    assert runs["traced"].val_accuracy == runs["eager"].val_accuracy


def test_parameters_outside_the_optimizer_keep_their_values_and_collect_gradients_like_eager() -> None:
    """Only the output layer is optimized: the hidden layer is frozen, but its gradients add up in .grad
    (the optimizer's zero_grad never reaches them), in eager mode as in the arrays."""
    runs = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [3, 1], output_activation="sigmoid", seed=6)
        frozen, trained = model.layers[0].parameters(), model.layers[1].parameters()
        optimizer = nn.optim.SGD(trained, lr=0.3, momentum=0.5)
        nn.Trainer(model, optimizer, mode="minibatch", batch_size=10, engine=engine).fit(X, Y, epochs=2, progress=False)
        runs[engine] = [v for p in frozen for v in (p.data, p.grad)], [v for p in trained for v in (p.data, p.grad)]
    assert runs["traced"][0] == pytest.approx(runs["eager"][0], abs=1e-10)
    assert runs["traced"][1] == pytest.approx(runs["eager"][1], abs=1e-10)
    untouched = nn.MLP(2, [3, 1], output_activation="sigmoid", seed=6).layers[0].parameters()
    assert runs["traced"][0][::2] == [p.data for p in untouched]


def test_an_optimizer_parameter_the_model_does_not_use_is_stepped_with_a_zero_gradient() -> None:
    """Weight decay shrinks a parameter no loss reads, w ← w - η·λ·w, in the arrays as eagerly."""
    runs = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [3, 1], output_activation="sigmoid", seed=6)
        spare = Value(2.0)
        optimizer = nn.optim.SGD([spare, *model.parameters()], lr=0.1, weight_decay=0.5)
        nn.Trainer(model, optimizer, mode="batch", engine=engine).fit(X, Y, epochs=3, progress=False)
        runs[engine] = spare.data, [p.data for p in model.parameters()]
    assert runs["traced"][0] == runs["eager"][0] == pytest.approx(2.0 * 0.95**3, abs=1e-15)
    assert runs["traced"][1] == pytest.approx(runs["eager"][1], abs=1e-10)


def test_an_exception_in_a_callback_leaves_the_model_with_the_trained_weights() -> None:
    class Boom(nn.trainer.Callback):
        def on_epoch_end(self, trainer, epoch, history) -> None:
            if epoch == 2:
                raise RuntimeError("boom")

    results = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [5, 4, 1], activation="tanh", output_activation="sigmoid", seed=2)
        optimizer = OPTIMIZERS["adam"](model.parameters())
        trainer = nn.Trainer(model, optimizer, nn.losses.binary_cross_entropy, batch_size=8, seed=5, engine=engine)
        with pytest.raises(RuntimeError, match="boom"):
            trainer.fit(X, Y, epochs=4, progress=False, callbacks=[Boom()])
        results[engine] = [p.data for p in model.parameters()], optimizer.state_dict()
    assert results["traced"][0] == pytest.approx(results["eager"][0], abs=1e-10)
    assert results["traced"][1]["steps"] == results["eager"][1]["steps"]
    assert results["traced"][1]["state"]["m"] == pytest.approx(results["eager"][1]["state"]["m"], abs=1e-10)


def test_a_divergence_restores_the_same_state_as_eager_in_the_optimizers_order() -> None:
    """A learning rate that blows the weights up: both engines stop at the same update and restore
    the same parameters and momentum buffers, which the arrays hold in the trace's order."""
    from autograd.errors import NonFiniteError

    results = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [5, 4, 1], activation="relu", output_activation="linear", seed=2)
        optimizer = nn.optim.SGD(model.parameters(), lr=50.0, momentum=0.9)
        trainer = nn.Trainer(model, optimizer, mode="minibatch", batch_size=6, seed=5, engine=engine)
        with pytest.raises(NonFiniteError) as error:
            trainer.fit([[10 * a, 10 * b] for a, b in X], Y, epochs=30, progress=False)
        results[engine] = str(error.value), [p.data for p in model.parameters()], optimizer.state_dict()
    if engine == "traced":
        layout = trainer._layout
        assert layout is not None and not layout.identity  # the case this test is about
    assert results["traced"][0] == results["eager"][0]
    assert results["traced"][1] == pytest.approx(results["eager"][1], rel=1e-10)
    assert results["traced"][2]["steps"] == results["eager"][2]["steps"] > 0
    assert results["traced"][2]["state"]["delta"] == pytest.approx(results["eager"][2]["state"]["delta"], rel=1e-10)


def test_a_new_optimizer_for_the_same_trainer_gets_its_own_layout() -> None:
    """A second fit with another optimizer (over only the output layer) trains what that one holds."""
    runs = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [3, 1], output_activation="sigmoid", seed=6)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.3), mode="batch", engine=engine)
        trainer.fit(X, Y, epochs=2, progress=False)
        trainer.optimizer = nn.optim.Adam(model.layers[1].parameters(), lr=0.05)
        trainer.fit(X, Y, epochs=2, progress=False)
        runs[engine] = [p.data for p in model.parameters()]
    assert runs["traced"] == pytest.approx(runs["eager"], abs=1e-10)


def _fits_in_a_row(engine, change, new_trainer=False):
    """Two fits on the same lists; ``change(X, y, model, optimizer)`` runs between them. The second
    fit by the same trainer, or by a new one (which has seen nothing of the first: the reference)."""
    X_list, y_list = [list(map(float, x)) for x in X], [float(t) for t in Y]
    model = nn.MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=1)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = nn.Trainer(model, optimizer, nn.losses.mse, mode="batch", engine=engine)
    trainer.fit(X_list, y_list, epochs=2, progress=False)
    change(X_list, y_list, model, optimizer)
    if new_trainer:
        trainer = nn.Trainer(model, optimizer, nn.losses.mse, mode="batch", engine=engine)
    history = trainer.fit(X_list, y_list, epochs=2, progress=False)
    return model, optimizer, history


def _replace_a_number(X_list, y_list, model, optimizer):
    X_list[3][1] = 2.5  # the same row list, a new float in it


def _replace_a_row_and_a_target(X_list, y_list, model, optimizer):
    X_list[0] = [0.25, -1.5]
    y_list[5] = 1.0 - y_list[5]


def _swap_two_rows(X_list, y_list, model, optimizer):
    k = next(i for i, t in enumerate(y_list) if t != y_list[0])  # a sample of the other class
    X_list[0], X_list[k] = X_list[k], X_list[0]  # the same objects, in another order


def _change_a_weight(X_list, y_list, model, optimizer):
    model.parameters()[2].data = 0.75


def _change_a_buffer_in_place(X_list, y_list, model, optimizer):
    optimizer.state["delta"][0] = 0.5  # the same list, a new entry (the momentum buffer)


@pytest.mark.parametrize(
    "change",
    [_replace_a_number, _replace_a_row_and_a_target, _swap_two_rows, _change_a_weight, _change_a_buffer_in_place],
)
def test_a_second_fit_sees_what_changed_in_the_data_the_weights_and_the_buffers(change) -> None:
    """The second fit on the same lists reuses what the first checked and wrote only while it still holds."""
    assert "delta" in nn.optim.SGD([Value(1.0)], lr=0.1, momentum=0.9).state
    eager = _fits_in_a_row("eager", change, new_trainer=True)
    assert_same_training(_fits_in_a_row("traced", change), eager)
    assert_same_training(_fits_in_a_row("eager", change), eager)


def test_a_second_fit_on_a_row_made_longer_refuses_it_as_the_first_would() -> None:
    X_list, y_list = [list(map(float, x)) for x in X], [float(t) for t in Y]
    model = nn.MLP(2, [3, 1], seed=1)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch", engine="traced")
    trainer.fit(X_list, y_list, epochs=1, progress=False)
    X_list[4].append(1.0)
    with pytest.raises(ShapeError, match=r"X\[4\] has 3 inputs"):
        trainer.fit(X_list, y_list, epochs=1, progress=False)
