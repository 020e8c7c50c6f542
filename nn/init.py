"""Weight initializers: where the first numbers of a network come from.

An initializer draws one weight of a layer with ``fan_in`` inputs and
``fan_out`` outputs from a `random.Random` it is given, never from the global
random state, so the same seed gives the same network on every machine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Union

from autograd.errors import InvalidArgumentError, InvalidTypeError
from autograd.value import as_float

#: ``initializer(fan_in, fan_out, rng) -> one weight``
Initializer = Callable[[int, int, random.Random], float]
#: A seed for `make_rng`: an int, an existing `random.Random` (shared), or None (fresh entropy).
Seed = Union[int, random.Random, None]


def make_rng(seed: Seed) -> random.Random:
    """The random generator for ``seed``: ``random.Random(seed)``, the generator itself, or
    a generator seeded from the operating system when ``seed`` is None."""
    if isinstance(seed, random.Random):
        return seed
    if seed is None:
        return random.Random()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidTypeError(f"seed: expected an int, a random.Random or None, got {type(seed).__name__} {seed!r}")
    return random.Random(seed)


def xavier_uniform(fan_in: int, fan_out: int, rng: random.Random) -> float:
    """Glorot & Bengio (2010): w ~ U(-a, a) with a = √(6 / (fan_in + fan_out)),
    so that Var(w) = a²/3 = 2 / (fan_in + fan_out)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit)


def xavier_normal(fan_in: int, fan_out: int, rng: random.Random) -> float:
    """Glorot & Bengio (2010): w ~ N(0, σ²) with σ² = 2 / (fan_in + fan_out)."""
    return rng.gauss(0.0, math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform(fan_in: int, fan_out: int, rng: random.Random) -> float:
    """He et al. (2015), for ReLU: w ~ U(-a, a) with a = √(6 / fan_in), so Var(w) = 2 / fan_in."""
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit)


def he_normal(fan_in: int, fan_out: int, rng: random.Random) -> float:
    """He et al. (2015), for ReLU: w ~ N(0, σ²) with σ² = 2 / fan_in."""
    return rng.gauss(0.0, math.sqrt(2.0 / fan_in))


def uniform(a: float = -1.0, b: float = 1.0) -> Initializer:
    """The initializer w ~ U(a, b) (the textbooks' "small random weights")."""
    low, high = as_float(a, "uniform (a)"), as_float(b, "uniform (b)")
    if low > high:
        raise InvalidArgumentError(f"uniform(a, b): needs a <= b, got a={low}, b={high}")

    def draw_uniform(fan_in: int, fan_out: int, rng: random.Random) -> float:
        return rng.uniform(low, high)

    draw_uniform.__name__ = f"uniform({low:g}, {high:g})"
    return draw_uniform


def zeros(fan_in: int, fan_out: int, rng: random.Random) -> float:
    """w = 0 (every neuron of a layer then stays identical: only for tests and biases)."""
    return 0.0


#: The initializers that can be named by a string; "uniform" is U(-1, 1).
INITIALIZERS: dict[str, Initializer] = {
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "uniform": uniform(-1.0, 1.0),
    "zeros": zeros,
}


def get(init: str | Initializer) -> Initializer:
    """The initializer called ``init`` (see `INITIALIZERS`), or ``init`` itself if it is callable."""
    if callable(init):
        return init
    if not isinstance(init, str):
        raise InvalidTypeError(f"init: expected a name or a callable, got {type(init).__name__} {init!r}")
    if init not in INITIALIZERS:
        raise InvalidArgumentError(f"init: unknown initializer {init!r}; choose one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[init]

