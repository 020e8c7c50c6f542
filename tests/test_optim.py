"""nn.optim: each optimizer follows its docstring formula and the trajectory of
torch.optim (float64) to 1e-10, and resumes exactly from its state dict."""

from __future__ import annotations

import json
import math

import pytest

import nn
from autograd import Value
from autograd.errors import InvalidArgumentError, InvalidTypeError, ModelFileError

START = [0.5, -1.5, 2.0, 0.0, -0.3]
TARGET = [1.0, 1.0, -1.0, 0.2, -0.3]
STEPS = 30


def gradient(w):
    """∂f/∂w of f = Σ (w_i - c_i)² + 0.1·sin(3 w_i): a bowl with ripples, so signs change."""
    return [2 * (wi - ci) + 0.3 * math.cos(3 * wi) for wi, ci in zip(w, TARGET)]


def our_trajectory(make_optimizer, steps=STEPS, start=START):
    params = [Value(w) for w in start]
    optimizer = make_optimizer(params)
    trajectory = []
    for _ in range(steps):
        for p, g in zip(params, gradient([p.data for p in params])):
            p.grad = g
        optimizer.step()
        trajectory.append([p.data for p in params])
    return trajectory


def torch_trajectory(torch, make_optimizer, steps=STEPS):
    w = torch.tensor(START, requires_grad=True)
    optimizer = make_optimizer([w])
    trajectory = []
    for _ in range(steps):
        w.grad = torch.tensor(gradient(w.tolist()))
        optimizer.step()
        trajectory.append(w.tolist())
    return trajectory


def assert_same_trajectory(ours, reference):
    for t, (a, b) in enumerate(zip(ours, reference)):
        assert a == pytest.approx(b, abs=1e-10, rel=0), f"step {t + 1}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.5, "nesterov": True},
        {"lr": 0.1, "weight_decay": 0.01},
        {"lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.1},
    ],
)
def test_sgd_matches_torch(torch, kwargs):
    assert_same_trajectory(
        our_trajectory(lambda p: nn.optim.SGD(p, **kwargs)),
        torch_trajectory(torch, lambda p: torch.optim.SGD(p, **kwargs)),
    )


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ({}, {"lr": 0.1, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50)}),  # the defaults of Riedmiller's paper
        (
            {"eta_minus": 0.3, "eta_plus": 1.5, "step_init": 0.5, "step_min": 0.01, "step_max": 0.8},
            {"lr": 0.5, "etas": (0.3, 1.5), "step_sizes": (0.01, 0.8)},
        ),
    ],
)
def test_rprop_matches_torch(torch, ours, theirs):
    assert_same_trajectory(
        our_trajectory(lambda p: nn.optim.Rprop(p, **ours)),
        torch_trajectory(torch, lambda p: torch.optim.Rprop(p, **theirs)),
    )


def test_rprop_trajectory_has_sign_changes():
    # Otherwise the comparison above would not exercise the "overshot" branch.
    trajectory = [START] + our_trajectory(lambda p: nn.optim.Rprop(p))
    grads = [gradient(w) for w in trajectory]
    assert any(a[i] * b[i] < 0 for a, b in zip(grads, grads[1:]) for i in range(len(START)))


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}])
def test_adam_matches_torch(torch, kwargs):
    assert_same_trajectory(
        our_trajectory(lambda p: nn.optim.Adam(p, **kwargs)),
        torch_trajectory(torch, lambda p: torch.optim.Adam(p, **kwargs)),
    )


def test_sgd_momentum_is_the_textbook_formula():
    # Δw(1) = -η g1 = -0.1·2 = -0.2 -> w = 0.8
    # Δw(2) = -η g2 + α Δw(1) = -0.1·4 + 0.9·(-0.2) = -0.58 -> w = 0.22
    w = Value(1.0)
    optimizer = nn.optim.SGD([w], lr=0.1, momentum=0.9)
    for g, expected in [(2.0, 0.8), (4.0, 0.22)]:
        w.grad = g
        optimizer.step()
        assert w.data == pytest.approx(expected, abs=1e-15)


