"""nn.data: seeded toy datasets lie on the curves their docstrings state, and the
train/test split partitions the samples."""

from __future__ import annotations

import math
import random
import statistics

import pytest

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError

GENERATORS = [nn.data.moons, nn.data.circles, nn.data.spiral]


def test_xor_is_the_truth_table():
    X, y = nn.data.xor()
    assert [(int(a), int(b), int(t)) for (a, b), t in zip(X, y)] == [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("n", [2, 7, 200])
def test_n_points_of_two_balanced_classes(make, n):
    X, y = make(n, 0.1, 0)
    assert len(X) == len(y) == n and all(len(x) == 2 for x in X)
    assert sorted(set(y)) == [0.0, 1.0]
    assert y.count(0.0) - y.count(1.0) in (0, 1)


@pytest.mark.parametrize("make", GENERATORS)
def test_same_seed_same_data_other_seed_other_data(make):
    assert make(50, 0.1, 3) == make(50, 0.1, 3)
    assert make(50, 0.1, 3) != make(50, 0.1, 4)


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_leave_the_global_random_state_alone(make):
    random.seed(5)
    before = random.getstate()
    make(100, 0.2, 1)
    nn.data.train_test_split(*make(10, 0.0, 0), 0.3, seed=2)
    assert random.getstate() == before


def test_moons_without_noise_lie_on_their_half_circles():
    # class 0 on the upper unit half circle; class 1 on the lower half circle of radius 1 around (1, 0.5)
    X, y = nn.data.moons(101, 0.0, 0)
    for (x1, x2), label in zip(X, y):
        if label == 0:
            assert math.hypot(x1, x2) == pytest.approx(1.0, abs=1e-12) and x2 >= -1e-12
        else:
            assert math.hypot(x1 - 1.0, x2 - 0.5) == pytest.approx(1.0, abs=1e-12) and x2 <= 0.5 + 1e-12


def test_circles_without_noise_have_radius_one_and_one_half():
    X, y = nn.data.circles(60, 0.0, 0)
    for (x1, x2), label in zip(X, y):
        assert math.hypot(x1, x2) == pytest.approx(1.0 if label == 0 else 0.5, abs=1e-12)


def test_spiral_arms_have_radius_growing_with_angle_and_are_opposite():
    # On arm 0 the point of radius r = 0.1 + 0.9 s has angle θ = 2π·turns·s; arm 1 is arm 0 turned by π.
    X, y = nn.data.spiral(40, 0.0, 0)
    arms = {label: sorted(tuple(x) for x, t in zip(X, y) if t == label) for label in (0.0, 1.0)}
    for (a, b), (c, d) in zip(sorted((-a, -b) for a, b in arms[0.0]), arms[1.0]):
        assert (a, b) == pytest.approx((c, d), abs=1e-12)
    for x1, x2 in arms[0.0]:
        r = math.hypot(x1, x2)
        theta = 2 * math.pi * nn.data.SPIRAL_TURNS * (r - 0.1) / 0.9
        assert (x1, x2) == pytest.approx((r * math.cos(theta), r * math.sin(theta)), abs=1e-12)
    assert max(math.hypot(*x) for x in X) == pytest.approx(1.0)


@pytest.mark.parametrize("make", GENERATORS)
def test_noise_is_gaussian_with_the_requested_deviation(make):
    clean, _ = make(2000, 0.0, 9)
    noisy, _ = make(2000, 0.3, 9)  # same seed: same shuffle, then noise drawn
    residuals = [a - b for p, q in zip(noisy, clean) for a, b in zip(p, q)]
    assert statistics.fmean(residuals) == pytest.approx(0.0, abs=0.02)
    assert statistics.pstdev(residuals) == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize(
    "args, error",
    [((1, 0.1, 0), InvalidArgumentError), ((10, -0.1, 0), InvalidArgumentError), ((10.0, 0.1, 0), InvalidTypeError),
     ((10, 0.1, "0"), InvalidTypeError), ((10, float("nan"), 0), InvalidArgumentError)],
)  # fmt: skip
@pytest.mark.parametrize("make", GENERATORS)
def test_bad_arguments_are_clear_errors(make, args, error):
    with pytest.raises(error):
        make(*args)


def test_train_test_split_partitions_the_samples():
    X = [[float(i), 0.0] for i in range(20)]
    y = [float(i % 2) for i in range(20)]
    X_train, X_test, y_train, y_test = nn.data.train_test_split(X, y, 0.25, seed=1)
    assert len(X_test) == len(y_test) == 5 and len(X_train) == len(y_train) == 15
    assert sorted(X_train + X_test) == X
    assert all(y[int(x[0])] == t for x, t in zip(X_train + X_test, y_train + y_test))
    assert nn.data.train_test_split(X, y, 0.25, seed=1) == (X_train, X_test, y_train, y_test)
    assert nn.data.train_test_split(X, y, 0.25, seed=2) != (X_train, X_test, y_train, y_test)


def test_train_test_split_errors():
    with pytest.raises(ShapeError, match="3 inputs but 2 targets"):
        nn.data.train_test_split([[0.0]] * 3, [0.0] * 2)
    with pytest.raises(InvalidArgumentError, match="test_fraction must be in"):
        nn.data.train_test_split([[0.0]] * 4, [0.0] * 4, 1.0)
    with pytest.raises(InvalidArgumentError, match="empty part"):
        nn.data.train_test_split([[0.0]] * 3, [0.0] * 3, 0.1)


@pytest.mark.parametrize("make", GENERATORS)
def test_seed_may_be_a_random_generator_or_none_like_everywhere_in_nn(make):
    """The same three kinds of seed nn.MLP and nn.Trainer take (nn.init.make_rng)."""
    assert make(20, 0.1, random.Random(4)) == make(20, 0.1, random.Random(4)) == make(20, 0.1, 4)
    shared = random.Random(4)
    first, second = make(20, 0.1, shared), make(20, 0.1, shared)  # a shared generator moves on
    assert first != second
    X, y = make(20, 0.1, None)  # fresh entropy: any valid data set
    assert len(X) == len(y) == 20
    X_train, X_test, _, _ = nn.data.train_test_split(X, y, 0.25, seed=random.Random(1))
    assert (X_train, X_test) == nn.data.train_test_split(X, y, 0.25, seed=1)[:2]
    with pytest.raises(InvalidTypeError, match=f"{make.__name__}: seed: expected an int, a random.Random or None"):
        make(20, 0.1, 1.5)


def test_train_test_split_of_numpy_arrays_gives_rows_the_trainer_takes():
    np = pytest.importorskip("numpy")
    X, y = nn.data.moons(20, 0.1, seed=0)
    X_train, X_test, y_train, y_test = nn.data.train_test_split(np.array(X), np.array(y), 0.25, seed=1)
    assert [list(row) for row in X_train] == nn.data.train_test_split(X, y, 0.25, seed=1)[0]
    model = nn.MLP(2, [3, 1], seed=0)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch")
    history = trainer.fit(X_train, y_train, epochs=2, validation=(X_test, y_test), progress=False)
    assert len(history.val_loss) == 2
