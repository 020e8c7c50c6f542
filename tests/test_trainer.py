"""nn.Trainer: the three modes update as their definitions say, batch mode is the
averaged full-batch gradient step, XOR is learned, divergence is caught and undone.

Reference numbers come from PyTorch (float64) or from an explicit loop written in
the test that follows the textbook definition.
"""

from __future__ import annotations

import io
import math
import random
import sys
from pathlib import Path

import pytest

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError, ShapeError
from nn.trainer import Callback, MiniBatchSampler, class_decision

ROOT = Path(__file__).resolve().parent.parent

X10 = [[0.1 * i, (-1) ** i * 0.2 * i] for i in range(10)]
Y10 = [float(i % 3 == 0) for i in range(10)]


def make_trainer(mode, batch_size=4, shuffle=True, lr=0.1, momentum=0.0, seed=0, model_seed=1, **kwargs):
    model = nn.MLP(2, [3, 1], seed=model_seed)
    optimizer = nn.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    return nn.Trainer(model, optimizer, mode=mode, batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs)


class CountSteps(Callback):
    def __init__(self, optimizer):
        self.optimizer, self.per_epoch = optimizer, []

    def on_epoch_end(self, trainer, epoch, history):
        self.per_epoch.append(self.optimizer.steps - sum(self.per_epoch))


@pytest.mark.parametrize("mode, updates", [("online", 10), ("batch", 1), ("minibatch", 3)])  # ceil(10/4) = 3
def test_updates_per_epoch_follow_the_mode(mode, updates):
    trainer = make_trainer(mode)
    counter = CountSteps(trainer.optimizer)
    history = trainer.fit(X10, Y10, epochs=3, progress=False, callbacks=[counter])
    assert history.updates == [updates] * 3
    assert counter.per_epoch == [updates] * 3


def test_online_mode_is_one_sgd_step_per_sample_in_order():
    trainer = make_trainer("online", shuffle=False)
    reference = nn.MLP(2, [3, 1], seed=1)
    trainer.fit(X10, Y10, epochs=2, progress=False)
    for _ in range(2):
        for x, t in zip(X10, Y10):  # w ← w - η ∂E_p/∂w after each pattern p
            reference.zero_grad()
            nn.losses.mse(reference(x), t).backward()
            for p in reference.parameters():
                p.data -= 0.1 * p.grad
    ours = [p.data for p in trainer.model.parameters()]
    assert ours == pytest.approx([p.data for p in reference.parameters()], abs=1e-15)


def torch_mlp(torch, model):
    layers = []
    for i, size in enumerate(model.nouts):
        linear = torch.nn.Linear(model.layers[i].nin, size)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(model.state_dict()[f"layers.{i}.weight"]))
            linear.bias.copy_(torch.tensor(model.state_dict()[f"layers.{i}.bias"]))
        layers += [linear, torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def test_batch_mode_is_the_mean_gradient_full_batch_step_of_torch(torch):
    trainer = make_trainer("batch", lr=0.5, momentum=0.9)
    reference = torch_mlp(torch, trainer.model)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    history = trainer.fit(X10, Y10, epochs=4, progress=False)
    X, Y = torch.tensor(X10), torch.tensor(Y10).reshape(-1, 1)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(reference(X), Y)  # mean over the set
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    ours = [p.data for p in trainer.model.parameters()]
    theirs = [v for i in range(0, 4, 2) for w, b in [(reference[i].weight, reference[i].bias)]
              for row, bias in zip(w.tolist(), b.tolist()) for v in row + [bias]]  # fmt: skip
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert history.loss == pytest.approx(losses, abs=1e-12)  # the loss before each update


def test_minibatch_with_one_batch_in_order_equals_batch_mode():
    batch = make_trainer("batch")
    single = make_trainer("minibatch", batch_size=100, shuffle=False)
    batch.fit(X10, Y10, epochs=3, progress=False)
    single.fit(X10, Y10, epochs=3, progress=False)
    assert single.model.state_dict() == batch.model.state_dict()


def test_minibatch_sampler_partitions_and_reshuffles_each_epoch():
    sampler = MiniBatchSampler(10, 4, shuffle=True, rng=random.Random(0))
    epochs = [list(sampler) for _ in range(3)]
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
        assert sorted(i for b in batches for i in b) == list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]
    assert list(MiniBatchSampler(5, 2, shuffle=False, rng=random.Random(0))) == [[0, 1], [2, 3], [4]]


