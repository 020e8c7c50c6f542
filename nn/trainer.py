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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from autograd import Value, no_grad, trace
from autograd.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError, ShapeError, TraceError
from autograd.value import as_float

from . import init as initializers
from . import losses
from .module import MLP
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
    when the targets are not class labels (see `class_decision`).
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
    ``restore_best`` the model gets back the parameters of its best epoch."""

    def __init__(
        self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True, monitor: str | None = None
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise InvalidArgumentError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        self.patience = patience
        self.min_delta = as_float(min_delta, "EarlyStopping (min_delta)")
        if self.min_delta < 0:
            raise InvalidArgumentError(f"EarlyStopping: min_delta must be >= 0, got {self.min_delta}")
        if monitor not in (None, "loss", "val_loss"):
            raise InvalidArgumentError(f"EarlyStopping: monitor must be 'loss' or 'val_loss', got {monitor!r}")
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
        value = getattr(history, self.watched)[-1]
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
                f"for {self.patience} epochs (best {self.best:.6g} at epoch {self.best_epoch})"
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


def class_decision(targets: list[Row]) -> Callable[[Row], Any] | None:
    """How to read a class from an output row, or None when the targets are not classes.

    One output with labels in {0, 1}: class = output > 0.5 (a sigmoid's midpoint);
    labels in {-1, +1}: class = output > 0 (tanh's midpoint). The threshold is the
    midpoint of the two labels, whatever the output activation. Several outputs
    with one-hot targets: class = index of the largest output.
    """
    values = {t for row in targets for t in row}
    if len(targets[0]) == 1:
        for low, high in ((0.0, 1.0), (-1.0, 1.0)):
            if values <= {low, high}:
                middle = (low + high) / 2
                return lambda row: high if row[0] > middle else low
        return None
    if values <= {0.0, 1.0} and all(sum(row) == 1.0 for row in targets):
        return lambda row: row.index(max(row))
    return None


class Trainer:
    """Fits ``model`` with ``optimizer`` on ``loss``, in one of `MODES`.

    ``batch_size`` is used in minibatch mode; ``shuffle`` orders the samples
    randomly each epoch in online and minibatch mode (from ``seed``, never the
    global random state). ``engine`` chooses how gradients are computed (`ENGINES`).
    """

    def __init__(
        self,
        model: MLP,
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InvalidTypeError(f"Trainer: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise InvalidArgumentError(f"Trainer: batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.mode = mode
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = initializers.make_rng(seed)
        self.engine = engine
        self._traced: Any = None  # the traced per-sample loss, made on the first traced batch
        self.stop_training = False
        self.has_validation = False
        self.history = History()

    # -- training ------------------------------------------------------------------
    def fit(
        self,
        X: Sequence[Sequence[float]],
        y: Sequence[Any],
        epochs: int,
        validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
        progress: bool = True,
        callbacks: Sequence[Callback] = (),
    ) -> History:
        """Train for ``epochs`` epochs (fewer if a callback stops it) and return the `History`.

        If the loss or a gradient becomes NaN or infinite, training stops with
        `NonFiniteError` naming the epoch and batch, and the parameters are first
        restored to the last ones that gave a finite loss. ``self.history`` holds
        the epochs done so far in every case.
        """
        inputs, targets = self._dataset(X, y, "fit")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise InvalidArgumentError(f"fit: epochs must be an int >= 1, got {epochs!r}")
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise InvalidTypeError(f"fit: callbacks must be nn.trainer.Callback objects, got {callback!r}")
        val_inputs, val_targets = self._dataset(*validation, "fit (validation)") if validation else ([], [])
        self.has_validation = bool(validation)
        decide = class_decision(targets)
        sampler = self._sampler(len(inputs))
        history = self.history = History()
        self.stop_training = False
        # Only parameters seen in this run may be restored: the user may have changed them since the last one.
        self._last_finite: list[float] | None = None
        bar = _progress_bar(epochs) if progress else None
        for callback in callbacks:
            callback.on_train_begin(self, history)
        try:
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                loss_sum, correct, updates = 0.0, 0, 0
                for batch_number, indices in enumerate(sampler, start=1):
                    batch_losses, outputs = self._update(
                        [inputs[i] for i in indices], [targets[i] for i in indices], epoch, batch_number
                    )
                    updates += 1
                    loss_sum += sum(batch_losses)
                    if decide is not None:
                        correct += sum(decide(o) == decide(targets[i]) for o, i in zip(outputs, indices))
                history.loss.append(loss_sum / len(inputs))
                if decide is not None:
                    history.accuracy.append(correct / len(inputs))
                if val_inputs:
                    val_loss, val_accuracy = self._scores(val_inputs, val_targets)
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
        finally:
            if bar is not None:
                bar.close()
        for callback in callbacks:
            callback.on_train_end(self, history)
        return history

    def _update(self, X_batch: list[Row], y_batch: list[Row], epoch: int, batch: int) -> tuple[list[float], list[Row]]:
        """One update of the parameters from one batch, refusing to step into NaN or infinity."""
        params = self.optimizer.params
        before = [p.data for p in params]
        self.optimizer.zero_grad()
        try:
            batch_losses, outputs = self._accumulate_batch_gradients(X_batch, y_batch)
        except OverflowError as exc:
            raise self._diverged(epoch, batch, f"a value overflowed ({exc})") from exc
        except NonFiniteError as exc:  # from detect_anomaly, naming the op: the model is restored all the same
            raise self._diverged(epoch, batch, str(exc)) from exc
        loss = sum(batch_losses) / len(batch_losses)
        if not math.isfinite(loss):
            raise self._diverged(epoch, batch, f"the loss is {loss}")
        self._last_finite = before
        bad = next((p for p in params if not math.isfinite(p.grad)), None)
        if bad is not None:
            raise self._diverged(epoch, batch, f"the gradient of {bad.label or 'a parameter'} is {bad.grad}")
        self.optimizer.step()
        return batch_losses, outputs

    def _diverged(self, epoch: int, batch: int, what: str) -> NonFiniteError:
        """Put back the last parameters that gave a finite loss and describe the divergence."""
        last = self._last_finite
        if last is not None:
            for p, value in zip(self.optimizer.params, last):
                p.data = value
        kept = (
            "the parameters were restored to the last values that gave a finite loss"
            if last is not None
            else "the parameters are unchanged (the first batch already diverged)"
        )
        self.history.stopped_reason = f"diverged at epoch {epoch}, batch {batch}"
        return NonFiniteError(
            f"training diverged at epoch {epoch}, batch {batch}: {what}; {kept}. Try a smaller learning rate."
        )

    def _accumulate_batch_gradients(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """Add ∂E/∂w of the batch's mean loss E = (1/B)·Σ_p E_p into every parameter's ``.grad``.

        Each sample's graph is built, back-propagated with seed 1/B, and dropped
        (with the traced engine: the graph traced once is replayed over the batch).
        Returns each sample's loss E_p and output row.
        """
        if self.engine == "traced":
            return self._replay_batch_gradients(X_batch, y_batch)
        scale = 1.0 / len(X_batch)
        batch_losses, outputs = [], []
        for x, t in zip(X_batch, y_batch):
            output = self.model(x)
            error = self.loss(output, t)
            error.backward(scale)
            batch_losses.append(error.data)
            outputs.append(_row(output))
        return batch_losses, outputs

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
        """``{"loss": mean loss, "accuracy": fraction correct, or None if the targets are not classes}``."""
        loss, accuracy = self._scores(*self._dataset(X, y, "evaluate"))
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, X: Sequence[Sequence[float]]) -> list[Any]:
        """The model's outputs: a float per sample for one output, else a list per sample."""
        inputs = self._inputs(X, "predict")
        with no_grad():
            rows = [_row(self.model(x)) for x in inputs]
        return [row[0] for row in rows] if len(rows[0]) == 1 else rows

    def _scores(self, inputs: list[Row], targets: list[Row]) -> tuple[float, float | None]:
        decide = class_decision(targets)
        total, correct = 0.0, 0
        with no_grad():
            for x, t in zip(inputs, targets):
                output = self.model(x)
                total += self.loss(output, t).data
                if decide is not None:
                    correct += decide(_row(output)) == decide(t)
        return total / len(inputs), None if decide is None else correct / len(inputs)

    # -- checking data -----------------------------------------------------------------
    def _inputs(self, X: Sequence[Sequence[float]], where: str) -> list[Row]:
        if isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
            raise InvalidTypeError(f"{where}: X must be a list of samples, got {type(X).__name__}")
        if len(X) == 0:
            raise InvalidArgumentError(f"{where}: the data set is empty")
        nin = self.model.nin
        rows = []
        for i, x in enumerate(X):
            if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
                raise InvalidTypeError(f"{where}: X[{i}] must be a list of {nin} numbers, got {type(x).__name__}")
            if len(x) != nin:
                raise ShapeError(f"{where}: X[{i}] has {len(x)} inputs, the model expects {nin}")
            rows.append([as_float(v, f"{where}: X[{i}][{j}]") for j, v in enumerate(x)])
        return rows

    def _dataset(self, X: Sequence[Sequence[float]], y: Sequence[Any], where: str) -> tuple[list[Row], list[Row]]:
        inputs = self._inputs(X, where)
        if isinstance(y, (str, bytes)) or not isinstance(y, Sequence):
            raise InvalidTypeError(f"{where}: y must be a list of targets, got {type(y).__name__}")
        if len(y) != len(inputs):
            raise ShapeError(f"{where}: {len(inputs)} samples in X but {len(y)} targets in y")
        nout = self.model.nouts[-1]
        targets = []
        for i, t in enumerate(y):
            row = list(t) if isinstance(t, Sequence) and not isinstance(t, (str, bytes)) else [t]
            if len(row) != nout:
                raise ShapeError(f"{where}: y[{i}] has {len(row)} values, the model has {nout} outputs")
            targets.append([as_float(v, f"{where}: y[{i}]") for v in row])
        return inputs, targets


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
