"""Optimizers: how a gradient ∂E/∂w becomes a change of the weight w.

Each class states its update rule in its docstring and `updater` returns that rule,
written once in arithmetic that works on a float and on a numpy array alike: the
few functions it needs beyond + - * / (√, sign, a choice, a clamp) come from a
math namespace, `OnFloats` for `step` (one weight at a time, the parameters'
Values) or `OnArrays` for `step_arrays` (every weight at once, the traced
Trainer's vectors): the same formula text runs on both, as the rule table's
rules run on floats and on the traced replay's arrays. What is the same for
every weight of a step (η, Adam's bias corrections 1 - βᵗ) is computed once per
step, by `updater`, not once per weight. `state_dict` /
`load_state_dict` carry the hyper-parameters and every buffer, so an interrupted
run can be resumed exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, ModelFileError
from autograd.value import as_float

#: How many weights `Optimizer.step` updates at a time: well below the 700 new objects that
#: start a collection of Python's youngest generation (``gc.get_threshold()``).
UPDATE_SLICE = 256

#: An optimizer's update rule for one step: (w, g, *buffers, math) -> (new w, *new buffers).
Update = Callable[..., tuple[Any, ...]]


class OnFloats:
    """The math namespace of an update on one weight: Python floats (`Optimizer.step`)."""

    sqrt = staticmethod(math.sqrt)

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        """a where the condition holds, else b."""
        return a if condition else b

    @staticmethod
    def by_sign(x: float, negative: float, zero: float, positive: float) -> float:
        """One of three numbers by the sign of x (NaN: ``zero``)."""
        return negative if x < 0 else (positive if x > 0 else zero)

    @staticmethod
    def clamp(x: float, lo: float, hi: float) -> float:
        return min(max(x, lo), hi)


class OnArrays:
    """The math namespace of an update on every weight at once: numpy arrays, elementwise
    (`Optimizer.step_arrays`). Each entry gives `OnFloats`'s number at every entry."""

    @staticmethod
    def sqrt(x: Any) -> Any:
        return _numpy().sqrt(x)

    @staticmethod
    def sign(x: Any) -> Any:
        # Not np.sign: OnFloats.sign gives 0.0 for NaN (and +0.0 for -0.0). Booleans are 0 and 1.
        return (x > 0).astype(float) - (x < 0)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return _numpy().where(condition, a, b)

    @staticmethod
    def by_sign(x: Any, negative: float, zero: float, positive: float) -> Any:
        np = _numpy()
        return np.where(x < 0, negative, np.where(x > 0, positive, zero))

    @staticmethod
    def clamp(x: Any, lo: float, hi: float) -> Any:
        np = _numpy()
        return np.minimum(np.maximum(x, lo), hi)