def test_same_seed_same_training_other_seed_other_order():
    first = make_trainer("minibatch").fit(X10, Y10, epochs=3, progress=False).loss
    assert make_trainer("minibatch").fit(X10, Y10, epochs=3, progress=False).loss == first
    assert make_trainer("minibatch", seed=1).fit(X10, Y10, epochs=3, progress=False).loss != first


def test_training_leaves_the_global_random_state_alone():
    random.seed(3)
    before = random.getstate()
    make_trainer("minibatch").fit(X10, Y10, epochs=2, progress=False)
    assert random.getstate() == before


def test_a_2_2_1_sigmoid_mlp_learns_xor_with_momentum():
    X, y = nn.data.xor()
    model = nn.MLP(2, [2, 1], activation="sigmoid", seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5, momentum=0.9), mode="batch")
    history = trainer.fit(X, y, epochs=1000, progress=False)
    assert trainer.evaluate(X, y)["loss"] < 0.01
    assert [round(p) for p in trainer.predict(X)] == [0, 1, 1, 0]
    assert history.accuracy[-1] == 1.0 and history.loss[-1] < history.loss[0] / 10


def test_history_records_every_epoch():
    trainer = make_trainer("minibatch")
    history = trainer.fit(X10, Y10, epochs=4, validation=(X10[:5], Y10[:5]), progress=False)
    for series in (history.loss, history.accuracy, history.val_loss, history.val_accuracy, history.epoch_time):
        assert len(series) == 4
    assert all(t > 0 for t in history.epoch_time) and history.epochs == 4
    assert history.stopped_reason == "completed 4 epochs"
    assert history.val_loss[-1] == pytest.approx(trainer.evaluate(X10[:5], Y10[:5])["loss"], abs=1e-15)
    assert set(history.to_dict()) >= {"loss", "accuracy", "val_loss", "epoch_time", "updates", "stopped_reason"}
    assert trainer.history is history


def test_no_accuracy_for_targets_that_are_not_classes():
    history = make_trainer("batch").fit(X10, [0.3] * 10, epochs=2, progress=False)
    assert history.accuracy == [] and len(history.loss) == 2
    assert make_trainer("batch").evaluate(X10, [0.3] * 10)["accuracy"] is None