def test_rprop_skips_the_step_after_a_sign_change():
    # Δ: 0.1 -> (same sign) 0.12 -> (sign change) 0.06 and no move -> (prev g treated as 0) 0.06
    w = Value(0.0)
    optimizer = nn.optim.Rprop([w])
    for g, expected in [(1.0, -0.1), (1.0, -0.22), (-1.0, -0.22), (-1.0, -0.16)]:
        w.grad = g
        optimizer.step()
        assert w.data == pytest.approx(expected, abs=1e-15)


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    # m̂ = g, v̂ = g² at t = 1, so Δw = -η·g/(|g| + ε) = -η·sign(g) for ε = 1e-300 (negligible beside |g|)
    params = [Value(0.0), Value(0.0)]
    params[0].grad, params[1].grad = 3.0, -0.002
    nn.optim.Adam(params, lr=0.01, eps=1e-300).step()
    assert [p.data for p in params] == pytest.approx([-0.01, 0.01], abs=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: nn.optim.Rprop(p),
        lambda p: nn.optim.Adam(p, lr=0.05),
    ],
    ids=["sgd", "rprop", "adam"],
)
def test_a_resumed_run_equals_an_uninterrupted_run(make):
    uninterrupted = our_trajectory(make, steps=12)

    params = [Value(w) for w in START]
    first = make(params)
    for _ in range(5):
        for p, g in zip(params, gradient([p.data for p in params])):
            p.grad = g
        first.step()
    saved = json.loads(json.dumps({"weights": [p.data for p in params], "optimizer": first.state_dict()}))

    params = [Value(w) for w in saved["weights"]]
    resumed = make(params)
    resumed.load_state_dict(saved["optimizer"])
    rest = []
    for _ in range(7):
        for p, g in zip(params, gradient([p.data for p in params])):
            p.grad = g
        resumed.step()
        rest.append([p.data for p in params])
    assert rest == uninterrupted[5:]


def test_state_dict_restores_hyperparameters():
    source = nn.optim.SGD([Value(1.0)], lr=0.3, momentum=0.5)
    target = nn.optim.SGD([Value(1.0)], lr=0.1)
    target.load_state_dict(source.state_dict())
    assert target.hyperparameters() == {"lr": 0.3, "momentum": 0.5, "nesterov": False, "weight_decay": 0.0}


def good_sgd_state():
    return nn.optim.SGD([Value(1.0), Value(2.0)], lr=0.1, momentum=0.9).state_dict()


BAD_OPTIMIZER_STATES = {
    "not a dict": [],
    "other optimizer": {**good_sgd_state(), "optimizer": "Adam"},
    "missing buffer": {**good_sgd_state(), "state": {}},
    "short buffer": {**good_sgd_state(), "state": {"delta": [0.0]}},
    "non-number": {**good_sgd_state(), "state": {"delta": [0.0, "x"]}},
    "nan": {**good_sgd_state(), "state": {"delta": [0.0, float("nan")]}},
    "bad lr": {**good_sgd_state(), "hyperparameters": {"lr": -1.0, "momentum": 0.0, "nesterov": False,
                                                        "weight_decay": 0.0}},
    "unknown hyperparameter": {**good_sgd_state(), "hyperparameters": {"lr": 0.1, "dampening": 0.1}},
    "negative steps": {**good_sgd_state(), "steps": -1},
}  # fmt: skip