class Optimizer:
    """Common machinery: the parameter list, per-weight buffers and their state dict.

    Subclasses name their per-weight buffers in ``buffers`` and implement
    `updater` (the rule of a step, for a float or an array) and `hyperparameters`.
    """

    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Value]) -> None:
        self.params = _check_params(params, type(self).__name__)
        self.steps = 0
        self.state: dict[str, list[float]] = {name: [0.0] * len(self.params) for name in self.buffers}

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {settings})"

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 (gradients accumulate across backward calls)."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Apply the update rule once to every parameter, using its current ``.grad``.

        Every new weight and buffer is computed before any is written, so a step is
        applied to all parameters or to none.
        """
        self.steps += 1
        try:
            update = self.updater()
            weights = [p.data for p in self.params]
            grads = [float(p.grad) for p in self.params]
            columns = [weights, grads, *[self.state[name] for name in self.buffers]]
            new_columns: list[list[float]] = [[] for _ in range(1 + len(self.buffers))]
            # A slice of the parameters at a time: the tuples (new w, new buffers...) of a whole
            # step alive at once (4,000 for the tiny GPT) would set off several collections of
            # Python's cyclic garbage collector and bring the next full one, which walks every
            # object of the program, nearer (measured on benchmarks/gpt.py).
            for start in range(0, len(weights), UPDATE_SLICE):
                part = slice(start, start + UPDATE_SLICE)
                updated = zip(*map(update, *[column[part] for column in columns], itertools.repeat(OnFloats)))
                for new, values in zip(new_columns, updated):
                    new.extend(values)
        except BaseException:
            self.steps -= 1
            raise
        new_weights, *new_buffers = new_columns
        for p, w in zip(self.params, new_weights):
            p.data = w
        self.state.update(zip(self.buffers, new_buffers))

    def step_arrays(self, theta: Any, grad: Any, state: dict[str, Any]) -> Any:
        """`step` on numpy arrays: the new weights for weights ``theta`` and gradients ``grad``.

        ``state`` maps each buffer's name to an array (entry i for parameter i), and
        gets the new buffers; ``steps`` counts the step, and the hyper-parameters are
        read now (a scheduler may have changed ``lr``). The same `updater` as `step`,
        evaluated with `OnArrays`: equal to `step` entry by entry. The parameters'
        Values and `state` are not touched (the caller writes them back).
        """
        np = _numpy()
        self.steps += 1
        with np.errstate(all="ignore"):  # overflow is inf and inf - inf is nan, as for floats
            weights, *buffers = self.updater()(theta, grad, *[state[name] for name in self.buffers], OnArrays)
        state.update(zip(self.buffers, buffers))
        return weights

    def _hyperparameter(self, name: str, x: object, valid: Callable[[float], bool], requirement: str) -> float:
        """``x`` as a float if it is a finite number for which ``valid`` holds, else an error naming it."""
        value = as_float(x, f"{type(self).__name__} ({name})")
        if not valid(value):
            raise InvalidArgumentError(f"{type(self).__name__}: {name} must be {requirement}, got {value}")
        return value

    def updater(self) -> Update:
        """The update rule of this step (number ``steps``, at the current hyper-parameters): a
        function of weight(s) ``w``, gradient(s) ``g``, their buffers (in the order of
        ``self.buffers``) and, last, the math namespace (`OnFloats` or `OnArrays`), giving
        (new w, new buffers...)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: optimizer name, hyper-parameters, step count and buffers."""
        return {
            "optimizer": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "steps": self.steps,
            "state": {name: list(values) for name, values in self.state.items()},
        }

    def load_state_dict(self, state: object) -> None:
        """Restore a `state_dict`; everything is checked first and nothing changes on error."""
        name = type(self).__name__
        if not isinstance(state, dict) or set(state) != {"optimizer", "hyperparameters", "steps", "state"}:
            raise ModelFileError(f"{name} state dict: expected keys optimizer, hyperparameters, steps, state")
        if state["optimizer"] != name:
            raise ModelFileError(f"{name} state dict: it was saved by {state['optimizer']!r}")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ModelFileError(f"{name} state dict: steps must be an int >= 0, got {steps!r}")
        hyperparameters = state["hyperparameters"]
        if not isinstance(hyperparameters, dict):
            raise ModelFileError(f"{name} state dict: hyperparameters must be a dict")
        try:
            checked = type(self)(self.params, **hyperparameters)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{name} state dict: bad hyperparameters: {exc}") from None
        buffers = state["state"]
        if not isinstance(buffers, dict) or set(buffers) != set(self.buffers):
            raise ModelFileError(f"{name} state dict: state must hold exactly {list(self.buffers)}")
        for buffer, values in buffers.items():
            if not isinstance(values, list) or len(values) != len(self.params):
                raise ModelFileError(f"{name} state dict: {buffer} must list {len(self.params)} numbers")
            try:
                checked.state[buffer] = [as_float(v, f"{buffer}[{k}]") for k, v in enumerate(values)]
            except (TypeError, ValueError) as exc:
                raise ModelFileError(f"{name} state dict: {exc}") from None
        self.__dict__.update({k: v for k, v in checked.__dict__.items() if k != "params"})
        self.steps = steps


class SGD(Optimizer):
    """Gradient descent with classical momentum (Rumelhart, Hinton & Williams, 1986).

    For each weight w, with η = lr, α = momentum, λ = weight_decay:

        g(t)  = ∂E/∂w + λ·w                   (L2 weight decay: the gradient of λ/2·w²)
        Δw(t) = -η·g(t) + α·Δw(t-1)           (Δw(0) = 0)
        w     ← w + Δw(t)
    or, with Nesterov momentum (look one momentum step further ahead),
        w     ← w + α·Δw(t) - η·g(t)

    PyTorch's ``torch.optim.SGD`` keeps v(t) = α·v(t-1) + g(t) and does
    w ← w - η·v(t) (Nesterov: w ← w - η·(g(t) + α·v(t))). For a constant η,
    Δw(t) = -η·v(t) by induction, so both give the same trajectory (the tests
    check it to 1e-10). They differ only if η changes during training: here
    past updates keep the η they were made with.
    """

    buffers = ("delta",)

    def __init__(
        self,
        params: Iterable[Value],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = self._hyperparameter("lr", lr, lambda v: v > 0, "> 0")
        self.momentum = self._hyperparameter("momentum", momentum, lambda v: 0 <= v < 1, "in [0, 1)")
        if not isinstance(nesterov, bool):
            raise InvalidTypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise InvalidArgumentError("SGD: nesterov=True needs a momentum > 0, got momentum=0.0")
        self.nesterov = nesterov
        self.weight_decay = self._hyperparameter("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def updater(self) -> Update:
        eta, alpha, decay, nesterov = self.lr, self.momentum, self.weight_decay, self.nesterov

        # A term whose hyper-parameter is 0 is left out, as PyTorch leaves it out: the same
        # numbers as the full formula except for the sign of a zero (-0.0 + 0.0 is +0.0) and
        # for a weight or Δw(t-1) that is inf or NaN (0·inf is NaN), and 2 array operations
        # instead of 6 for plain gradient descent.
        def update(w: Any, g: Any, delta: Any, math: Any) -> tuple[Any, Any]:
            if decay:
                g = g + decay * w
            delta = -eta * g + alpha * delta if alpha else -eta * g
            if nesterov:
                return w + alpha * delta - eta * g, delta
            return w + delta, delta

        return update


class Rprop(Optimizer):
    """Resilient propagation (Riedmiller & Braun, 1993), in the iRprop⁻ form of
    Igel & Hüsken (2000) that ``torch.optim.Rprop`` implements: no learning rate,
    one step size Δ per weight, driven only by the sign of the gradient.

    For each weight w, with g(t) = ∂E/∂w and Δ(0) = step_init:

        if g(t)·g(t-1) > 0:  Δ(t) = Δ(t-1)·η⁺                 (same direction: speed up)
        if g(t)·g(t-1) < 0:  Δ(t) = Δ(t-1)·η⁻, then g(t) ← 0  (overshot: slow down, skip this step)
        otherwise:           Δ(t) = Δ(t-1)
        Δ(t) clipped to [step_min, step_max]
        w ← w - sign(g(t))·Δ(t);  g(t) is remembered as g(t-1) for the next step.

    (``torch.optim.Rprop(lr=step_init, etas=(eta_minus, eta_plus),
    step_sizes=(step_min, step_max))`` is the same algorithm.)
    """

    buffers = ("previous_grad", "step_size")

    def __init__(
        self,
        params: Iterable[Value],
        eta_minus: float = 0.5,
        eta_plus: float = 1.2,
        step_init: float = 0.1,
        step_min: float = 1e-6,
        step_max: float = 50.0,
    ) -> None:
        super().__init__(params)
        self.eta_minus = self._hyperparameter("eta_minus", eta_minus, lambda v: 0 < v < 1, "in (0, 1)")
        self.eta_plus = self._hyperparameter("eta_plus", eta_plus, lambda v: v > 1, "> 1")
        self.step_init = self._hyperparameter("step_init", step_init, lambda v: v > 0, "> 0")
        self.step_min = self._hyperparameter("step_min", step_min, lambda v: v >= 0, ">= 0")
        self.step_max = self._hyperparameter(
            "step_max", step_max, lambda v: v >= self.step_min, f">= step_min={self.step_min}"
        )
        self.state["step_size"] = [self.step_init] * len(self.params)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "eta_minus": self.eta_minus,
            "eta_plus": self.eta_plus,
            "step_init": self.step_init,
            "step_min": self.step_min,
            "step_max": self.step_max,
        }

    def updater(self) -> Update:
        eta_minus, eta_plus, step_min, step_max = self.eta_minus, self.eta_plus, self.step_min, self.step_max

        def update(w: Any, g: Any, previous_grad: Any, step_size: Any, math: Any) -> tuple[Any, Any, Any]:
            agreement = g * previous_grad
            factor = math.by_sign(agreement, eta_minus, 1.0, eta_plus)
            step_size = math.clamp(step_size * factor, step_min, step_max)
            g = math.where(agreement < 0, 0.0, g)
            return w - math.sign(g) * step_size, g, step_size

        return update


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): momentum on the gradient and on its square, bias-corrected.

    For each weight w, at step t = 1, 2, ..., with η = lr, (β₁, β₂) = betas, ε = eps:

        m(t) = β₁·m(t-1) + (1-β₁)·g(t)          (m(0) = 0)
        v(t) = β₂·v(t-1) + (1-β₂)·g(t)²         (v(0) = 0)
        m̂ = m(t) / (1 - β₁ᵗ),   v̂ = v(t) / (1 - β₂ᵗ)
        w ← w - η·m̂ / (√v̂ + ε)

    as in ``torch.optim.Adam`` (without amsgrad). With λ = weight_decay the
    gradient gets the L2 term first, g(t) = ∂E/∂w + λ·w, as in PyTorch's Adam;
    for weight decay kept apart from the moments, see `AdamW`.
    """

    buffers = ("m", "v")
    #: Where λ goes: into the gradient (Adam, L2) or straight into the weight (`AdamW`).
    decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params)
        self.lr = self._hyperparameter("lr", lr, lambda v: v > 0, "> 0")
        self.weight_decay = self._hyperparameter("weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise InvalidTypeError(f"Adam: betas must be a pair (β1, β2), got {betas!r}")
        beta1, beta2 = betas
        self.betas = (
            self._hyperparameter("betas[0]", beta1, lambda v: 0 <= v < 1, "in [0, 1)"),
            self._hyperparameter("betas[1]", beta2, lambda v: 0 <= v < 1, "in [0, 1)"),
        )
        # ε > 0 keeps the step finite when a gradient is exactly 0 from the start (m = v = 0):
        # with ε = 0 that step would be 0/0 (PyTorch accepts it and gives NaN).
        self.eps = self._hyperparameter("eps", eps, lambda v: v > 0, "> 0")

    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def updater(self) -> Update:
        eta, eps, decay = self.lr, self.eps, self.weight_decay
        beta1, beta2 = self.betas
        t = self.steps
        # The same for every weight of this step: computed once, not once per weight.
        one_minus_beta1, one_minus_beta2 = 1 - beta1, 1 - beta2
        bias1, bias2 = 1 - beta1**t, 1 - beta2**t
        decay_in_gradient = decay if not self.decoupled_weight_decay else 0.0
        shrink = eta * decay if self.decoupled_weight_decay else 0.0

        # λ = 0 leaves its term out, as PyTorch does (the same numbers as adding 0·w, except
        # for the sign of a zero gradient and for a weight that is inf or NaN).
        def update(w: Any, g: Any, m: Any, v: Any, math: Any) -> tuple[Any, Any, Any]:
            if decay_in_gradient:
                g = g + decay_in_gradient * w
            if shrink:
                w = w - shrink * w
            m = beta1 * m + one_minus_beta1 * g
            v = beta2 * v + one_minus_beta2 * g * g
            m_hat = m / bias1
            v_hat = v / bias2
            return w - eta * m_hat / (math.sqrt(v_hat) + eps), m, v

        return update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The weights shrink by a fraction η·λ before the Adam step, and the decay never
    enters the moments m and v (in `Adam` it does, through the gradient):

        w ← w - η·λ·w
        w ← w - η·m̂ / (√v̂ + ε)        (m̂, v̂ from ∂E/∂w alone, as in Adam)
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


#: The optimizers by name (used by the command line).
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "rprop": Rprop, "adam": Adam, "adamw": AdamW}


def _numpy() -> Any:
    """numpy, imported by the array step only (importing nn never imports it)."""
    import numpy

    return numpy


def _check_params(params: Iterable[Value], optimizer: str) -> list[Value]:
    if isinstance(params, Value) or not isinstance(params, Iterable):
        raise InvalidTypeError(f"{optimizer}: params must be an iterable of Values, e.g. model.parameters()")
    checked = list(params)
    if not checked:
        raise InvalidArgumentError(f"{optimizer}: got an empty parameter list")
    seen: set[int] = set()
    for k, p in enumerate(checked):
        if type(p) is not Value:
            raise InvalidTypeError(f"{optimizer}: params[{k}] is a {type(p).__name__}, not a Value")
        if not p.requires_grad or not p.is_leaf:
            raise InvalidArgumentError(f"{optimizer}: params[{k}] must be a leaf Value that requires grad")
        if id(p) in seen:
            raise InvalidArgumentError(f"{optimizer}: params[{k}] ({p.label or p}) appears twice")
        seen.add(id(p))
    return checked


# nn.optim.lr_scheduler, as in PyTorch (the schedules live in their own module).
from . import lr_scheduler  # noqa: E402, F401