def test_class_decision_threshold_is_the_midpoint_of_the_labels():
    sigmoid_labels = class_decision([[0.0], [1.0]])
    tanh_labels = class_decision([[-1.0], [1.0]])
    one_hot = class_decision([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert [sigmoid_labels([o]) for o in (0.49, 0.51)] == [0.0, 1.0]
    assert [tanh_labels([o]) for o in (-0.01, 0.01, 0.49)] == [-1.0, 1.0, 1.0]
    assert one_hot([0.1, 0.7, 0.2]) == 1
    assert class_decision([[0.5], [1.0]]) is None


def test_evaluate_is_the_mean_loss_and_accuracy():
    trainer = make_trainer("batch")
    outputs = trainer.predict(X10)
    assert isinstance(outputs[0], float)
    expected_loss = sum((o - t) ** 2 for o, t in zip(outputs, Y10)) / 10
    expected_accuracy = sum((o > 0.5) == (t == 1.0) for o, t in zip(outputs, Y10)) / 10
    scores = trainer.evaluate(X10, Y10)
    assert scores == {"loss": pytest.approx(expected_loss, abs=1e-15), "accuracy": expected_accuracy}


def test_several_outputs_take_target_rows():
    model = nn.MLP(2, [3, 2], seed=0)
    trainer = nn.Trainer(model, nn.optim.Adam(model.parameters(), lr=0.01), mode="minibatch", batch_size=3)
    targets = [[1.0, 0.0] if t else [0.0, 1.0] for t in Y10]
    history = trainer.fit(X10, targets, epochs=2, progress=False)
    assert len(history.accuracy) == 2
    assert all(len(row) == 2 for row in trainer.predict(X10))
    with pytest.raises(ShapeError, match="y\\[0\\] has 1 values, the model has 2 outputs"):
        trainer.fit(X10, Y10, epochs=1, progress=False)


def test_early_stopping_stops_after_patience_and_restores_the_best_model():
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, epoch, history):
            snapshots[epoch] = trainer.model.state_dict()

    trainer = make_trainer("batch", lr=0.01)
    # No epoch improves the loss by 1.0, so epoch 1 stays the best and training stops at epoch 1 + 3.
    stopper = nn.EarlyStopping(patience=3, min_delta=1.0)
    history = trainer.fit(X10, Y10, epochs=50, progress=False, callbacks=[Snapshot(), stopper])
    assert history.epochs == 4 and "early stopping" in history.stopped_reason
    assert trainer.model.state_dict() == snapshots[1] != snapshots[4]


def test_early_stopping_watches_validation_loss_when_given():
    stopper = nn.EarlyStopping(patience=2)
    make_trainer("batch").fit(X10, Y10, epochs=2, validation=(X10, Y10), progress=False, callbacks=[stopper])
    assert stopper.watched == "val_loss"
    with pytest.raises(InvalidArgumentError, match="validation"):
        make_trainer("batch").fit(X10, Y10, epochs=2, progress=False, callbacks=[nn.EarlyStopping(monitor="val_loss")])
    with pytest.raises(InvalidArgumentError):
        nn.EarlyStopping(patience=0)


@pytest.mark.parametrize("mode", ["online", "batch", "minibatch"])
def test_divergence_raises_non_finite_error_and_keeps_the_last_finite_parameters(mode):
    model = nn.MLP(2, [4, 1], activation="linear", seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=1e30), mode=mode, batch_size=3)
    X = [[10.0 * i, -5.0 * i] for i in range(6)]
    with pytest.raises(NonFiniteError, match=r"diverged at epoch \d+, batch \d+") as caught:
        trainer.fit(X, [float(i) for i in range(6)], epochs=50, progress=False)
    assert "restored" in str(caught.value)
    assert all(math.isfinite(p.data) for p in model.parameters())
    for x in X:  # the kept parameters give a finite loss on the batch that was used with them
        assert math.isfinite(model(x).data)
    assert trainer.history.stopped_reason.startswith("diverged")


def bad_fit_cases():
    return {
        "empty": (([], []), InvalidArgumentError, "empty"),
        "mismatched": ((X10, Y10[:9]), ShapeError, "10 samples in X but 9 targets"),
        "wrong input length": (([[1.0, 2.0, 3.0]], [1.0]), ShapeError, "X\\[0\\] has 3 inputs, the model expects 2"),
        "string target": ((X10, ["a"] * 10), InvalidTypeError, "y\\[0\\]"),
        "nan input": (([[float("nan"), 1.0]], [1.0]), InvalidArgumentError, "X\\[0\\]\\[0\\]"),
        "not a list": (("ab", [1.0]), InvalidTypeError, "X must be"),
    }


@pytest.mark.parametrize("case", list(bad_fit_cases()))
def test_bad_data_is_a_clear_error(case):
    args, error, message = bad_fit_cases()[case]
    with pytest.raises(error, match=message):
        make_trainer("batch").fit(*args, epochs=1, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"batch_size": 0}, InvalidArgumentError, "batch_size must be >= 1, got 0"),
        ({"batch_size": -3}, InvalidArgumentError, "got -3"),
        ({"batch_size": 2.5}, InvalidTypeError, "batch_size"),
        ({"mode": "stochastic"}, InvalidArgumentError, "\\['online', 'batch', 'minibatch'\\], got 'stochastic'"),
        ({"engine": "jit"}, InvalidArgumentError, "engine must be one of .*got 'jit'"),
    ],
)
def test_bad_trainer_settings_are_clear_errors(kwargs, error, message):
    model = nn.MLP(2, [1], seed=0)
    with pytest.raises(error, match=message):
        nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_bad_fit_arguments():
    with pytest.raises(InvalidArgumentError, match="epochs"):
        make_trainer("batch").fit(X10, Y10, epochs=0, progress=False)
    with pytest.raises(InvalidTypeError, match="callbacks"):
        make_trainer("batch").fit(X10, Y10, epochs=1, progress=False, callbacks=[print])
    with pytest.raises(InvalidTypeError, match="optimizer"):
        nn.Trainer(nn.MLP(2, [1]), "sgd")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_the_loss_only_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm", reason="the progress bar needs tqdm (extra `progress`)")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    make_trainer("batch").fit(X10, Y10, epochs=3, progress=True)
    assert "3/3" in terminal.getvalue() and "loss=" in terminal.getvalue()

    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    make_trainer("batch").fit(X10, Y10, epochs=3, progress=True)
    assert pipe.getvalue() == ""


