"""Learning-rate schedules: how η changes from one epoch (or step) to the next.

Names, arguments and `get_last_lr()` follow ``torch.optim.lr_scheduler``. Each
schedule is its closed formula in t, the number of `step()` calls so far, and
η₀, the optimizer's learning rate when the schedule was made:

    StepLR             η(t) = η₀ · γ^⌊t / step_size⌋
    ExponentialLR      η(t) = η₀ · γ^t
    LinearLR           η(t) = η₀ · (s + (e − s) · min(t, T) / T)
    CosineAnnealingLR  η(t) = η_min + (η₀ − η_min) · (1 + cos(π·t / T)) / 2

Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch (or once per
update, if the schedule is counted in updates); it writes η(t) into
``optimizer.lr``.
"""

from __future__ import annotations

import math
from typing import Any

from autograd.errors import InvalidArgumentError, InvalidTypeError
from autograd.value import as_float


class LRScheduler:
    """Common machinery: remember η₀, count the steps, write η(t) into the optimizer."""

    def __init__(self, optimizer: Any) -> None:
        name = type(self).__name__
        lr = getattr(optimizer, "lr", None)
        if lr is None:
            raise InvalidTypeError(
                f"{name}: expected an optimizer with a learning rate .lr, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = as_float(lr, f"{name} (optimizer.lr)")
        self.last_epoch = 0
        self._apply()

    def lr_at(self, t: int) -> float:
        """η(t): the learning rate after ``t`` calls of `step`."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance the schedule by one epoch (or update) and set the optimizer's learning rate."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate set by the latest `step` (a list, one per parameter group, as in PyTorch)."""
        return [self.optimizer.lr]

    def _apply(self) -> None:
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's name, η₀ and step count: enough to resume it exactly."""
        return {"scheduler": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a `state_dict`, setting the optimizer's learning rate to η(last_epoch)."""
        name = type(self).__name__
        if not isinstance(state, dict) or state.get("scheduler") != name:
            raise InvalidArgumentError(f"{name}.load_state_dict: expected a state dict saved by {name}")
        self.base_lr = as_float(state["base_lr"], f"{name} (base_lr)")
        self.last_epoch = _count(state["last_epoch"], f"{name} (last_epoch)", minimum=0)
        self._apply()


class StepLR(LRScheduler):
    """η(t) = η₀ · γ^⌊t / step_size⌋: divide the learning rate by 1/γ every ``step_size`` epochs."""

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _count(step_size, "StepLR (step_size)", minimum=1)
        self.gamma = _positive(gamma, "StepLR (gamma)")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """η(t) = η₀ · γ^t: multiply the learning rate by γ every epoch."""

    def __init__(self, optimizer: Any, gamma: float) -> None:
        self.gamma = _positive(gamma, "ExponentialLR (gamma)")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma**t


class LinearLR(LRScheduler):
    """η(t) = η₀ · (s + (e − s) · min(t, T) / T): from s·η₀ to e·η₀ in T epochs, then constant.

    s = ``start_factor``, e = ``end_factor``, T = ``total_iters``. With s = 1, e = 0 and T the
    number of updates, this is the linear decay to zero used to train small GPTs.
    """

    def __init__(
        self, optimizer: Any, start_factor: float = 1.0 / 3.0, end_factor: float = 1.0, total_iters: int = 5
    ) -> None:
        self.start_factor = as_float(start_factor, "LinearLR (start_factor)")
        self.end_factor = as_float(end_factor, "LinearLR (end_factor)")
        if not 0.0 < self.start_factor <= 1.0:
            raise InvalidArgumentError(f"LinearLR: start_factor must be in (0, 1], got {self.start_factor}")
        if not 0.0 <= self.end_factor <= 1.0:
            raise InvalidArgumentError(f"LinearLR: end_factor must be in [0, 1], got {self.end_factor}")
        self.total_iters = _count(total_iters, "LinearLR (total_iters)", minimum=1)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        progress = min(t, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class CosineAnnealingLR(LRScheduler):
    """η(t) = η_min + (η₀ − η_min) · (1 + cos(π·t / T)) / 2: half a cosine from η₀ down to η_min in T epochs.

    Past T the cosine goes on (back up to η₀ at 2T), as in PyTorch.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _count(T_max, "CosineAnnealingLR (T_max)", minimum=1)
        self.eta_min = as_float(eta_min, "CosineAnnealingLR (eta_min)")
        if self.eta_min < 0.0:
            raise InvalidArgumentError(f"CosineAnnealingLR: eta_min must be >= 0, got {self.eta_min}")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


def _count(x: object, what: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise InvalidTypeError(f"{what}: expected an int, got {type(x).__name__} {x!r}")
    if x < minimum:
        raise InvalidArgumentError(f"{what}: must be >= {minimum}, got {x}")
    return x


def _positive(x: object, what: str) -> float:
    value = as_float(x, what)
    if not value > 0.0:
        raise InvalidArgumentError(f"{what}: must be > 0, got {value}")
    return value
