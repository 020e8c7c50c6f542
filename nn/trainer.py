"""Training loops: the three ways textbooks present backpropagation over a data set.

- ``online``: update after every sample (per-pattern learning);
- ``batch``: accumulate over the whole set, one update per epoch;
- ``minibatch``: random mini-batches, reshuffled each epoch (`MiniBatchSampler`).

In batch and minibatch mode the update uses the gradient of the *mean* loss
over the batch, ∂E/∂w = (1/B)·Σ_p ∂E_p/∂w, so the learning rate does not have
to shrink as the batch grows (PyTorch's convention with ``reduction="mean"``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from autograd import Value, no_grad, trace
from autograd.errors import (
    AutogradError,
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeError,
    TraceError,
)
from autograd.value import as_float

from . import init as initializers
from . import losses
from .module import MLP, plain
from .modules import Module, Sequential
from .optim import Optimizer

MODES = ("online", "batch", "minibatch")
#: How gradients are computed: "eager" builds the graph of every sample with Values;
#: "traced" records the graph of one sample's loss once (`autograd.trace`) and
#: replays it with numpy over each batch (same numbers, much faster; the loss
#: must not branch on values: mse, sse_half and binary_cross_entropy can be traced, hinge not).
ENGINES = ("eager", "traced")

Row = list[float]


@dataclass
class History:
    """What `Trainer.fit` saw, one entry per epoch.

    ``loss`` and ``accuracy`` are means over the epoch's samples as each was
    seen during training (before the update it contributed to); ``val_*`` are
    measured on the validation set after the epoch. Accuracy lists stay empty
    when the targets are not class labels (see `class_decision`). An epoch is
    recorded only once all of its numbers are known and finite, so every list
    holds the same completed epochs, even after a divergence.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    stopped_reason: str = ""

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