def test_without_tqdm_training_runs_without_a_bar(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    history = make_trainer("batch").fit(X10, Y10, epochs=2, progress=True)
    assert history.epochs == 2 and terminal.getvalue() == ""


# -- early stopping restores the model whose loss it reports (issue 11, item 23) --------


@pytest.mark.parametrize("mode", ["batch", "online", "minibatch"])
def test_early_stopping_on_the_training_loss_restores_the_model_whose_loss_it_reports(mode):
    """XOR, SGD η = 40: the second review's example. history.loss[k] is measured during epoch k,
    before its updates, so it belongs to no saved model; EarlyStopping scores the model at the
    end of each epoch instead, and the model it restores has exactly the loss it reports."""
    X, y = nn.data.xor()
    model = nn.MLP(2, [2, 1], seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=40.0), mode=mode, batch_size=2)
    stopper = nn.EarlyStopping(patience=3)
    history = trainer.fit(X, y, epochs=30, progress=False, callbacks=[stopper])
    assert trainer.evaluate(X, y)["loss"] == stopper.best
    if "early stopping" in history.stopped_reason:
        assert f"best {stopper.best:.6g} at the end of epoch {stopper.best_epoch}" in history.stopped_reason


def test_early_stopping_on_the_training_loss_does_not_report_the_loss_before_the_first_update():
    """The review's numbers (batch mode): history.loss[0] = 0.250352 is the untrained model's loss;
    the best end-of-epoch model (epoch 1) has loss 0.2754, and that is what is reported and kept."""
    X, y = nn.data.xor()
    model = nn.MLP(2, [2, 1], seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=40.0), mode="batch")
    stopper = nn.EarlyStopping(patience=3)
    history = trainer.fit(X, y, epochs=100, progress=False, callbacks=[stopper])
    assert history.loss[0] == pytest.approx(0.250352, abs=1e-6)
    assert stopper.best == history.loss[1] == pytest.approx(0.2754, abs=1e-4)  # batch mode: loss[1] is after epoch 1
    assert trainer.evaluate(X, y)["loss"] == stopper.best


# -- the class threshold is decided once (item 24) ----------------------------------------


def linear_identity():
    """o = x: the model's outputs are the inputs, so predictions can be written down."""
    model = nn.MLP(1, [1], activation="linear", seed=0)
    model.load_state_dict({"layers.0.weight": [[1.0]], "layers.0.bias": [0.0]})
    return model


def test_a_plus_minus_one_problem_scored_on_plus_one_labels_keeps_the_threshold_zero():
    """Trained on labels -1/+1 (outputs equal targets: zero gradient, the model does not move),
    scored on predictions [-0.3, 0.72, 0.39] against [1, 1, 1]: with the threshold 0 two are
    right (2/3); the threshold 0.5 of 0/1 labels would count one (1/3)."""
    model = linear_identity()
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch")
    validation = ([[-0.3], [0.72], [0.39]], [1.0, 1.0, 1.0])
    history = trainer.fit([[-1.0], [1.0]], [-1.0, 1.0], epochs=1, validation=validation, progress=False)
    assert history.val_accuracy == [2 / 3]
    assert trainer.evaluate(*validation)["accuracy"] == 2 / 3
    assert trainer.threshold == 0.0


def test_before_any_fit_a_classification_loss_decides_the_labels():
    """hinge means labels -1/+1 whatever the set holds: threshold 0, so 2/3 as above."""
    model = linear_identity()
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), loss=nn.losses.hinge)
    assert trainer.evaluate([[-0.3], [0.72], [0.39]], [1.0, 1.0, 1.0])["accuracy"] == 2 / 3
    assert class_decision([[1.0], [1.0]], nn.losses.binary_cross_entropy).threshold == 0.5
    assert class_decision([[1.0], [1.0]], nn.losses.hinge).threshold == 0.0


