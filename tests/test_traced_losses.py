"""hinge and cross_entropy traced (`autograd.trace`) with the targets as traced inputs: the
replay gives each sample's loss and the batch's parameter gradients as eager mode does (to
1e-12), and as PyTorch (float64) or the hand formula say. Neither loss branches on a
traced number: the hinge is the relu row, the class is picked by rows of the table, and
cross-entropy's max-subtraction is the maximum row, so each sample subtracts its own."""

from __future__ import annotations

import random

import pytest
from conftest import eager_losses_and_gradients, require_module

import nn
from autograd import Value, trace
from autograd.errors import InvalidArgumentError, InvalidTypeError

np = require_module("numpy", extra="fast")


# -- hinge -----------------------------------------------------------------------------
HINGE_SAMPLES = [  # (x, t): margins t·o on both sides of 1, and exactly 1 (the kink)
    ([1.0, -2.0], [1.0]), ([0.5, -1.0], [-1.0]), ([-2.0, 0.25], [1.0]), ([3.0, 3.0], [-1.0]), ([4.0, 0.0], [1.0]),
]


def hinge_model():
    w1, w2, b = Value(0.5), Value(-0.25), Value(0.0)
    return [w1, w2, b], lambda x, t: nn.losses.hinge([w1 * x[0] + w2 * x[1] + b], t)


def test_traced_hinge_with_traced_targets_agrees_with_eager_and_the_hand_formula():
    parameters, loss_of = hinge_model()
    step = trace(loss_of, [0.0, 0.0], [1.0])  # fails with TraceError if hinge reads the target
    X = [x for x, _ in HINGE_SAMPLES]
    T = [t for _, t in HINGE_SAMPLES]
    traced = step.forward(X, T)
    for p in parameters:
        p.grad = 0.0
    step.backward()
    traced_grads = [p.grad for p in parameters]
    eager, eager_grads = eager_losses_and_gradients(loss_of, parameters, HINGE_SAMPLES)
    assert traced.tolist() == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)
    # by hand: o = 0.5·x1 − 0.25·x2; E_p = max(0, 1 − t·o); ∂E_p/∂(w1, w2, b) = −t·(x1, x2, 1) where t·o < 1
    outputs = [0.5 * x1 - 0.25 * x2 for x1, x2 in X]
    assert [t * o for (t,), o in zip(T, outputs)] == [1.0, -0.5, -1.0625, -0.75, 2.0]
    assert eager == [0.0, 1.5, 2.0625, 1.75, 0.0]
    # samples 1, 2, 3 have t·o < 1: Σ_p −t_p·(x1, x2, 1) over them
    assert eager_grads == [-(-0.5 - 2.0 - 3.0), -(1.0 + 0.25 - 3.0), -(-1.0 + 1.0 - 1.0)]


def test_traced_hinge_at_and_beyond_the_margin_sends_no_gradient():
    """t·o ≥ 1: E = 0 and ∂E/∂o = 0, also at t·o = 1 exactly (relu'(0) = 0, as PyTorch's clamp)."""
    w = Value(1.0)
    step = trace(lambda x, t: nn.losses.hinge([w * x[0]], t), [0.0], [1.0])
    assert step.forward([[1.0], [2.0], [-3.0]], [[1.0], [1.0], [-1.0]]).tolist() == [0.0, 0.0, 0.0]
    step.backward()
    assert w.grad == 0.0


def test_hinge_checks_number_targets_and_value_targets_in_eager_mode():
    with pytest.raises(InvalidArgumentError, match=r"-1 or \+1, got 0.5"):
        nn.losses.hinge([Value(1.0)], [0.5])
    with pytest.raises(InvalidArgumentError, match=r"-1 or \+1, got 0.0"):
        nn.losses.hinge([Value(1.0)], [Value(0.0)])
    assert nn.losses.hinge([Value(0.25)], [Value(-1.0)]).data == 1.25


# -- cross-entropy ---------------------------------------------------------------------------
def linear_model(seed=0):
    model = nn.Linear(2, 3, seed=seed)
    rng = random.Random(seed)
    for b in model.bias:
        b.data = rng.uniform(-1.0, 1.0)
    return model


def ce_samples():
    """Samples of every class; the last two with logits near ±1,000 (e^1000 overflows)."""
    rng = random.Random(4)
    samples = [([rng.uniform(-2.0, 2.0), rng.uniform(-2.0, 2.0)], k % 3) for k in range(9)]
    return samples + [([400.0, -350.0], 1), ([-500.0, 420.0], 2)]


def torch_sum_loss_and_gradients(torch, model, samples):
    weight = torch.tensor(model.state_dict()["weight"], requires_grad=True)
    bias = torch.tensor(model.state_dict()["bias"], requires_grad=True)
    X = torch.tensor([x for x, _ in samples])
    classes = torch.tensor([t for _, t in samples])
    losses = torch.nn.functional.cross_entropy(X @ weight.T + bias, classes, reduction="none")
    losses.sum().backward()
    return losses.tolist(), weight.grad.flatten().tolist() + bias.grad.tolist()


def test_traced_cross_entropy_with_traced_classes_equals_eager_and_torch(torch):
    model = linear_model()
    samples = ce_samples()
    step = trace(lambda x, t: nn.losses.cross_entropy(model(x), t), [0.0, 0.0], 0)
    traced = step.forward([x for x, _ in samples], [t for _, t in samples])
    model.zero_grad()
    step.backward()
    traced_grads = [p.grad for p in model.parameters()]
    eager, eager_grads = eager_losses_and_gradients(
        lambda x, t: nn.losses.cross_entropy(model(x), t), model.parameters(), samples
    )
    expected, expected_grads = torch_sum_loss_and_gradients(torch, model, samples)
    assert np.isfinite(traced).all()
    assert traced.tolist() == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(expected_grads, rel=1e-12, abs=1e-12)


def test_traced_cross_entropy_of_a_fixed_class_subtracts_each_samples_own_maximum(torch):
    """Traced on logits (0, 0, 0), replayed on logits of ±1,000: a maximum frozen at trace
    time (0) would overflow e^1000 there."""
    step = trace(lambda z: nn.functional.cross_entropy(z, 2), [0.0, 0.0, 0.0])
    Z = [[1000.0, -1000.0, 999.0], [-1000.0, -1000.5, -999.0], [0.3, -1.2, 2.0]]
    expected = torch.nn.functional.cross_entropy(torch.tensor(Z), torch.tensor([2, 2, 2]), reduction="none")
    assert step.forward(Z).tolist() == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-12)


def test_a_class_held_by_a_value_gives_the_loss_and_gradients_of_the_int_class():
    logits = [0.3, -1.2, 2.0, 0.5]
    for k in range(4):
        z_int, z_value = [Value(v) for v in logits], [Value(v) for v in logits]
        by_int, by_value = nn.functional.cross_entropy(z_int, k), nn.functional.cross_entropy(z_value, Value(float(k)))
        by_int.backward()
        by_value.backward()
        assert by_value.data == by_int.data
        assert [v.grad for v in z_value] == [v.grad for v in z_int]


@pytest.mark.parametrize(
    "target, error, match",
    [(Value(1.5), InvalidTypeError, "int class index, got float 1.5"),
     (Value(3.0), InvalidArgumentError, "target 3 is not a class of 3 logits"),
     (Value(-1.0), InvalidArgumentError, "target -1 is not a class")],
)  # fmt: skip
def test_a_class_held_by_a_value_is_checked_in_eager_mode(target, error, match):
    with pytest.raises(error, match=match):
        nn.losses.cross_entropy([0.1, 0.2, 0.3], target)
