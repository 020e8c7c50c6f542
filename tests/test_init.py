"""nn.init: each initializer has the distribution its paper states, and a seed fixes it.

Expected moments come from the formulas of Glorot & Bengio (2010) and He et al. (2015):
Var U(-a, a) = a²/3, so a = √(6/(fan_in+fan_out)) gives 2/(fan_in+fan_out).
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

import nn
from autograd.errors import InvalidArgumentError, InvalidTypeError

DRAWS = 40_000
FAN_IN, FAN_OUT = 3, 5


def draws(initializer, seed=0, n=DRAWS):
    rng = random.Random(seed)
    return [initializer(FAN_IN, FAN_OUT, rng) for _ in range(n)]


@pytest.mark.parametrize(
    "name, variance, bound",
    [
        ("xavier_uniform", 2 / (FAN_IN + FAN_OUT), math.sqrt(6 / (FAN_IN + FAN_OUT))),
        ("xavier_normal", 2 / (FAN_IN + FAN_OUT), None),
        ("he_uniform", 2 / FAN_IN, math.sqrt(6 / FAN_IN)),
        ("he_normal", 2 / FAN_IN, None),
    ],
)
def test_initializer_has_the_variance_of_its_formula(name, variance, bound):
    sample = draws(nn.init.INITIALIZERS[name])
    # The standard error of a sample variance is about σ²·√(2/n) ≈ 0.7 % here; allow 5 %.
    assert statistics.pvariance(sample) == pytest.approx(variance, rel=0.05)
    assert abs(statistics.fmean(sample)) < 0.02
    if bound is not None:
        assert max(abs(w) for w in sample) <= bound
        assert max(abs(w) for w in sample) > 0.99 * bound


def test_uniform_a_b_draws_between_a_and_b_with_mean_and_variance_of_u_a_b():
    sample = draws(nn.init.uniform(-0.5, 1.5))
    assert min(sample) >= -0.5 and max(sample) <= 1.5
    assert statistics.fmean(sample) == pytest.approx(0.5, abs=0.02)
    assert statistics.pvariance(sample) == pytest.approx(2.0**2 / 12, rel=0.05)  # (b-a)²/12


def test_uniform_rejects_a_greater_than_b():
    with pytest.raises(InvalidArgumentError, match="a=2.0, b=1.0"):
        nn.init.uniform(2.0, 1.0)


def test_zeros_gives_zero_weights():
    model = nn.MLP(3, [4, 2], init="zeros", seed=0)
    assert all(p.data == 0.0 for p in model.parameters())


@pytest.mark.parametrize("name", sorted(nn.init.INITIALIZERS))
def test_same_seed_same_network_different_seed_different_network(name):
    first = nn.MLP(2, [3, 1], init=name, seed=7).state_dict()
    assert nn.MLP(2, [3, 1], init=name, seed=7).state_dict() == first
    if name != "zeros":
        assert nn.MLP(2, [3, 1], init=name, seed=8).state_dict() != first


def test_initialization_never_touches_the_global_random_state():
    random.seed(123)
    before = random.getstate()
    nn.MLP(4, [8, 8, 1], init="xavier_normal", seed=0)
    nn.MLP(4, [8, 1], init="he_uniform", seed=None)
    assert random.getstate() == before


def test_layer_uses_its_own_fan_in_and_fan_out():
    # Layer 2 of MLP(100, [50, 10]) has fan_in 50, fan_out 10: |w| <= √(6/60), Var = 2/60.
    model = nn.MLP(100, [50, 10], init="xavier_uniform", seed=1)
    weights = [w for row in model.state_dict()["layers.1.weight"] for w in row]
    assert max(abs(w) for w in weights) <= math.sqrt(6 / 60)
    assert statistics.pvariance(weights) == pytest.approx(2 / 60, rel=0.15)  # 500 draws: ~6 % standard error


def test_biases_start_at_zero():
    state = nn.MLP(2, [3, 1], init="he_normal", seed=0).state_dict()
    assert state["layers.0.bias"] == [0.0, 0.0, 0.0] and state["layers.1.bias"] == [0.0]


def test_a_callable_initializer_is_used_as_is():
    model = nn.MLP(2, [2], init=lambda fan_in, fan_out, rng: fan_in * 10 + fan_out, seed=0)
    assert model.state_dict()["layers.0.weight"] == [[22.0, 22.0], [22.0, 22.0]]


def test_unknown_initializer_lists_the_valid_names():
    with pytest.raises(InvalidArgumentError, match="xavier_uniform"):
        nn.MLP(2, [1], init="glorot")
    with pytest.raises(InvalidTypeError):
        nn.MLP(2, [1], init=3)


def test_seed_must_be_an_int_a_random_or_none():
    with pytest.raises(InvalidTypeError, match="seed"):
        nn.MLP(2, [1], seed="0")
    with pytest.raises(InvalidTypeError, match="seed"):
        nn.MLP(2, [1], seed=True)