def test_labels_the_training_set_never_had_give_no_accuracy_rather_than_a_wrong_one():
    model = linear_identity()
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch")
    trainer.fit([[0.0], [1.0]], [0.0, 1.0], epochs=1, progress=False)
    assert trainer.evaluate([[0.0], [1.0]], [-1.0, 1.0])["accuracy"] is None


def test_the_decision_boundary_can_be_drawn_at_the_trainers_threshold():
    pytest.importorskip("matplotlib", reason="plots need matplotlib (extra `viz`)")
    model = nn.MLP(2, [3, 1], activation="tanh", seed=0)
    X = [[0.0, 0.0], [1.0, 1.0], [0.5, -1.0]]
    fig = nn.plot.plot_decision_boundary(model, X, [1.0, 1.0, 1.0], threshold=0.0)
    levels = [list(c.levels) for c in fig.axes[0].collections if hasattr(c, "levels") and len(c.levels) == 1]
    outputs = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1)).predict(X)
    assert min(outputs) < 0.0 < max(outputs)  # so the level 0 crosses the plot
    assert levels == [[0.0]]  # the labels' own midpoint, 1.0, is never reached by tanh: no line at all


# -- numpy arrays wherever lists are accepted (item 25) ---------------------------------


def test_numpy_arrays_are_accepted_like_lists():
    np = pytest.importorskip("numpy")
    X, y = nn.data.moons(24, noise=0.1, seed=0)

    def fit(X_, y_, validation):
        model = nn.MLP(2, [3, 1], seed=1)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5), mode="minibatch", batch_size=5)
        history = trainer.fit(X_, y_, epochs=2, validation=validation, progress=False)
        return trainer, history

    lists, history = fit(X, y, (X, y))
    arrays, array_history = fit(np.array(X), np.array(y), (np.array(X), np.array(y)))
    rows, rows_history = fit([np.array(x) for x in X], list(np.array(y)), None)
    assert array_history.loss == history.loss == rows_history.loss
    assert array_history.val_loss == history.val_loss
    assert arrays.predict(np.array(X)) == lists.predict(X)
    assert arrays.evaluate(np.array(X), np.array(y)) == lists.evaluate(X, y)
    assert lists.model(np.array(X[0])).data == lists.model(X[0]).data
    assert [v.data for v in nn.Layer(2, 2, seed=0)(np.array([0.5, -1.0]))] == [
        v.data for v in nn.Layer(2, 2, seed=0)([0.5, -1.0])
    ]
    targets = np.array([[1.0, 0.0] if t else [0.0, 1.0] for t in y])
    model = nn.MLP(2, [3, 2], seed=0)
    two = nn.Trainer(model, nn.optim.Adam(model.parameters(), lr=0.01)).fit(np.array(X), targets, 1, progress=False)
    assert len(two.accuracy) == 1


def test_trace_and_plot_decision_boundary_take_numpy_arrays():
    np = pytest.importorskip("numpy")
    pytest.importorskip("matplotlib", reason="plots need matplotlib (extra `viz`)")
    from autograd import trace

    X, y = nn.data.moons(12, noise=0.1, seed=0)
    model = nn.MLP(2, [3, 1], seed=0)
    replay = trace(model, np.array(X[0]))
    assert replay.forward(np.array(X)).tolist() == pytest.approx([model(x).data for x in X], abs=1e-12)
    fig = nn.plot.plot_decision_boundary(model, np.array(X), np.array(y))
    assert fig.axes[0].get_legend() is not None


