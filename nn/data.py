"""Toy datasets made on the spot from a seed (no download), and a train/test split.

Every generator returns ``(X, y)``: X a list of [x1, x2] points, y a list of
class labels 0 or 1. Randomness comes from ``seed`` only, never the global random
state: an int (``random.Random(seed)``), a `random.Random` (used and advanced, as
`nn.MLP` does) or None (fresh entropy), as everywhere in `nn`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from autograd.value import as_float

from .init import Seed, make_rng

Dataset = tuple[list[list[float]], list[float]]
#: How many times each arm of `spiral` winds around the origin (the 1988 benchmark has about 3).
SPIRAL_TURNS = 1.0
T = TypeVar("T")
U = TypeVar("U")


def xor() -> Dataset:
    """The four points of exclusive or: y = x1 XOR x2 (not linearly separable)."""
    return [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0.0, 1.0, 1.0, 0.0]


def moons(n: int = 200, noise: float = 0.1, seed: Seed = 0) -> Dataset:
    """Two interleaving half circles (as scikit-learn's ``make_moons``), shuffled.

    Class 0: (cos θ, sin θ); class 1: (1 - cos θ, 1/2 - sin θ), θ evenly spaced in
    [0, π]; then Gaussian noise of standard deviation ``noise`` on each coordinate.
    """
    n, noise, rng = _check(n, noise, seed, "moons")
    n0 = n - n // 2
    points = [([math.cos(t), math.sin(t)], 0.0) for t in _evenly_spaced(n0, math.pi)]
    points += [([1.0 - math.cos(t), 0.5 - math.sin(t)], 1.0) for t in _evenly_spaced(n // 2, math.pi)]
    return _noisy_shuffled(points, noise, rng)


def circles(n: int = 200, noise: float = 0.05, seed: Seed = 0) -> Dataset:
    """A circle of radius 1 (class 0) around a circle of radius 1/2 (class 1), shuffled,
    with Gaussian noise of standard deviation ``noise``."""
    n, noise, rng = _check(n, noise, seed, "circles")
    n0 = n - n // 2
    points = []
    for label, count, radius in ((0.0, n0, 1.0), (1.0, n // 2, 0.5)):
        for t in _evenly_spaced(count, 2 * math.pi, endpoint=False):
            points.append(([radius * math.cos(t), radius * math.sin(t)], label))
    return _noisy_shuffled(points, noise, rng)


def spiral(n: int = 200, noise: float = 0.0, seed: Seed = 0) -> Dataset:
    """Two interleaved spirals (after Lang & Witbrock's two-spirals problem, with
    `SPIRAL_TURNS` turns): along each arm s runs evenly over [0, 1], the radius is
    r = 0.1 + 0.9·s and the angle θ = 2π·SPIRAL_TURNS·s; class 1 is class 0 turned
    by π. Gaussian noise of standard deviation ``noise``, shuffled."""
    n, noise, rng = _check(n, noise, seed, "spiral")
    n0 = n - n // 2
    points: list[tuple[list[float], float]] = []
    for label, count, turn in ((0.0, n0, 0.0), (1.0, n // 2, math.pi)):
        for s in _evenly_spaced(count, 1.0):
            r, theta = 0.1 + 0.9 * s, 2 * math.pi * SPIRAL_TURNS * s
            points.append(([r * math.cos(theta + turn), r * math.sin(theta + turn)], label))
    return _noisy_shuffled(points, noise, rng)


def train_test_split(
    X: Sequence[T], y: Sequence[U], test_fraction: float = 0.25, seed: Seed = 0
) -> tuple[list[T], list[T], list[U], list[U]]:
    """Shuffle the samples with ``seed`` and hold out round(test_fraction·n) of them.

    Returns ``X_train, X_test, y_train, y_test`` (scikit-learn's order) as lists of
    the samples given (rows of a numpy array stay array rows; `nn.Trainer` takes
    them). Both parts must end up non-empty.
    """
    if len(X) != len(y):
        raise ShapeError(f"train_test_split: {len(X)} inputs but {len(y)} targets")
    fraction = as_float(test_fraction, "train_test_split (test_fraction)")
    if not 0.0 < fraction < 1.0:
        raise InvalidArgumentError(f"train_test_split: test_fraction must be in (0, 1), got {fraction}")
    n_test = round(fraction * len(X))
    if n_test == 0 or n_test == len(X):
        raise InvalidArgumentError(
            f"train_test_split: {len(X)} samples with test_fraction={fraction} leaves an empty part"
        )
    order = list(range(len(X)))
    _rng(seed, "train_test_split").shuffle(order)
    test, train = order[:n_test], order[n_test:]
    return [X[i] for i in train], [X[i] for i in test], [y[i] for i in train], [y[i] for i in test]


def _evenly_spaced(count: int, stop: float, start: float = 0.0, endpoint: bool = True) -> list[float]:
    """``count`` evenly spaced numbers from ``start`` to ``stop`` (included when ``endpoint``)."""
    if count == 1:
        return [start]
    steps = count - 1 if endpoint else count
    return [start + (stop - start) * k / steps for k in range(count)]


def _noisy_shuffled(points: list[tuple[list[float], float]], noise: float, rng: random.Random) -> Dataset:
    rng.shuffle(points)
    X = [[x1 + rng.gauss(0.0, noise), x2 + rng.gauss(0.0, noise)] if noise else [x1, x2] for (x1, x2), _ in points]
    return X, [label for _, label in points]


def _check(n: Any, noise: Any, seed: Any, name: str) -> tuple[int, float, random.Random]:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidTypeError(f"{name}: n must be an int, got {type(n).__name__} {n!r}")
    if n < 2:
        raise InvalidArgumentError(f"{name}: n must be at least 2 (one point per class), got {n}")
    level = as_float(noise, f"{name} (noise)")
    if level < 0:
        raise InvalidArgumentError(f"{name}: noise must be >= 0, got {level}")
    return n, level, _rng(seed, name)


def _rng(seed: Any, name: str) -> random.Random:
    try:
        return make_rng(seed)
    except InvalidTypeError as exc:
        raise InvalidTypeError(f"{name}: {exc}") from None