@pytest.mark.parametrize("state", BAD_OPTIMIZER_STATES.values(), ids=list(BAD_OPTIMIZER_STATES))
def test_bad_optimizer_state_is_an_error_and_changes_nothing(state):
    params = [Value(1.0), Value(2.0)]
    optimizer = nn.optim.SGD(params, lr=0.2, momentum=0.5)
    params[0].grad = 1.0
    optimizer.step()
    before = optimizer.state_dict()
    with pytest.raises(ModelFileError):
        optimizer.load_state_dict(state)
    assert optimizer.state_dict() == before


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: nn.optim.SGD(p, lr=-0.1), "lr must be > 0, got -0.1"),
        (lambda p: nn.optim.SGD(p, lr=0.1, momentum=1.0), "momentum must be in \\[0, 1\\), got 1.0"),
        (lambda p: nn.optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be in"),
        (lambda p: nn.optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs a momentum > 0"),
        (lambda p: nn.optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be >= 0, got -1.0"),
        (lambda p: nn.optim.SGD(p, lr=float("nan")), "finite"),
        (lambda p: nn.optim.Rprop(p, eta_minus=1.5), "eta_minus must be in \\(0, 1\\), got 1.5"),
        (lambda p: nn.optim.Rprop(p, eta_plus=0.9), "eta_plus must be > 1, got 0.9"),
        (lambda p: nn.optim.Rprop(p, step_init=0), "step_init must be > 0"),
        (lambda p: nn.optim.Rprop(p, step_min=1.0, step_max=0.5), "step_max must be >= step_min=1.0, got 0.5"),
        (lambda p: nn.optim.Adam(p, lr=0), "lr must be > 0"),
        (lambda p: nn.optim.Adam(p, betas=(0.9, 1.0)), "betas\\[1\\] must be in \\[0, 1\\), got 1.0"),
        (lambda p: nn.optim.Adam(p, eps=-1e-8), "eps must be > 0"),
        (lambda p: nn.optim.Adam(p, eps=0.0), "eps must be > 0, got 0.0"),
        (lambda p: nn.optim.Adam(p, lr=math.inf), "Adam \\(lr\\): expected a finite number, got inf"),
        (lambda p: nn.optim.Adam(p, betas=(math.nan, 0.9)), "betas\\[0\\].*finite"),
        (lambda p: nn.optim.SGD(p, lr=0.1, momentum=math.inf), "momentum.*finite"),
        (lambda p: nn.optim.SGD(p, lr=0.1, weight_decay=math.nan), "weight_decay.*finite"),
        (lambda p: nn.optim.Rprop(p, eta_plus=math.inf), "eta_plus.*finite"),
        (lambda p: nn.optim.Rprop(p, step_max=math.inf), "step_max.*finite"),
        (lambda p: nn.optim.Rprop(p, step_min=-1.0), "step_min must be >= 0, got -1.0"),
    ],
)
def test_bad_hyperparameters_name_the_value(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make([Value(1.0)])


@pytest.mark.parametrize(
    "params", [[], Value(1.0), [1.0], "ab"], ids=["empty", "a lone value", "numbers", "string"]
)
def test_bad_parameter_lists_are_rejected(params):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        nn.optim.SGD(params, lr=0.1)


def test_duplicate_or_non_leaf_parameters_are_rejected():
    w = Value(1.0, label="w")
    with pytest.raises(InvalidArgumentError, match="appears twice"):
        nn.optim.SGD([w, w], lr=0.1)
    with pytest.raises(InvalidArgumentError, match="leaf"):
        nn.optim.SGD([w * 2], lr=0.1)
    with pytest.raises(InvalidTypeError):
        nn.optim.SGD([Value(1.0)], lr=0.1, nesterov=1)


def test_zero_grad_resets_the_gradients_of_its_parameters():
    model = nn.MLP(2, [2, 1], seed=0)
    optimizer = nn.optim.Adam(model.parameters())
    model([1.0, 1.0]).backward()
    optimizer.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


@pytest.mark.parametrize(
    "make",
    [
        lambda p: nn.optim.SGD(p, lr="0.1"),
        lambda p: nn.optim.SGD(p, lr=True),
        lambda p: nn.optim.SGD(p, lr=0.1, momentum=[0.9]),
        lambda p: nn.optim.Adam(p, betas=0.9),
        lambda p: nn.optim.Adam(p, eps=None),
        lambda p: nn.optim.Rprop(p, eta_minus="0.5"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_type_errors(make):
    with pytest.raises(InvalidTypeError):
        make([Value(1.0)])


def test_adam_with_a_zero_gradient_from_the_start_takes_a_zero_step():
    """m = v = 0 at a zero gradient: the step η·m̂/(√v̂ + ε) = 0/ε = 0 (ε > 0 is required for this)."""
    params = [Value(1.0), Value(2.0)]
    optimizer = nn.optim.Adam(params, eps=1e-8)
    optimizer.step()
    assert [p.data for p in params] == [1.0, 2.0]


@pytest.mark.parametrize("make", [lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9), nn.optim.Rprop, nn.optim.Adam])
def test_a_step_that_fails_part_way_changes_no_parameter_and_no_buffer(make):
    params = [Value(1.0), Value(2.0), Value(3.0)]
    optimizer = make(params)
    for p in params:
        p.grad = 0.5
    optimizer.step()
    before = ([p.data for p in params], optimizer.state_dict())
    params[0].grad, params[2].grad = -0.25, "not a number"  # the third parameter fails after two are computed
    with pytest.raises(ValueError):
        optimizer.step()
    assert ([p.data for p in params], optimizer.state_dict()) == before


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: nn.optim.SGD(p, lr=0.1), lambda torch, p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: nn.optim.Adam(p, lr=0.1), lambda torch, p: torch.optim.Adam(p, lr=0.1)),
        (
            lambda p: nn.optim.AdamW(p, lr=0.1, weight_decay=0.0),
            lambda torch, p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.0),
        ),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_a_zero_hyperparameter_leaves_its_term_out_as_torch_does(torch, ours, theirs):
    """With weight decay λ = 0 (and momentum α = 0) the term λ·w (α·Δw) is not added, as in
    PyTorch: an infinite weight stays infinite (0·inf would make the gradient NaN) and the
    finite weights beside it take their ordinary steps. Expected values: torch.optim."""
    start, grads = [math.inf, 1.0, -2.0], [0.5, -0.25, 0.0]
    params = [Value(0.0) for _ in start]
    for p, w, g in zip(params, start, grads):
        p.data, p.grad = w, g
    ours(params).step()
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    w.grad = torch.tensor(grads, dtype=torch.float64)
    theirs(torch, [w]).step()
    assert [p.data for p in params] == pytest.approx(w.tolist(), abs=1e-15, rel=0)


def test_a_step_over_many_parameters_updates_every_one_by_its_own_gradient():
    """More parameters than `Optimizer.step` updates at a time (nn.optim.UPDATE_SLICE): each weight
    w_k with gradient g_k = k becomes w_k - η·g_k (plain gradient descent, by hand)."""
    n = 3 * nn.optim.UPDATE_SLICE + 5
    params = [Value(1.0) for _ in range(n)]
    for k, p in enumerate(params):
        p.grad = float(k)
    nn.optim.SGD(params, lr=0.5).step()
    assert [p.data for p in params] == [1.0 - 0.5 * k for k in range(n)]