def test_arrays_of_other_than_real_numbers_are_type_errors():
    np = pytest.importorskip("numpy")
    model = nn.MLP(2, [1], seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(InvalidTypeError, match="MLP: expected an array of real numbers, got dtype complex128"):
        model(np.array([1.0 + 2j, 0.0]))
    with pytest.raises(InvalidTypeError, match="fit: X: expected an array of real numbers, got dtype <U1"):
        trainer.fit(np.array([["a", "b"]]), [1.0], epochs=1, progress=False)
    with pytest.raises(InvalidTypeError, match="predict: X\\[0\\]: .* got dtype bool"):
        trainer.predict([np.array([True, False])])


def test_importing_nn_does_not_import_numpy():
    import subprocess

    code = "import sys, nn; nn.MLP(2, [1], seed=0)([1.0, 2.0]); assert 'numpy' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr


# -- callbacks (item 28) and whole-number arguments (item 29) ----------------------------


def test_callbacks_may_be_any_iterable_read_once_or_a_single_callback():
    seen = []

    class Record(Callback):
        def on_epoch_end(self, trainer, epoch, history):
            seen.append(epoch)

    make_trainer("batch").fit(X10, Y10, epochs=2, progress=False, callbacks=(c for c in [Record()]))
    assert seen == [1, 2]
    make_trainer("batch").fit(X10, Y10, epochs=2, progress=False, callbacks=Record())
    assert seen == [1, 2, 1, 2]
    stopper = nn.EarlyStopping(patience=1, min_delta=1.0)
    history = make_trainer("batch").fit(X10, Y10, epochs=5, progress=False, callbacks=iter([stopper]))
    assert history.epochs == 2 and "early stopping" in history.stopped_reason
    for bad in (print, 3, "callback", [Record(), None]):
        with pytest.raises(InvalidTypeError, match="callbacks"):
            make_trainer("batch").fit(X10, Y10, epochs=1, progress=False, callbacks=bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_trainer("batch").fit(X10, Y10, epochs=1.5, progress=False),
        lambda: make_trainer("batch").fit(X10, Y10, epochs=True, progress=False),
        lambda: nn.EarlyStopping(patience=1.5),
        lambda: make_trainer("minibatch", batch_size=1.5),
        lambda: nn.EarlyStopping(restore_best="yes"),
    ],
    ids=["epochs", "epochs bool", "patience", "batch_size", "restore_best"],
)
def test_a_non_integer_where_an_integer_is_wanted_is_a_type_error(call):
    with pytest.raises(InvalidTypeError, match="must be"):
        call()


def test_the_traced_engine_scores_validation_and_early_stopping_like_eager():
    pytest.importorskip("numpy", reason="traced replay needs numpy (extra `fast`)")
    X, y = nn.data.moons(30, noise=0.1, seed=0)
    results = {}
    for engine in ("eager", "traced"):
        model = nn.MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=0)
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5), mode="batch", engine=engine)
        stopper = nn.EarlyStopping(patience=2, monitor="loss")
        history = trainer.fit(X, y, epochs=6, validation=(X[:10], y[:10]), progress=False, callbacks=stopper)
        results[engine] = (history.val_loss, stopper.best, trainer.evaluate(X, y)["loss"], history.val_accuracy)
    eager, traced = results["eager"], results["traced"]
    assert traced[0] == pytest.approx(eager[0], rel=1e-12)
    assert traced[1:3] == pytest.approx(eager[1:3], rel=1e-12)
    assert traced[3] == eager[3]


def test_a_sequential_model_trains_like_an_mlp_with_the_same_weights():
    """nn.Sequential(Linear, Tanh, Linear, Sigmoid) holding the MLP's weights follows the same
    trajectory (same graph, same numbers); the trainer reads its widths from its Linear layers."""
    X, y = nn.data.moons(20, noise=0.1, seed=0)
    mlp = nn.MLP(2, [3, 1], activation="tanh", output_activation="sigmoid", seed=0)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Sigmoid())
    state = mlp.state_dict()
    seq.load_state_dict({"0.weight": state["layers.0.weight"], "0.bias": state["layers.0.bias"],
                         "2.weight": state["layers.1.weight"], "2.bias": state["layers.1.bias"]})  # fmt: skip
    histories = []
    for model in (mlp, seq):
        trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.5), mode="batch")
        histories.append(trainer.fit(X, y, epochs=3, validation=(X, y), progress=False))
    assert histories[1].loss == pytest.approx(histories[0].loss, abs=1e-15)
    assert histories[1].val_accuracy == histories[0].val_accuracy
    with pytest.raises(ShapeError, match="X\\[0\\] has 3 inputs, the model expects 2"):
        trainer.fit([[1.0, 2.0, 3.0]], [1.0], epochs=1, progress=False)


def test_modules_and_functional_take_numpy_arrays(torch):
    np = pytest.importorskip("numpy")
    linear = nn.Linear(2, 3, seed=0)
    assert [v.data for v in linear(np.array([1.0, 2.0]))] == [v.data for v in linear([1.0, 2.0])]
    z, t = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]]), np.array([1, 2])
    expected = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(t)).item()
    assert nn.losses.cross_entropy(z, t).data == pytest.approx(expected, rel=1e-15)
