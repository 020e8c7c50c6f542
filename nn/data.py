"""Toy datasets made on the spot from a seed (no download), and a train/test split.

Every generator returns ``(X, y)``: X a list of [x1, x2] points, y a list of
class labels: 0.0 or 1.0 for two classes (the targets of the binary losses), the
class indices 0, 1, …, K − 1 (ints, the targets of `nn.losses.cross_entropy`) for
K ≥ 3 classes (`spiral` with ``classes=K``, `yin_yang`). Randomness comes from
``seed`` only, never the global random state: an int (``random.Random(seed)``), a
`random.Random` (used and advanced, as `nn.MLP` does) or None (fresh entropy), as
everywhere in `nn`.
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
#: `yin_yang`: the radius of each of the two dots (the disk has radius 1; the dots sit at (±1/2, 0)).
DOT_RADIUS = 0.2
T = TypeVar("T")
U = TypeVar("U")
L = TypeVar("L", float, int)


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


def spiral(n: int = 200, noise: float = 0.0, seed: Seed = 0, classes: int = 2) -> Dataset:
    """``classes`` interleaved spirals (after Lang & Witbrock's two-spirals problem, with
    `SPIRAL_TURNS` turns): along each arm s runs evenly over [0, 1], the radius is
    r = 0.1 + 0.9·s and the angle θ = 2π·SPIRAL_TURNS·s; arm k (class k) is arm 0
    turned by 2πk/K, K = ``classes`` (for two classes, class 1 is class 0 turned by π).
    Each class has n/K points (the first n mod K classes one more). Gaussian noise of
    standard deviation ``noise``, shuffled. Labels are 0.0/1.0 for two classes, the ints
    0..K−1 for more."""
    K = _classes(classes, "spiral")
    n, noise, rng = _check(n, noise, seed, "spiral", K)
    points: list[tuple[list[float], float]] = []
    for k in range(K):
        label = float(k) if K == 2 else k
        turn = 2 * math.pi * k / K
        for s in _evenly_spaced(n // K + (k < n % K), 1.0):
            r, theta = 0.1 + 0.9 * s, 2 * math.pi * SPIRAL_TURNS * s
            points.append(([r * math.cos(theta + turn), r * math.sin(theta + turn)], label))
    return _noisy_shuffled(points, noise, rng)


def yin_yang(n: int = 300, noise: float = 0.0, seed: Seed = 0) -> tuple[list[list[float]], list[int]]:
    """Three classes in the unit disk, drawn as the yin-yang symbol (after Kriener et al.,
    2021): the two dots (class 2) and the two halves around them (yin, class 0; yang, class 1).

    With the dot centres c₋ = (−1/2, 0) and c₊ = (1/2, 0) and d± = |x − c±|, a point x of
    the disk |x| ≤ 1 belongs to

        class 2 (the dots)  if d₋ < r or d₊ < r, with r = `DOT_RADIUS`;
        class 0 (yin)       else if d₋ ≤ 1/2, or x2 > 0 and d₊ > 1/2;
        class 1 (yang)      otherwise.

    Yin is the upper half of the disk without the half-disk of radius 1/2 around c₊, plus
    the whole disk of radius 1/2 around c₋; yang is yin turned by π (x → −x). Points are
    drawn uniformly from the disk and kept while their class has room, so each class has
    n/3 points (the first n mod 3 classes one more); then Gaussian noise of standard
    deviation ``noise`` (the label stays the class of the point drawn), shuffled. Labels
    are the ints 0, 1, 2.
    """
    n, noise, rng = _check(n, noise, seed, "yin_yang", 3)
    room = [n // 3 + (k < n % 3) for k in range(3)]
    points: list[tuple[list[float], int]] = []
    while len(points) < n:
        x1, x2 = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
        if x1 * x1 + x2 * x2 > 1.0:
            continue  # outside the disk: drawn again, so the kept points are uniform in it
        label = _yin_yang_class(x1, x2)
        if room[label]:
            room[label] -= 1
            points.append(([x1, x2], label))
    return _noisy_shuffled(points, noise, rng)


def _yin_yang_class(x1: float, x2: float) -> int:
    """The class of point (x1, x2) of the unit disk in `yin_yang`."""
    left, right = math.hypot(x1 + 0.5, x2), math.hypot(x1 - 0.5, x2)
    if left < DOT_RADIUS or right < DOT_RADIUS:
        return 2
    return 0 if left <= 0.5 or (x2 > 0.0 and right > 0.5) else 1


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


def _noisy_shuffled(
    points: list[tuple[list[float], L]], noise: float, rng: random.Random
) -> tuple[list[list[float]], list[L]]:
    rng.shuffle(points)
    X = [[x1 + rng.gauss(0.0, noise), x2 + rng.gauss(0.0, noise)] if noise else [x1, x2] for (x1, x2), _ in points]
    return X, [label for _, label in points]


def _check(n: Any, noise: Any, seed: Any, name: str, classes: int = 2) -> tuple[int, float, random.Random]:
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidTypeError(f"{name}: n must be an int, got {type(n).__name__} {n!r}")
    if n < classes:
        raise InvalidArgumentError(f"{name}: n must be at least {classes} (one point per class), got {n}")
    level = as_float(noise, f"{name} (noise)")
    if level < 0:
        raise InvalidArgumentError(f"{name}: noise must be >= 0, got {level}")
    return n, level, _rng(seed, name)


def _classes(classes: Any, name: str) -> int:
    if isinstance(classes, bool) or not isinstance(classes, int):
        raise InvalidTypeError(f"{name}: classes must be an int, got {type(classes).__name__} {classes!r}")
    if classes < 2:
        raise InvalidArgumentError(f"{name}: classes must be at least 2, got {classes}")
    return classes


def _rng(seed: Any, name: str) -> random.Random:
    try:
        return make_rng(seed)
    except InvalidTypeError as exc:
        raise InvalidTypeError(f"{name}: {exc}") from None
