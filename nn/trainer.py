"""Training loops: the three ways textbooks present backpropagation over a data set.

- ``online``: update after every sample (per-pattern learning);
- ``batch``: accumulate over the whole set, one update per epoch;
- ``minibatch``: random mini-batches, reshuffled each epoch (`MiniBatchSampler`).

In batch and minibatch mode the update uses the gradient of the *mean* loss
over the batch, ∂E/∂w = (1/B)·Σ_p ∂E_p/∂w, so the learning rate does not have
to shrink as the batch grows (PyTorch's convention with ``reduction="mean"``).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import itertools
import math
import operator
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from autograd import Value, maximum, no_grad, sum_values, trace
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
from .lr_scheduler import LRScheduler
from .module import MLP, plain
from .modules import BatchNorm1d, Dropout, Module, Sequential
from .optim import Optimizer
from .utils import clip_coefficient, clip_grad_norm_

MODES = ("online", "batch", "minibatch")
#: How gradients are computed: "eager" builds the graph of every sample with Values;
#: "traced" records the graph of one sample's loss once (`autograd.trace`) and
#: replays it with numpy over each batch (same numbers, much faster; the loss
#: must not branch on values in Python: every loss of `nn.losses` can be traced).
#: `Trainer` also takes engine="auto": traced where it can be, else eager.
ENGINES = ("eager", "traced")
CLASS_INDEX_LOSSES = losses.CLASS_INDEX_LOSSES  # cross_entropy: a class index as the target of K logits

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

    ``lr`` is the learning rate the epoch's updates used (empty for an optimizer
    without one, such as Rprop): constant, or what the Trainer's scheduler set.
    With gradient clipping (``Trainer(clip=...)``), ``grad_norm`` is the largest
    gradient norm ‖g‖ of the epoch's updates *before* clipping and ``clipped``
    how many of its updates were clipped (‖g‖ > clip); both stay empty otherwise.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)
    updates: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped: list[int] = field(default_factory=list)
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
        self._everything: list[int] | None = None

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle and self.batch_size >= self.n:  # one batch of every sample, in order: the same list
            if self._everything is None:
                self._everything = list(range(self.n))
            yield self._everything
            return
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

    def classes(self, rows: Any) -> Any:
        """The class of every row of an (n, outputs) numpy array at once: ``decision(row)`` row by row."""
        if self.labels is None:
            return rows.argmax(axis=1)  # the first largest, as row.index(max(row))
        low, high = self.labels
        return _numpy().where(rows[:, 0] > self.threshold, high, low)

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


@dataclass
class _Snapshot:
    """The state `Trainer.fit` restores after a divergence (see `Trainer._snapshot`): the
    parameters and buffers as lists, or as arrays while a traced fit keeps them in `_Arrays`."""

    values: Any
    state: dict[str, Any]
    layout: _Layout | None  # the order of a traced fit's arrays, or None: the optimizer's order
    steps: int
    lr: float | None
    scheduler: dict[str, Any] | None
    buffers: list[tuple[Module, dict[str, Any]]]


class _Divergence(NonFiniteError):
    """A non-finite number met while training: `Trainer.fit` restores the last finite state and
    raises a NonFiniteError saying where; outside `fit` it reaches the caller as it is."""


class Trainer:
    """Fits ``model`` with ``optimizer`` on ``loss``, in one of `MODES`.

    ``batch_size`` is used in minibatch mode; ``shuffle`` orders the samples
    randomly each epoch in online and minibatch mode (from ``seed``, never the
    global random state). ``engine`` chooses how gradients are computed (`ENGINES`),
    or "auto": traced when numpy is installed and the model and loss can be traced,
    else eager (decided by `choose_engine` at the first `fit`).
    ``decision`` is how outputs are read as classes (`class_decision`), fixed by
    the training labels of the last `fit` and used for every accuracy after it.

    ``scheduler``: an `nn.lr_scheduler` schedule made on ``optimizer``; `fit` calls
    its ``step()`` once at the end of every epoch (after the validation pass), as
    PyTorch's usual loop does, so epoch e (counted from 1) trains with η(e − 1).
    ``clip``: a maximum gradient norm; every update then rescales the batch's
    gradient with `nn.utils.clip_grad_norm_` between the backward pass and the step,
    g ← g · min(1, clip / (‖g‖ + 10⁻⁶)). Both are recorded in `History`.

    Multi-class: with ``loss=nn.losses.cross_entropy`` the targets are class indices
    0..K−1 and the model has K outputs (logits); accuracy is argmax accuracy and
    `predict` returns classes.

    Models with `nn.BatchNorm1d` (any module with its own ``forward_batch``) are run a
    batch at a time (``model.forward_batch(batch)``) in training mode, so batch and
    minibatch mode only (a batch of one sample has no variance), with the eager engine;
    scoring (`evaluate`, `predict`, validation) runs the model in eval mode.
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
        scheduler: LRScheduler | None = None,
        clip: float | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"Trainer: optimizer must be an nn.optim optimizer, got {type(optimizer).__name__}")
        if not callable(loss):
            raise InvalidTypeError(f"Trainer: loss must be a function like nn.losses.mse, got {loss!r}")
        if mode not in MODES:
            raise InvalidArgumentError(f"Trainer: mode must be one of {list(MODES)}, got {mode!r}")
        if engine not in (*ENGINES, "auto"):
            raise InvalidArgumentError(f"Trainer: engine must be one of {[*ENGINES, 'auto']}, got {engine!r}")
        if scheduler is not None:
            if not isinstance(scheduler, LRScheduler):
                raise InvalidTypeError(
                    "Trainer: scheduler must be an nn.lr_scheduler schedule (StepLR, ...), "
                    f"got {type(scheduler).__name__}"
                )
            if scheduler.optimizer is not optimizer:
                raise InvalidArgumentError("Trainer: the scheduler was made for another optimizer than the Trainer's")
        if clip is not None:
            clip = as_float(clip, "Trainer (clip)")
            if not clip > 0.0:
                raise InvalidArgumentError(f"Trainer: clip (the largest gradient norm) must be > 0, got {clip}")
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
        self.scheduler = scheduler
        self.clip = clip
        self._class_targets = loss in CLASS_INDEX_LOSSES
        # A module that overrides forward_batch (BatchNorm1d) needs the whole batch at once.
        self._batchwise = any(
            type(m).forward_batch is not Module.forward_batch and not isinstance(m, Sequential) for m in _modules(model)
        )
        if self._batchwise and (mode == "online" or (mode == "minibatch" and batch_size == 1)):
            raise InvalidArgumentError(
                f"Trainer: {_batch_modules(model)} normalises over the batch, and a batch of one sample has "
                "no variance: use mode='batch' or 'minibatch' with batch_size >= 2"
            )
        if engine == "traced" and _untraceable(model):
            raise InvalidArgumentError(
                f"Trainer(engine='traced'): a trace records one sample's graph once, but {_untraceable(model)} "
                "changes from sample to sample (dropout masks) or depends on the whole batch (batch norm); "
                "use engine='eager'"
            )
        self.engine = engine
        self.engine_note = ""  # why "auto" chose the engine it chose (see `choose_engine`)
        self._traced: Any = None  # the traced per-sample loss, made on the first traced fit
        self._arrays: _Arrays | None = None  # the arrays of a traced fit, while it runs
        self._layout: _Layout | None = None  # where a traced fit keeps each parameter in its arrays
        self._norms: list[float] = []  # the gradient norms of the current epoch's updates (with clip)
        self._buffered: list[Module] = []  # the modules with buffers (batch norm), set by fit
        self.stop_training = False
        self.has_validation = False
        self.history = History()
        self.decision: ClassDecision | None = None
        self._training_set: tuple[list[Row], list[Row]] = ([], [])
        self._checked: _CheckedSet | None = None  # the last training set, checked (see `_training_data`)

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
        calling `fit` again resumes from a consistent state (the scheduler's step
        count and learning rate, and batch norm's running statistics, are put back
        too). ``self.history`` holds the epochs completed so far in every case.

        The model trains in training mode (``model.train()``: dropout drops, batch
        norm uses the batch's statistics) and is scored in eval mode; each module
        gets back the mode it had before `fit`.
        """
        checked = self._training_data(X, y)
        inputs, targets = checked.inputs, checked.targets
        epochs = _count(epochs, "fit: epochs")
        callbacks = _callbacks(callbacks)
        has_validation = validation is not None
        val_inputs, val_targets = (
            self._dataset(*_pair(validation), "fit (validation)") if has_validation else ([], [])
        )
        self.has_validation = has_validation
        self.decision = checked.decision(self.loss, self._class_targets)
        self._training_set = (inputs, targets)
        sampler = self._sampler(len(inputs))
        if self._batchwise and min(len(batch) for batch in sampler) < 2:
            raise InvalidArgumentError(
                f"fit: {_batch_modules(self.model)} normalises over the batch, but with {len(inputs)} samples "
                f"and batch_size {self.batch_size} a batch holds 1 sample, which has no variance; "
                "choose a batch_size that leaves no batch of one"
            )
        if self.engine == "auto":
            self._settle_engine(inputs[0], targets[0])
        history = self.history = History()
        self.stop_training = False
        # Only states seen in this run may be restored: the user may have changed the model since the last one.
        self._buffered = [m for m in _modules(self.model) if m._buffers()]  # found once, snapshot every update
        if not self._trains_in_arrays():  # (else taken from the arrays, once they are made)
            self._last_finite = self._snapshot()
        self._updates = 0
        self._where = "before the first update"
        bar = _progress_bar(epochs) if progress else None
        for callback in callbacks:
            callback.on_train_begin(self, history)
        modes = _modes(self.model)
        if isinstance(self.model, Module):
            self.model.train()
        try:
            # Traced training keeps weights, gradients and the optimizer's buffers in arrays
            # (`_Arrays`); they are written back to the model before anything reads it.
            arrays = self._arrays = self._array_training(checked)
            if arrays is not None:
                self._last_finite = self._snapshot()
            try:
                for epoch in range(1, epochs + 1):
                    started = time.perf_counter()
                    loss_sum, correct, updates = 0.0, 0, 0
                    lr = getattr(self.optimizer, "lr", None)
                    self._norms = []
                    for batch_number, indices in enumerate(sampler, start=1):
                        self._where = f"at epoch {epoch}, batch {batch_number}"
                        updates += 1
                        if arrays is not None:
                            loss_share, right = self._update_arrays(arrays, indices)
                            loss_sum += loss_share
                            correct += right
                            continue
                        batch_losses, outputs = self._update(
                            [inputs[i] for i in indices], [targets[i] for i in indices]
                        )
                        # A sum of per-sample shares, so a mean of finite losses cannot overflow.
                        loss_sum += sum(loss / len(inputs) for loss in batch_losses)
                        if self.decision is not None:
                            correct += sum(
                                self.decision(o) == self.decision(targets[i]) for o, i in zip(outputs, indices)
                            )
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
                    if lr is not None:
                        history.lr.append(lr)
                    if self.clip is not None:
                        history.grad_norm.append(max(self._norms))
                        history.clipped.append(sum(norm > self.clip for norm in self._norms))
                    history.epoch_time.append(time.perf_counter() - started)
                    if self.scheduler is not None:
                        self.scheduler.step()
                    if bar is not None:
                        bar.set_postfix(_summary(history), refresh=False)
                        bar.update(1)
                    if callbacks and arrays is not None:
                        arrays.write_back()  # a callback may read the model (or change it: read again below)
                    for callback in callbacks:
                        callback.on_epoch_end(self, epoch, history)
                    if callbacks and arrays is not None:
                        arrays.read()
                    if self.stop_training:
                        break
                else:
                    history.stopped_reason = f"completed {epochs} epochs"
                # The last update has not been seen by a loss yet: score the final model once.
                self.training_loss()
            finally:
                if self._arrays is not None:  # however fit ends, the model holds what training made
                    self._arrays.write_back()
                    self._arrays = None
        except _Divergence as exc:
            raise self._diverged(str(exc)) from exc.__cause__
        finally:
            if bar is not None:
                bar.close()
            _restore_modes(modes)
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
        if self.clip is not None:
            self._norms.append(clip_grad_norm_(params, self.clip))
        self.optimizer.step()
        self._updates += 1
        bad = next((p for p in params if not math.isfinite(p.data)), None)
        if bad is not None:
            raise _Divergence(f"the update made {bad.label or 'a parameter'} {bad.data}")
        return batch_losses, outputs

    def _array_training(self, checked: _CheckedSet) -> _Arrays | None:
        """The arrays a traced fit trains in (see `_Arrays`), or None with the eager engine."""
        if not self._trains_in_arrays():
            return None
        if self._traced is None:
            self._traced = self._checked_trace(checked.inputs[0], checked.targets[0])
        if self._layout is None or not self._layout.describes(self._traced, self.optimizer):
            self._layout = _Layout(self._traced, self.optimizer)  # found once, for every fit after it
        return _Arrays(self._traced, self.optimizer, self._layout, checked, self.decision, self.mode == "batch")

    def _trains_in_arrays(self) -> bool:
        """True when `fit` keeps the weights in `_Arrays`: the traced engine, per-sample graphs."""
        return self.engine == "traced" and not self._batchwise

    def _update_arrays(self, arrays: _Arrays, indices: list[int]) -> tuple[float, int]:
        """`_update` on the arrays: one replay of the batch, the checks in the same order, the
        array step of the optimizer (`Optimizer.step_arrays`). Returns the batch's share of the
        epoch's mean loss, (1/N)·Σ_p E_p, and how many of its samples were classified right.
        """
        np = _numpy()
        try:
            rows, grad = arrays.gradient(indices)
        except (_Divergence, TraceError):
            raise
        except (AutogradError, ArithmeticError, ValueError):
            # As `_accumulate_batch_gradients`: the eager pass on the Values finds the cause
            # (a divergence), raises the same error, or trains on this batch.
            arrays.write_back()
            inputs, targets = arrays.inputs, arrays.targets
            batch_losses, outputs = self._update([inputs[i] for i in indices], [targets[i] for i in indices])
            arrays.read()
            rows = np.column_stack([batch_losses, outputs])
        else:
            if not arrays.trace.gradient_checked and not np.isfinite(grad).all():
                k = int(np.flatnonzero(~np.isfinite(grad))[0])
                bad = arrays.params[k]
                raise _Divergence(f"the gradient of {bad.label or 'a parameter'} is {float(grad[k])}")
            self._last_finite = self._snapshot()
            if self.clip is not None:
                norm = math.hypot(*grad.tolist())  # as clip_grad_norm_ on the Values
                self._norms.append(norm)
                grad = grad * clip_coefficient(norm, self.clip)
            arrays.step(grad)
            self._updates += 1
            if not np.isfinite(arrays.weights).all():
                k = int(np.flatnonzero(~np.isfinite(arrays.weights))[0])
                bad = arrays.params[k]
                raise _Divergence(f"the update made {bad.label or 'a parameter'} {float(arrays.weights[k])}")
        share = float(np.add.reduce(rows[:, 0] / len(arrays.inputs)))
        return share, arrays.correct(rows[:, 1:], indices)

    def _snapshot(self) -> _Snapshot:
        """Copies of what an update changes: the parameters, the optimizer's buffers, step count and
        learning rate, the scheduler's state and the model's buffers (batch norm's running statistics)."""
        optimizer = self.optimizer
        arrays = self._arrays
        return _Snapshot(
            [p.data for p in optimizer.params] if arrays is None else arrays.weights.copy(),
            {k: list(v) for k, v in optimizer.state.items()} if arrays is None else dict(arrays.buffers),
            None if arrays is None else arrays.layout,
            optimizer.steps,
            getattr(optimizer, "lr", None),
            None if self.scheduler is None else self.scheduler.state_dict(),
            [(m, m._buffers()) for m in self._buffered],
        )

    def _diverged(self, what: str) -> NonFiniteError:
        """Put back the last finite state (parameters, optimizer, scheduler, buffers) and describe the divergence."""
        snapshot = self._last_finite
        layout = snapshot.layout
        if layout is None:
            values, state = snapshot.values, snapshot.state
        else:  # arrays in the order of a traced fit
            values = layout.in_optimizer_order(snapshot.values)
            state = {name: layout.in_optimizer_order(buffer) for name, buffer in snapshot.state.items()}
        for p, value in zip(self.optimizer.params, values):
            p.data = value
        self.optimizer.state = {name: list(buffer) for name, buffer in state.items()}
        self.optimizer.steps = snapshot.steps
        if snapshot.lr is not None:
            self.optimizer.lr = snapshot.lr  # type: ignore[attr-defined]
        if self.scheduler is not None and snapshot.scheduler is not None:
            self.scheduler.load_state_dict(snapshot.scheduler)
        for module, buffers in snapshot.buffers:
            for name, value in buffers.items():
                module._load_buffer(name, copy.deepcopy(value))
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
        (with the traced engine: the graph traced once is replayed over the batch;
        for a model with batch norm: one graph of the whole batch, ``forward_batch``).
        Returns each sample's loss E_p and output row, all checked finite.
        """
        if self._batchwise:
            return self._batch_graph_gradients(X_batch, y_batch)
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

    def _batch_graph_gradients(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """`_accumulate_batch_gradients` through one graph of the whole batch: E = (1/B)·Σ_p E_p,
        with the outputs from ``model.forward_batch`` (each depends on every sample: batch norm)."""
        try:
            outputs = self.model.forward_batch(X_batch)  # type: ignore[union-attr]
            rows = [_row(output) for output in outputs]
            for row in rows:
                for o in row:
                    self._check_finite(o, "a prediction")
            errors = [self.loss(output, self._target(t)) for output, t in zip(outputs, y_batch)]
            for error in errors:
                self._check_finite(error.data, "the loss")
            (sum_values(errors) * (1.0 / len(errors))).backward()
        except (OverflowError, NonFiniteError) as exc:
            raise exc if isinstance(exc, _Divergence) else _divergence(exc) from exc
        return [error.data for error in errors], rows

    def _target(self, t: Row) -> Any:
        """What the loss takes as the target: the row itself, or the class index (``loss=cross_entropy``)."""
        return t.index(1.0) if self._class_targets else t

    def _loss(self, x: Row, t: Row) -> tuple[Value, Row]:
        """E_p and the output row for one sample, raising `_Divergence` for a non-finite prediction or loss."""
        try:
            output = self.model(x)
            row = _row(output)
            for o in row:
                self._check_finite(o, "a prediction")
            error = self.loss(output, self._target(t))
        except (OverflowError, NonFiniteError) as exc:
            raise _divergence(exc) from exc
        self._check_finite(error.data, "the loss")
        return error, row

    def _replay_batch_gradients(self, X_batch: list[Row], y_batch: list[Row]) -> tuple[list[float], list[Row]]:
        """`_accumulate_batch_gradients` by traced replay: row p of the replay holds [E_p, outputs of p]."""
        if self._traced is None:
            self._traced = self._checked_trace(X_batch[0], y_batch[0])  # a sample the loss accepts
        rows = self._traced.forward(X_batch, y_batch)
        _check_rows(rows)
        # ∂E/∂E_p = 1/B for the mean loss; the outputs are only read, not differentiated.
        self._traced.backward([[1.0 / len(X_batch)] + [0.0] * (rows.shape[1] - 1)] * len(X_batch))
        return rows[:, 0].tolist(), rows[:, 1:].tolist()

    def _checked_trace(self, x: Row, t: Row) -> Any:
        """`_trace`, with an error that says what to do when the model and loss cannot be traced."""
        try:
            return self._trace(x, t)
        except TraceError as exc:
            message = f"Trainer(engine='traced') cannot trace this model and loss: {exc}; use engine='eager'"
            raise TraceError(message) from None

    def _trace(self, x: Row, t: Row) -> Any:
        """`autograd.trace` of [E_p, outputs of p] as a function of one sample's inputs and target row.

        A class-index loss is traced in its one-hot form, E = −Σ_k t_k·log softmax(z)_k,
        with the one-hot target row as traced input (picking the class would be control flow).
        """
        loss: Callable[[Any, Any], Value] = _one_hot_cross_entropy if self._class_targets else self.loss

        def loss_and_outputs(x: list[Value], t: list[Value]) -> list[Value]:
            output = self.model(x)
            return [loss(output, t), *(output if isinstance(output, list) else [output])]

        return trace(loss_and_outputs, x, t)

    def choose_engine(self, X: Sequence[Sequence[float]], y: Sequence[Any]) -> str:
        """Settle ``engine="auto"`` on the data's first sample; returns a line saying which engine and why.

        Traced when numpy is installed, no module changes from sample to sample or depends on the
        batch (Dropout, BatchNorm1d), and the model and loss can be traced; else eager. `fit` calls
        it when the engine is still "auto"; with an engine given it only describes it.
        """
        inputs, targets = self._dataset(X, y, "choose_engine")
        self._settle_engine(inputs[0], targets[0])
        if self.engine == "traced":
            return "engine: traced (one sample's graph recorded once, replayed over each batch with numpy)"
        why = f"; {self.engine_note}" if self.engine_note else ""
        return f"engine: eager (a graph of Values for every sample{why})"

    def _settle_engine(self, x: Row, t: Row) -> None:
        """Replace engine "auto" by "traced" or "eager" (see `choose_engine`), tracing on the sample (x, t)."""
        if self.engine == "auto":
            self.engine, self.engine_note = "eager", ""
            if importlib.util.find_spec("numpy") is None:
                self.engine_note = "numpy is not installed"
            elif _untraceable(self.model):
                self.engine_note = f"{_untraceable(self.model)} cannot be traced"
            else:
                try:
                    self._traced = self._trace(x, t)
                    self.engine = "traced"
                except (AutogradError, ArithmeticError, ValueError) as exc:
                    self.engine_note = f"the model and loss cannot be traced: {exc}"

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
        if self.engine == "auto":
            self._settle_engine(inputs[0], targets[0])
        try:
            loss, accuracy = self._scores(inputs, targets, "the data given")
        except _Divergence as exc:
            raise NonFiniteError(f"evaluate: {exc}") from exc.__cause__
        return {"loss": loss, "accuracy": accuracy}

    def predict(self, X: Sequence[Sequence[float]]) -> list[Any]:
        """The model's outputs, in eval mode: a float per sample for one output, else a list per sample;
        with a class-index loss (``cross_entropy``), the class of each sample (the argmax of its logits)."""
        inputs = self._inputs(X, "predict")
        modes = _modes(self.model)
        try:
            if isinstance(self.model, Module):
                self.model.eval()
            with no_grad():
                rows = [_row(self.model(x)) for x in inputs]
        finally:
            _restore_modes(modes)
        if self._class_targets:
            return [row.index(max(row)) for row in rows]
        return [row[0] for row in rows] if len(rows[0]) == 1 else rows

    def _scores(self, inputs: list[Row], targets: list[Row], what: str) -> tuple[float, float | None]:
        """Mean loss and accuracy on a data set, raising `_Divergence` for anything non-finite.

        With the traced engine (once training has traced the loss) the set is scored by
        replay; any error there is looked for again eagerly, which names its cause.
        """
        checked = self._checked
        if self.decision is not None:
            decide: ClassDecision | None = self.decision
        elif checked is not None and targets is checked.targets:  # the training set: found once
            decide = checked.decision(self.loss, self._class_targets)
        else:
            decide = ClassDecision(None) if self._class_targets else class_decision(targets, self.loss)
        if decide is not None and not decide.accepts(targets):
            decide = None  # labels this decision does not know: no accuracy rather than a wrong one
        try:
            rows = self._replayed_scores(inputs, targets)
        except (AutogradError, ArithmeticError, ValueError):
            rows = None
        if rows is not None:
            np = _numpy()
            finite = np.isfinite(rows).all()
            total = float((rows[:, 0] / len(inputs)).sum()) if finite else math.nan
            if math.isfinite(total):
                if decide is None:
                    return total, None
                arrays = self._arrays
                T = arrays.T if arrays is not None and targets is arrays.targets else np.array(targets, dtype=float)
                return total, int((decide.classes(rows[:, 1:]) == decide.classes(T)).sum()) / len(inputs)
            losses_and_rows = [(row[0], row[1:]) for row in rows.tolist()]  # the loop below says what is not finite
        else:
            losses_and_rows = []
            modes = _modes(self.model)
            try:
                if isinstance(self.model, Module):
                    self.model.eval()  # dropout off, batch norm with its running statistics
                with no_grad():
                    for x, t in zip(inputs, targets):
                        try:
                            error, row = self._loss(x, t)
                        except _Divergence as exc:
                            raise _Divergence(f"on {what}, {exc}") from exc.__cause__
                        losses_and_rows.append((error.data, row))
            finally:
                _restore_modes(modes)
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

    def _replayed_scores(self, inputs: list[Row], targets: list[Row]) -> Any:
        """[E_p, outputs of p] of every sample by traced replay (an array), or None with the eager engine
        or before tracing. During a traced fit, with the weights of its arrays."""
        if self.engine != "traced" or self._traced is None:
            return None
        arrays = self._arrays
        if arrays is None:
            return self._traced.forward(inputs, targets)
        if inputs is arrays.inputs and targets is arrays.targets:
            return self._traced.forward(arrays.batch, theta=arrays.theta())
        return self._traced.forward(inputs, targets, theta=arrays.theta())

    # -- checking data -----------------------------------------------------------------
    def _training_data(self, X: Sequence[Sequence[float]], y: Sequence[Any]) -> _CheckedSet:
        """The training set of `fit`, checked by `_dataset`, or as checked by the last `fit` if it holds
        the same numbers (`_CheckedSet.holds`: training again on the same lists is common)."""
        checked = self._checked
        if checked is not None and checked.holds(X, y, self.model):
            return checked
        inputs, targets = self._dataset(X, y, "fit")
        checked = _CheckedSet(X, y, inputs, targets, self.model)
        self._checked = checked if checked.kept else None
        return checked

    def _inputs(self, X: Sequence[Sequence[float]], where: str) -> list[Row]:
        X = plain(X, f"{where}: X")
        if isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
            raise InvalidTypeError(f"{where}: X must be a list of samples, got {type(X).__name__}")
        if len(X) == 0:
            raise InvalidArgumentError(f"{where}: the data set is empty")
        nin = _width(self.model, "in")
        rows = _float_rows(X, nin)
        if rows is not None:
            return rows
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
        if self._class_targets:
            return inputs, _one_hot_targets(y, nout, where)
        if nout == 1 and type(y) is list and set(map(type, y)) == {float} and math.isfinite(sum(y)):
            return inputs, [[t] for t in y]  # the common case, checked in bulk as in `_float_rows`
        targets = []
        for i, t in enumerate(y):
            t = plain(t, f"{where}: y[{i}]")
            row = list(t) if isinstance(t, Sequence) and not isinstance(t, (str, bytes)) else [t]
            nout = len(row) if nout is None else nout
            if len(row) != nout:
                raise ShapeError(f"{where}: y[{i}] has {len(row)} values, the model has {nout} outputs")
            targets.append([as_float(v, f"{where}: y[{i}]") for v in row])
        return inputs, targets


class _CheckedSet:
    """A training set as `Trainer._dataset` checked it (``inputs``, ``targets``), with what a fit makes
    of it once (the class decision, the arrays of `_Arrays`), kept for the next `fit` on the same lists.

    It is kept (``kept``) only when X is a list of lists of floats and y a list of floats (the common
    case, `_float_rows`), and it holds while X and y are the very same lists, X's rows the same
    list objects of the same length, and every number the same float object: floats are immutable,
    so these are the numbers that were checked. Comparing identities costs a fraction of checking
    and converting again; anything else (numpy arrays, rows of targets, ints) is checked every time.
    """

    def __init__(self, X: Any, y: Any, inputs: list[Row], targets: list[Row], model: Any) -> None:
        self.inputs, self.targets = inputs, targets
        self.X, self.y = X, y
        self.widths = (_width(model, "in"), _width(model, "out"))
        self.rows: list[Any] = []
        self.numbers: list[Any] = []
        self.ys: list[Any] = []
        self.kept = (
            type(X) is list
            and type(y) is list
            and set(map(type, X)) == {list}
            and set(map(type, itertools.chain.from_iterable(X))) == {float}
            and set(map(type, y)) == {float}
        )
        if self.kept:
            self.rows, self.numbers, self.ys = list(X), list(itertools.chain.from_iterable(X)), list(y)
        self.arrays: tuple[Any, Any] | None = None  # (X, T) as float arrays, made by `_Arrays` once
        self.batch: Any = None  # (X, T) checked for a trace (`Trace.batch`), made by `_Arrays` once
        self._decisions: dict[Any, ClassDecision | None] = {}

    def holds(self, X: Any, y: Any, model: Any) -> bool:
        """True when X and y hold the objects they held when checked, and the model is as wide as then."""
        if X is not self.X or y is not self.y or len(X) != len(self.rows) or len(y) != len(self.ys):
            return False
        if self.widths != (_width(model, "in"), _width(model, "out")):
            return False
        if not all(map(operator.is_, X, self.rows)) or set(map(len, X)) != {len(self.inputs[0])}:
            return False
        # Same rows, each as long as before: the numbers line up one to one.
        return all(map(operator.is_, itertools.chain.from_iterable(X), self.numbers)) and all(
            map(operator.is_, y, self.ys)
        )

    def decision(self, loss: Any, class_targets: bool) -> ClassDecision | None:
        """How `fit` reads a class from an output row for this set (`class_decision`), found once per loss."""
        if class_targets:
            return ClassDecision(None)
        if loss not in self._decisions:
            self._decisions[loss] = class_decision(self.targets, loss)
        return self._decisions[loss]

    def as_arrays(self) -> tuple[Any, Any]:
        """(X, T): the inputs and targets as float arrays of one row per sample."""
        if self.arrays is None:
            np = _numpy()
            self.arrays = np.array(self.inputs, dtype=float), np.array(self.targets, dtype=float)
        return self.arrays

    def batch_for(self, trace: Any) -> Any:
        """(X, T) as ``trace`` replays them (`Trace.batch`), checked once for every fit with that trace."""
        if self.batch is None or self.batch.trace is not trace:
            self.batch = trace.batch(*self.as_arrays())
        return self.batch


class _Layout:
    """Where a traced fit keeps each parameter in its arrays, found once for a trace and an optimizer.

    The arrays follow the trace's order of parameters (`Trace.parameters`, the order of its
    ``theta`` and of `Trace.gradient`), so that a step needs no gather or scatter: first the
    trace's parameters that the optimizer holds, then the optimizer's parameters the trace
    does not read (their gradient is 0). ``order[k]`` is the place in the optimizer's list of
    entry k, ``params[k]`` its Value; ``held[i]`` says whether the trace's parameter i is the
    optimizer's (one it does not hold keeps its value during the fit).
    """

    def __init__(self, trace: Any, optimizer: Optimizer) -> None:
        np = _numpy()
        self.trace, self.optimizer, self.size = trace, optimizer, len(optimizer.params)
        place = {id(p): i for i, p in enumerate(optimizer.params)}
        positions = np.array([place.get(id(p), -1) for p in trace.parameters], dtype=np.intp)
        self.held = positions >= 0
        self.all_held = bool(self.held.all())
        self.count = int(self.held.sum())  # the entries that are the trace's parameters
        spare = np.setdiff1d(np.arange(len(optimizer.params)), positions[self.held])
        self.order = np.concatenate([positions[self.held], spare]).astype(np.intp)
        self.spares = len(spare)
        self.identity = bool((self.order == np.arange(len(self.order))).all())
        self.params = [optimizer.params[i] for i in self.order.tolist()]

    def describes(self, trace: Any, optimizer: Optimizer) -> bool:
        """True if this layout was made for this trace and optimizer (with as many parameters as now)."""
        return self.trace is trace and self.optimizer is optimizer and self.size == len(optimizer.params)

    def in_optimizer_order(self, values: Any) -> list[float]:
        """An array in this layout's order, as a list in the optimizer's order."""
        if self.identity:
            return values.tolist()  # type: ignore[no-any-return]
        ordered = _numpy().empty(len(values))
        ordered[self.order] = values
        return ordered.tolist()  # type: ignore[no-any-return]


class _Arrays:
    """A traced fit's weights, gradients and optimizer buffers, kept in numpy arrays.

    The per-parameter Python loops (reading every ``w.data`` for the replay, adding every
    ``w.grad``, the optimizer's step one weight at a time) cost more than the replay itself
    beyond a few hundred parameters. While `Trainer.fit` runs, ``weights`` (one entry per
    parameter of the optimizer, in the order of the `_Layout`), the last gradient and
    ``buffers`` (the optimizer's state, one array per buffer) live here; the trace replays
    with them (`Trace.forward`'s ``theta``, `Trace.gradient`) and the optimizer steps on them
    (`Optimizer.step_arrays`: the same formulas as its `step`, entry by entry, so the order
    does not matter). `write_back` puts them into the Values and ``optimizer.state`` (the
    step count and learning rate are the optimizer's own throughout); `read` takes them from
    there again.

    The trace's parameters that the optimizer does not hold keep their ``.data``; their
    gradients add up into ``.grad`` at `write_back`, as eager training leaves them.
    """

    def __init__(
        self,
        trace: Any,
        optimizer: Optimizer,
        layout: _Layout,
        checked: _CheckedSet,
        decision: ClassDecision | None,
        whole_batch: bool,
    ) -> None:
        self.trace, self.optimizer, self.layout = trace, optimizer, layout
        self.params = layout.params
        self.inputs, self.targets = checked.inputs, checked.targets
        self.X, self.T = checked.as_arrays()
        self.batch = checked.batch_for(trace)  # the whole set, for full-batch steps and scoring
        self.whole_batch = whole_batch  # batch mode: every batch is the whole set, in order
        self.decision = decision
        self.target_classes = None if decision is None else decision.classes(self.T)
        self.seeds: dict[int, Any] = {}
        self.read()

    def read(self) -> None:
        """Take the weights and the optimizer's buffers from the Values and ``optimizer.state``."""
        np = _numpy()
        layout = self.layout
        self.weights = np.array([p.data for p in self.params], dtype=float)
        self.buffers = {name: np.array(values, dtype=float) for name, values in self.optimizer.state.items()}
        if not layout.identity:
            self.buffers = {name: values[layout.order] for name, values in self.buffers.items()}
        self.grad: Any = None
        if not layout.all_held:
            self.frozen = np.array([p.data for p in self.trace.parameters], dtype=float)
            self.frozen_grad = np.zeros(len(self.trace.parameters))

    def write_back(self) -> None:
        """Put the weights, last gradients and buffers into the Values and ``optimizer.state``."""
        if self.grad is None:
            for p, w in zip(self.params, self.weights.tolist()):
                p.data = w
        else:
            for p, w, g in zip(self.params, self.weights.tolist(), self.grad.tolist()):
                p.data = w
                p.grad = g
        for name, values in self.buffers.items():
            self.optimizer.state[name] = self.layout.in_optimizer_order(values)
        if not self.layout.all_held:
            for p, g, held in zip(self.trace.parameters, self.frozen_grad.tolist(), self.layout.held.tolist()):
                if not held:
                    p.grad += g
            self.frozen_grad[:] = 0.0

    def theta(self) -> Any:
        """The trace's parameter vector (`Trace.parameters`' order) for the current weights."""
        layout = self.layout
        if layout.all_held:
            return self.weights[: layout.count] if layout.spares else self.weights
        theta = self.frozen.copy()
        theta[layout.held] = self.weights[: layout.count]
        return theta

    def gradient(self, indices: list[int]) -> tuple[Any, Any]:
        """Replay the batch: its rows [E_p, outputs of p] (checked finite) and ∂E/∂w of its mean loss
        E = (1/B)·Σ_p E_p, one entry per parameter of the optimizer."""
        np = _numpy()
        if self.whole_batch:
            rows = self.trace.forward(self.batch, theta=self.theta())
        else:
            rows = self.trace.forward(self.X[indices], self.T[indices], theta=self.theta())
        if not self.trace.outputs_checked:  # (the fast pass has found them all finite)
            _check_rows(rows)
        seed = self.seeds.get(len(rows))
        if seed is None:  # ∂E/∂E_p = 1/B; the outputs are only read, not differentiated (checked once: a Seed)
            weights = np.zeros(rows.shape)
            weights[:, 0] = 1.0 / len(rows)
            seed = self.seeds[len(rows)] = self.trace.seed(weights, len(rows))
        grad = self.trace.gradient(seed)
        layout = self.layout
        if layout.all_held and not layout.spares:
            return rows, grad
        held = np.zeros(len(self.weights))
        if layout.all_held:
            held[: layout.count] = grad
        else:
            held[: layout.count] = grad[layout.held]
            self.frozen_grad[~layout.held] += grad[~layout.held]
        return rows, held

    def step(self, grad: Any) -> None:
        """One step of the optimizer on the arrays (`Optimizer.step_arrays`)."""
        self.grad = grad
        self.weights = self.optimizer.step_arrays(self.weights, grad, self.buffers)

    def correct(self, outputs: Any, indices: list[int]) -> int:
        """How many of the batch's samples (rows of ``outputs``) are classified right (0 without classes)."""
        if self.decision is None:
            return 0
        expected = self.target_classes if self.whole_batch else self.target_classes[indices]  # type: ignore[index]
        return int((self.decision.classes(outputs) == expected).sum())


def _check_rows(rows: Any) -> None:
    """Raise `_Divergence` at the first sample whose outputs (then loss) are not finite; rows [E_p, outputs]."""
    if _numpy().isfinite(rows).all():
        return
    for row in rows.tolist():
        for o in row[1:]:
            if not math.isfinite(o):
                raise _Divergence(f"a prediction is {o}")
        if not math.isfinite(row[0]):
            raise _Divergence(f"the loss is {row[0]}")


def _numpy() -> Any:
    """numpy, imported by the traced engine only (importing nn never imports it)."""
    import numpy

    return numpy


def _float_rows(X: Any, width: int | None) -> list[Row] | None:
    """Copies of the rows of X when it is a list of lists of ``width`` finite floats, else None.

    The common case, checked in bulk at a fraction of the cost of checking number by number
    (`Trainer._inputs` does that for anything else, and names what is wrong): a sum of finite
    floats is finite, or has overflowed to inf, and then the slow checks find every number fine.
    """
    if width is None or type(X) is not list or not all(type(x) is list and len(x) == width for x in X):
        return None
    numbers = list(itertools.chain.from_iterable(X))
    if set(map(type, numbers)) != {float} or not math.isfinite(sum(numbers)):
        return None
    return [x[:] for x in X]


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


def _one_hot_targets(y: Sequence[Any], nout: int | None, where: str) -> list[Row]:
    """Class indices 0..K−1 (ints, or floats such as 2.0) as one-hot rows of length K.

    K is the model's number of outputs (logits); a model that does not say gets K = 1 + the largest class.
    """
    classes = []
    for i, t in enumerate(y):
        t = plain(t, f"{where}: y[{i}]")
        if isinstance(t, Sequence) and not isinstance(t, (str, bytes)) and len(t) == 1:
            t = t[0]  # [k], as a column of labels
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise InvalidTypeError(
                f"{where}: y[{i}] must be a class index (cross_entropy's targets), got {type(t).__name__} {t!r:.40}"
            )
        k = as_float(t, f"{where}: y[{i}]")
        if k != int(k) or k < 0 or (nout is not None and k >= nout):
            classes_known = f"0..{nout - 1} (one per output of the model)" if nout is not None else "0, 1, 2, ..."
            raise InvalidArgumentError(f"{where}: y[{i}] is {t!r}, not a class index {classes_known}")
        classes.append(int(k))
    count = nout if nout is not None else max(classes) + 1
    if count < 2:
        raise ShapeError(f"{where}: cross_entropy needs a model with 2 or more outputs (one logit per class)")
    return [[1.0 if c == k else 0.0 for c in range(count)] for k in classes]


def _one_hot_cross_entropy(logits: list[Value], one_hot: list[Value]) -> Value:
    """E = −Σ_k t_k·log softmax(z)_k: `losses.cross_entropy` for a one-hot target row t (traceable form).

    log softmax(z)_k = (z_k − m) − log Σ_j e^(z_j − m) with m = max z, as `functional.log_softmax`,
    but m is a node of the graph (`autograd.maximum`), not a number read once: a replay
    subtracts each sample's own maximum, so logits of ±1,000 stay finite there too.
    Its gradient is zero up to rounding (m cancels), as it is for the number.
    """
    m = functools.reduce(maximum, logits)
    shifted = [z - m for z in logits]
    log_total = sum_values([s.exp() for s in shifted]).log()
    return -sum_values([t * (s - log_total) for t, s in zip(one_hot, shifted)])


def _modules(model: object) -> list[Module]:
    """Every module of the model (none for a model that is not an `nn.Module`)."""
    return model.modules() if isinstance(model, Module) else []


def _modes(model: object) -> list[tuple[Module, bool]]:
    """Each module with its ``training`` flag, to be put back by `_restore_modes`."""
    return [(m, m.training) for m in _modules(model)]


def _restore_modes(modes: list[tuple[Module, bool]]) -> None:
    for module, training in modes:
        module.training = training


def _untraceable(model: object) -> str:
    """The modules a trace would freeze (dropout's masks, batch norm's batch statistics), named; "" if none."""
    kinds = sorted({type(m).__name__ for m in _modules(model) if isinstance(m, (Dropout, BatchNorm1d))
                    and not (isinstance(m, Dropout) and m.p == 0.0)})  # fmt: skip
    return " and ".join(kinds)


def _batch_modules(model: object) -> str:
    """The names of the modules with a batch-level forward of their own (BatchNorm1d), for messages."""
    kinds = {type(m).__name__ for m in _modules(model) if type(m).forward_batch is not Module.forward_batch}
    return " and ".join(sorted(kinds - {"Sequential"})) or "the model"


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