class Callback:
    """Hooks called by `Trainer.fit`; subclass and override what you need.
    Set ``trainer.stop_training = True`` to end training after the current epoch."""

    def on_train_begin(self, trainer: Trainer, history: History) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, history: History) -> None:
        pass

    def on_train_end(self, trainer: Trainer, history: History) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` ("val_loss" when validation data is given, else "loss")
    has not decreased by more than ``min_delta`` for ``patience`` epochs; with
    ``restore_best`` the model gets back the parameters of its best epoch.

    The value watched for each epoch is the loss of the model *as it is at the end
    of that epoch*, the model that would be restored: "val_loss" is measured so
    already; for "loss" the training set is scored once more after the epoch
    (`Trainer.training_loss`), because ``history.loss`` is measured during the
    epoch, before its updates, and belongs to no single saved model. ``best``
    and ``best_epoch`` name the value and epoch kept.
    """

    def __init__(
        self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True, monitor: str | None = None
    ) -> None:
        self.patience = _count(patience, "EarlyStopping: patience")
        self.min_delta = as_float(min_delta, "EarlyStopping (min_delta)")
        if self.min_delta < 0:
            raise InvalidArgumentError(f"EarlyStopping: min_delta must be >= 0, got {self.min_delta}")
        if monitor not in (None, "loss", "val_loss"):
            raise InvalidArgumentError(f"EarlyStopping: monitor must be 'loss' or 'val_loss', got {monitor!r}")
        if not isinstance(restore_best, bool):
            raise InvalidTypeError(f"EarlyStopping: restore_best must be True or False, got {restore_best!r}")
        self.monitor = monitor
        self.restore_best = restore_best

    def on_train_begin(self, trainer: Trainer, history: History) -> None:
        self.watched = self.monitor or ("val_loss" if trainer.has_validation else "loss")
        if self.watched == "val_loss" and not trainer.has_validation:
            raise InvalidArgumentError("EarlyStopping: monitor='val_loss' needs fit(..., validation=(X, y))")
        self.best = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, Any] | None = None
        self.waited = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, history: History) -> None:
        value = history.val_loss[-1] if self.watched == "val_loss" else trainer.training_loss()
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            if self.restore_best:
                self.best_state = trainer.model.state_dict()
            return
        self.waited += 1
        if self.waited >= self.patience:
            trainer.stop_training = True
            history.stopped_reason = (
                f"early stopping: {self.watched} did not improve by more than {self.min_delta:g} "
                f"for {self.patience} epochs (best {self.best:.6g} at the end of epoch {self.best_epoch})"
            )

    def on_train_end(self, trainer: Trainer, history: History) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class MiniBatchSampler:
    """The batches of one epoch as lists of sample indices: ``ceil(n / batch_size)``
    of them, the last one smaller when batch_size does not divide n. With
    ``shuffle`` each iteration (each epoch) draws a new order from ``rng``."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, rng: Any) -> None:
        self.n, self.batch_size, self.shuffle, self.rng = n, batch_size, shuffle, rng

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(self.n))
        if self.shuffle:
            self.rng.shuffle(order)
        for start in range(0, self.n, self.batch_size):
            yield order[start : start + self.batch_size]


class ClassDecision:
    """How to read a class from an output row: ``decision(row)`` is the class.

    One output: ``labels`` (low, high) and the ``threshold`` between them,
    class = high if output > threshold else low. Several outputs (one-hot
    targets): class = index of the largest output, and ``threshold`` is None.
    """

    def __init__(self, labels: tuple[float, float] | None) -> None:
        self.labels = labels
        self.threshold = None if labels is None else (labels[0] + labels[1]) / 2

    def __call__(self, row: Row) -> float | int:
        if self.labels is None:
            return row.index(max(row))
        low, high = self.labels
        return high if row[0] > self.threshold else low  # type: ignore[operator]

    def accepts(self, targets: list[Row]) -> bool:
        """True when every target row is one of the classes this decision reads."""
        if self.labels is None:
            return all(set(row) <= {0.0, 1.0} and sum(row) == 1.0 for row in targets)
        return all(len(row) == 1 and row[0] in self.labels for row in targets)

    def __repr__(self) -> str:
        return "ClassDecision(argmax)" if self.labels is None else f"ClassDecision(labels={self.labels})"


#: The labels each classification loss implies, whatever labels a data set happens to hold.
LOSS_LABELS: dict[Callable[..., Any], tuple[float, float]] = {
    losses.binary_cross_entropy: (0.0, 1.0),
    losses.hinge: (-1.0, 1.0),
}


def class_decision(targets: list[Row], loss: Callable[..., Any] | None = None) -> ClassDecision | None:
    """How to read a class from an output row, or None when the targets are not classes.

    Decided once, from the training targets (or the loss), never from the set
    being scored: a ±1 problem scored on a set that holds only +1 labels must
    keep the threshold 0. One output: a loss that implies its labels (hinge:
    -1/+1, binary_cross_entropy: 0/1) decides; otherwise labels in {0, 1} give
    class = output > 0.5 (a sigmoid's midpoint) and labels in {-1, +1} give
    class = output > 0 (tanh's midpoint): the threshold is the midpoint of the
    two labels, whatever the output activation. Several outputs with one-hot
    targets: class = index of the largest output.
    """
    values = {t for row in targets for t in row}
    if len(targets[0]) == 1:
        implied = LOSS_LABELS.get(loss) if loss is not None else None  # type: ignore[arg-type]
        if implied is not None:
            return ClassDecision(implied) if values <= set(implied) else None
        for labels in ((0.0, 1.0), (-1.0, 1.0)):
            if values <= set(labels):
                return ClassDecision(labels)
        return None
    if values <= {0.0, 1.0} and all(sum(row) == 1.0 for row in targets):
        return ClassDecision(None)
    return None


class _Divergence(NonFiniteError):
    """A non-finite number met while training: `Trainer.fit` restores the last finite state and
    raises a NonFiniteError saying where; outside `fit` it reaches the caller as it is."""


class Trainer:
    """Fits ``model`` with ``optimizer`` on ``loss``, in one of `MODES`.

    ``batch_size`` is used in minibatch mode; ``shuffle`` orders the samples
    randomly each epoch in online and minibatch mode (from ``seed``, never the
    global random state). ``engine`` chooses how gradients are computed (`ENGINES`).
    ``decision`` is how outputs are read as classes (`class_decision`), fixed by
    the training labels of the last `fit` and used for every accuracy after it.
    """

    def __init__(
        self,
        model: MLP | Module,
        optimizer: Optimizer,
        loss: losses.Loss = losses.mse,
        mode: str = "minibatch",
        batch_size: int = 16,
        shuffle: bool = True,
        seed: initializers.Seed = 0,
        engine: str = "eager",
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"Trainer: optimizer must be an nn.optim optimizer, got {type(optimizer).__name__}")
        if not callable(loss):
            raise InvalidTypeError(f"Trainer: loss must be a function like nn.losses.mse, got {loss!r}")
        if mode not in MODES:
            raise InvalidArgumentError(f"Trainer: mode must be one of {list(MODES)}, got {mode!r}")
        if engine not in ENGINES:
            raise InvalidArgumentError(f"Trainer: engine must be one of {list(ENGINES)}, got {engine!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.mode = mode
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InvalidTypeError(f"Trainer: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise InvalidArgumentError(f"Trainer: batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = initializers.make_rng(seed)
        self.engine = engine
        self._traced: Any = None  # the traced per-sample loss, made on the first traced batch
        self.stop_training = False
        self.has_validation = False
        self.history = History()
        self.decision: ClassDecision | None = None
        self._training_set: tuple[list[Row], list[Row]] = ([], [])

    @property
    def threshold(self) -> float | None:
        """The output value that separates the two classes (one output), else None.

        ``plot.plot_decision_boundary(..., threshold=trainer.threshold)`` draws the boundary the accuracy uses.
        """
        return None if self.decision is None else self.decision.threshold

    # -- training ------------------------------------------------------------------
    def fit(
        self,
        X: Sequence[Sequence[float]],
        y: Sequence[Any],
        epochs: int,
        validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
        progress: bool = True,
        callbacks: Callback | Iterable[Callback] = (),
    ) -> History:
        """Train for ``epochs`` epochs (fewer if a callback stops it) and return the `History`.

        X and y may be lists or numpy arrays. ``callbacks`` is a `Callback` or any
        iterable of them (read once).

        If a prediction, the loss, a gradient or a parameter becomes NaN or infinite
        (after any update, including the last; in the validation pass; in a
        callback's scoring), training stops with `NonFiniteError` naming the epoch
        and batch, after restoring the last parameters that gave a finite loss and
        finite gradients *and* the optimizer's state at that point (momentum,
        Adam's moments, Rprop's step sizes), so lowering the learning rate and
        calling `fit` again resumes from a consistent state. ``self.history``
        holds the epochs completed so far in every case.
        """
        inputs, targets = self._dataset(X, y, "fit")
        epochs = _count(epochs, "fit: epochs")
        callbacks = _callbacks(callbacks)
        has_validation = validation is not None
        val_inputs, val_targets = (
            self._dataset(*_pair(validation), "fit (validation)") if has_validation else ([], [])
        )
        self.has_validation = has_validation
        self.decision = class_decision(targets, self.loss)
        self._training_set = (inputs, targets)
        sampler = self._sampler(len(inputs))
        history = self.history = History()
        self.stop_training = False
        # Only states seen in this run may be restored: the user may have changed the model since the last one.
        self._last_finite = self._snapshot()
        self._updates = 0
        self._where = "before the first update"
        bar = _progress_bar(epochs) if progress else None
        for callback in callbacks:
            callback.on_train_begin(self, history)
        try:
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                loss_sum, correct, updates = 0.0, 0, 0
                for batch_number, indices in enumerate(sampler, start=1):
                    self._where = f"at epoch {epoch}, batch {batch_number}"
                    batch_losses, outputs = self._update(
                        [inputs[i] for i in indices], [targets[i] for i in indices]
                    )
                    updates += 1
                    # A sum of per-sample shares, so a mean of finite losses cannot overflow.
                    loss_sum += sum(loss / len(inputs) for loss in batch_losses)
                    if self.decision is not None:
                        correct += sum(self.decision(o) == self.decision(targets[i]) for o, i in zip(outputs, indices))
                self._where = f"at epoch {epoch}, after its last update"
                self._check_finite(loss_sum, "the mean loss of the epoch")
                if val_inputs:
                    val_loss, val_accuracy = self._scores(val_inputs, val_targets, "the validation set")
                history.loss.append(loss_sum)
                if self.decision is not None:
                    history.accuracy.append(correct / len(inputs))
                if val_inputs:
                    history.val_loss.append(val_loss)
                    if val_accuracy is not None:
                        history.val_accuracy.append(val_accuracy)
                history.updates.append(updates)
                history.epoch_time.append(time.perf_counter() - started)
                if bar is not None:
                    bar.set_postfix(_summary(history), refresh=False)
                    bar.update(1)
                for callback in callbacks:
                    callback.on_epoch_end(self, epoch, history)
                if self.stop_training:
                    break
            else:
                history.stopped_reason = f"completed {epochs} epochs"
            # The last update has not been seen by a loss yet: score the final model once.
            self.training_loss()
        except _Divergence as exc:
            raise self._diverged(str(exc)) from exc.__cause__
        finally:
            if bar is not None:
                bar.close()
        for callback in callbacks:
            callback.on_train_end(self, history)
        return history

    def training_loss(self) -> float:
        """The mean loss of the model as it is now on the training set of the current `fit`."""
        inputs, targets = self._training_set
        if not inputs:
            raise InvalidArgumentError("Trainer.training_loss: call fit first")
        return self._scores(inputs, targets, "the training set")[0]

    def _update(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """One update of the parameters from one batch, refusing to step into NaN or infinity.

        Checked in order: predictions and losses, then gradients (at the current
        parameters, which are then kept as the last finite state together with
        the optimizer's buffers), then the parameters after the step.
        """
        params = self.optimizer.params
        self.optimizer.zero_grad()
        batch_losses, outputs = self._accumulate_batch_gradients(X_batch, y_batch)
        bad = next((p for p in params if not math.isfinite(p.grad)), None)
        if bad is not None:
            raise _Divergence(f"the gradient of {bad.label or 'a parameter'} is {bad.grad}")
        self._last_finite = self._snapshot()
        self.optimizer.step()
        self._updates += 1
        bad = next((p for p in params if not math.isfinite(p.data)), None)
        if bad is not None:
            raise _Divergence(f"the update made {bad.label or 'a parameter'} {bad.data}")
        return batch_losses, outputs

    def _snapshot(self) -> tuple[list[float], dict[str, list[float]], int]:
        """The parameters and the optimizer's buffers and step count, as copies."""
        optimizer = self.optimizer
        return [p.data for p in optimizer.params], {k: list(v) for k, v in optimizer.state.items()}, optimizer.steps

    def _diverged(self, what: str) -> NonFiniteError:
        """Put back the last finite state (parameters and optimizer) and describe the divergence."""
        values, state, steps = self._last_finite
        for p, value in zip(self.optimizer.params, values):
            p.data = value
        self.optimizer.state, self.optimizer.steps = state, steps
        kept = (
            "the parameters and the optimizer state were restored to the last ones that gave a finite loss"
            if self._updates
            else "the parameters are unchanged (the first batch already diverged)"
        )
        self.history.stopped_reason = f"diverged {self._where}"
        return NonFiniteError(f"training diverged {self._where}: {what}; {kept}. Try a smaller learning rate.")

    def _check_finite(self, value: float, what: str) -> None:
        if not math.isfinite(value):
            raise _Divergence(f"{what} is {value}")

    def _accumulate_batch_gradients(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """Add ∂E/∂w of the batch's mean loss E = (1/B)·Σ_p E_p into every parameter's ``.grad``.

        Each sample's graph is built, back-propagated with seed 1/B, and dropped
        (with the traced engine: the graph traced once is replayed over the batch).
        Returns each sample's loss E_p and output row, all checked finite.
        """
        if self.engine == "traced":
            try:
                return self._replay_batch_gradients(X_batch, y_batch)
            except (_Divergence, TraceError):
                raise
            except (AutogradError, ArithmeticError, ValueError):
                # A replay reports a math error for the whole batch; the eager pass below
                # finds its cause (a non-finite prediction is a divergence) or raises the same error.
                self.optimizer.zero_grad()
        scale = 1.0 / len(X_batch)
        batch_losses, outputs = [], []
        for x, t in zip(X_batch, y_batch):
            error, row = self._loss(x, t)
            try:
                error.backward(scale)
            except (OverflowError, NonFiniteError) as exc:
                raise _divergence(exc) from exc
            batch_losses.append(error.data)
            outputs.append(row)
        return batch_losses, outputs

    def _loss(self, x: Row, t: Row) -> tuple[Value, Row]:
        """E_p and the output row for one sample, raising `_Divergence` for a non-finite prediction or loss."""
        try:
            output = self.model(x)
            row = _row(output)
            for o in row:
                self._check_finite(o, "a prediction")
            error = self.loss(output, t)
        except (OverflowError, NonFiniteError) as exc:
            raise _divergence(exc) from exc
        self._check_finite(error.data, "the loss")
        return error, row

    def _replay_batch_gradients(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """`_accumulate_batch_gradients` by traced replay: row p of the replay holds [E_p, outputs of p]."""
        if self._traced is None:

            def loss_and_outputs(x: list[Value], t: list[Value]) -> list[Value]:
                output = self.model(x)
                return [self.loss(output, t), *(output if isinstance(output, list) else [output])]

            try:
                self._traced = trace(loss_and_outputs, X_batch[0], y_batch[0])  # a sample the loss accepts
            except TraceError as exc:
                message = f"Trainer(engine='traced') cannot trace this model and loss: {exc}; use engine='eager'"
                raise TraceError(message) from None
        rows = self._traced.forward(X_batch, y_batch)
        for row in rows.tolist():
            for o in row[1:]:
                self._check_finite(o, "a prediction")
            self._check_finite(row[0], "the loss")
        # ∂E/∂E_p = 1/B for the mean loss; the outputs are only read, not differentiated.
        self._traced.backward([[1.0 / len(X_batch)] + [0.0] * (rows.shape[1] - 1)] * len(X_batch))
        return rows[:, 0].tolist(), rows[:, 1:].tolist()

    def _sampler(self, n: int) -> MiniBatchSampler:
        if self.mode == "online":
            return MiniBatchSampler(n, 1, self.shuffle, self.rng)
        if self.mode == "batch":
            return MiniBatchSampler(n, n, False, self.rng)
        return MiniBatchSampler(n, self.batch_size, self.shuffle, self.rng)

    # -- using the model -------------------------------------------------------------
    def evaluate(self, X: Sequence[Sequence[float]], y: Sequence[Any]) -> dict[str, float | None]:
        """``{"loss": mean loss, "accuracy": fraction correct, or None if the targets are not classes}``.

        Classes are read with `decision` (from the training labels of the last `fit`;
        before any fit, from the loss or these labels). Raises `NonFiniteError` if a
        prediction or the loss is not finite.
        """
        inputs, targets = self._dataset(X, y, "evaluate")
        try:
            loss, accuracy = self._scores(inputs, targets, "the data given")
        except _Divergence as exc:
            raise NonFiniteError(f"evaluate: {exc}") from exc.__cause__
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, X: Sequence[Sequence[float]]) -> list[Any]:
        """The model's outputs: a float per sample for one output, else a list per sample."""
        inputs = self._inputs(X, "predict")
        with no_grad():
            rows = [_row(self.model(x)) for x in inputs]
        return [row[0] for row in rows] if len(rows[0]) == 1 else rows

    def _scores(self, inputs: list[Row], targets: list[Row], what: str) -> tuple[float, float | None]:
        """Mean loss and accuracy on a data set, raising `_Divergence` for anything non-finite.

        With the traced engine (once training has traced the loss) the set is scored by
        replay; any error there is looked for again eagerly, which names its cause.
        """
        decide = self.decision or class_decision(targets, self.loss)
        if decide is not None and not decide.accepts(targets):
            decide = None  # labels this decision does not know: no accuracy rather than a wrong one
        try:
            losses_and_rows = self._replayed_scores(inputs, targets)
        except (AutogradError, ArithmeticError, ValueError):
            losses_and_rows = None
        if losses_and_rows is None:
            losses_and_rows = []
            with no_grad():
                for x, t in zip(inputs, targets):
                    try:
                        error, row = self._loss(x, t)
                    except _Divergence as exc:
                        raise _Divergence(f"on {what}, {exc}") from exc.__cause__
                    losses_and_rows.append((error.data, row))
        total, correct = 0.0, 0
        for (loss, row), t in zip(losses_and_rows, targets):
            for o in row:
                if not math.isfinite(o):
                    raise _Divergence(f"on {what}, a prediction is {o}")
            if not math.isfinite(loss):
                raise _Divergence(f"on {what}, the loss is {loss}")
            total += loss / len(inputs)
            if decide is not None:
                correct += decide(row) == decide(t)
        if not math.isfinite(total):
            raise _Divergence(f"on {what}, the mean loss is {total}")
        return total, None if decide is None else correct / len(inputs)

    def _replayed_scores(self, inputs: list[Row], targets: list[Row]) -> list[tuple[float, Row]] | None:
        """(E_p, output row) of every sample by traced replay, or None with the eager engine or before tracing."""
        if self.engine != "traced" or self._traced is None:
            return None
        rows = self._traced.forward(inputs, targets).tolist()
        return [(row[0], row[1:]) for row in rows]

    # -- checking data -----------------------------------------------------------------
    def _inputs(self, X: Sequence[Sequence[float]], where: str) -> list[Row]:
        X = plain(X, f"{where}: X")
        if isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
            raise InvalidTypeError(f"{where}: X must be a list of samples, got {type(X).__name__}")
        if len(X) == 0:
            raise InvalidArgumentError(f"{where}: the data set is empty")
        nin = _width(self.model, "in")
        rows = []
        for i, x in enumerate(X):
            x = plain(x, f"{where}: X[{i}]")
            if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
                raise InvalidTypeError(f"{where}: X[{i}] must be a list of numbers, got {type(x).__name__}")
            nin = len(x) if nin is None else nin  # a model that does not say: every sample as wide as the first
            if len(x) != nin:
                raise ShapeError(f"{where}: X[{i}] has {len(x)} inputs, the model expects {nin}")
            rows.append([as_float(v, f"{where}: X[{i}][{j}]") for j, v in enumerate(x)])
        return rows

    def _dataset(self, X: Sequence[Sequence[float]], y: Sequence[Any], where: str) -> tuple[list[Row], list[Row]]:
        inputs = self._inputs(X, where)
        y = plain(y, f"{where}: y")
        if isinstance(y, (str, bytes)) or not isinstance(y, Sequence):
            raise InvalidTypeError(f"{where}: y must be a list of targets, got {type(y).__name__}")
        if len(y) != len(inputs):
            raise ShapeError(f"{where}: {len(inputs)} samples in X but {len(y)} targets in y")
        nout = _width(self.model, "out")
        targets = []
        for i, t in enumerate(y):
            t = plain(t, f"{where}: y[{i}]")
            row = list(t) if isinstance(t, Sequence) and not isinstance(t, (str, bytes)) else [t]
            nout = len(row) if nout is None else nout
            if len(row) != nout:
                raise ShapeError(f"{where}: y[{i}] has {len(row)} values, the model has {nout} outputs")
            targets.append([as_float(v, f"{where}: y[{i}]") for v in row])
        return inputs, targets


def _width(model: Any, side: str) -> int | None:
    """How many inputs (side "in") or outputs ("out") the model has, or None if it does not say.

    An `MLP` and a `Linear` say (nin, nouts / nout); a `Sequential` says what its first
    module with inputs and its last module with outputs say.
    """
    if isinstance(model, MLP):
        return model.nin if side == "in" else model.nouts[-1]
    if isinstance(model, Sequential):
        modules = model.items
        ordered = modules if side == "in" else modules[::-1]
        return next((w for w in (_width(m, side) for m in ordered) if w is not None), None)
    width = getattr(model, "nin" if side == "in" else "nout", None)
    return width if isinstance(width, int) else None


def _divergence(exc: Exception) -> _Divergence:
    """An overflow the engine raised, or detect_anomaly's NonFiniteError (which names the op), as a divergence."""
    return _Divergence(f"a value overflowed ({exc})" if isinstance(exc, OverflowError) else str(exc))


def _count(n: object, what: str) -> int:
    """A whole number >= 1 (epochs, patience): a float or bool is a type error, as for batch_size."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidTypeError(f"{what} must be an int >= 1, got {type(n).__name__} {n!r}")
    if n < 1:
        raise InvalidArgumentError(f"{what} must be an int >= 1, got {n}")
    return n


def _callbacks(callbacks: object) -> list[Callback]:
    """One callback or an iterable of them, read once into a list (a generator can be read only once)."""
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise InvalidTypeError(f"fit: callbacks must be a Callback or a list of them, got {callbacks!r}")
    items = list(callbacks)
    for callback in items:
        if not isinstance(callback, Callback):
            raise InvalidTypeError(f"fit: callbacks must be nn.trainer.Callback objects, got {callback!r}")
    return items


def _pair(validation: object) -> tuple[Any, Any]:
    if isinstance(validation, (str, bytes)) or not isinstance(validation, Sequence) or len(validation) != 2:
        raise InvalidTypeError(f"fit: validation must be a pair (X, y), got {type(validation).__name__}")
    return validation[0], validation[1]


def _row(output: Value | list[Value]) -> Row:
    return [o.data for o in output] if isinstance(output, list) else [output.data]


def _summary(history: History) -> dict[str, str]:
    summary = {"loss": f"{history.loss[-1]:.4g}"}
    if history.accuracy:
        summary["acc"] = f"{history.accuracy[-1]:.1%}"
    if history.val_loss:
        summary["val_loss"] = f"{history.val_loss[-1]:.4g}"
    return summary


def _progress_bar(epochs: int) -> Any:
    """A tqdm bar on stderr when it is a terminal and tqdm is installed, else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety: without tqdm, train silently
        return None
    return tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)
