"""softmax, log_softmax and cross-entropy against torch.nn.functional (float64): values
and gradients to 1e-12, stable for logits of ±1,000."""

from __future__ import annotations

import pytest

import nn
from autograd import Value, gradcheck
from autograd.errors import InvalidArgumentError, InvalidTypeError, ShapeError
from nn.functional import cross_entropy, log_softmax, softmax

LOGITS = [
    [0.3, -1.2, 2.0],
    [1000.0, -1000.0, 999.0],
    [-1000.0, -1000.5, -999.0, -1001.0],
    [5.0],
    [0.0, 0.0, 0.0, 0.0, 0.0],
]


@pytest.mark.parametrize("logits", LOGITS)
@pytest.mark.parametrize("which", ["softmax", "log_softmax"])
def test_value_and_gradient_equal_pytorch(logits, which, torch) -> None:
    ours_fn = {"softmax": softmax, "log_softmax": log_softmax}[which]
    theirs_fn = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}[which]
    z = [Value(x) for x in logits]
    weights = [0.7 * (i + 1) * (-1) ** i for i in range(len(logits))]  # a weighted sum to back-propagate
    out = ours_fn(z)
    total = sum(w * o for w, o in zip(weights, out))
    total.backward()
    t = torch.tensor(logits, requires_grad=True)
    expected = theirs_fn(t, 0)
    (expected * torch.tensor(weights)).sum().backward()
    assert [o.data for o in out] == pytest.approx(expected.tolist(), rel=1e-12, abs=1e-12)
    assert [v.grad for v in z] == pytest.approx(t.grad.tolist(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("logits", LOGITS)
def test_cross_entropy_equals_pytorch_for_every_class(logits, torch) -> None:
    for target in range(len(logits)):
        z = [Value(x) for x in logits]
        loss = cross_entropy(z, target)
        loss.backward()
        t = torch.tensor([logits], requires_grad=True)
        expected = torch.nn.functional.cross_entropy(t, torch.tensor([target]))
        expected.backward()
        assert loss.data == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
        assert [v.grad for v in z] == pytest.approx(t.grad[0].tolist(), rel=1e-12, abs=1e-12)


def test_batch_cross_entropy_is_the_mean_like_pytorch(torch) -> None:
    batch = [[0.3, -1.2, 2.0], [1.0, 1.0, -3.0], [50.0, -20.0, 0.0]]
    targets = [2, 0, 1]
    z = [[Value(x) for x in row] for row in batch]
    loss = nn.losses.cross_entropy(z, targets)
    loss.backward()
    t = torch.tensor(batch, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(t, torch.tensor(targets))
    expected.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-12)
    for row, expected_row in zip(z, t.grad.tolist()):
        assert [v.grad for v in row] == pytest.approx(expected_row, rel=1e-12, abs=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_by_hand() -> None:
    """Two equal logits: softmax = (½, ½), so ∂E/∂z = (½ − 1, ½) = (−½, ½) for class 0."""
    a, b = Value(0.4), Value(0.4)
    cross_entropy([a, b], 0).backward()
    assert (a.grad, b.grad) == pytest.approx((-0.5, 0.5), abs=1e-15)


def test_the_shift_m_is_one_named_constant_read_by_every_difference() -> None:
    """A drawing of E shows m = max z once (a constant named m), read by each z_j − m and by z_t − m."""
    from autograd import topological_order
    from autograd.value import CONSTANT

    z = [Value(0.5), Value(-0.2), Value(0.1)]
    t = Value(2.0, requires_grad=False)
    E = cross_entropy(z, t)
    constants = [v for v in topological_order(E) if v._rule is CONSTANT and v is not t]
    assert [(m.label, m.data) for m in constants] == [("m", 0.5)]
    readers = [v for v in topological_order(E) if any(p is constants[0] for p in v.parents)]
    assert len(readers) == 4 and all(v._rule.name == "sub" for v in readers)


def test_cross_entropy_passes_gradcheck() -> None:
    assert gradcheck(lambda a, b, c: cross_entropy([a, b, c], 1), [0.2, -0.7, 1.1])


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: cross_entropy([1.0, 2.0], 2), InvalidArgumentError, "not a class of 2"),
        (lambda: cross_entropy([1.0, 2.0], 1.0), InvalidTypeError, "int class index"),
        (lambda: cross_entropy([], 0), ShapeError, "at least one logit"),
        (lambda: softmax("abc"), InvalidTypeError, "list of logits"),
        (lambda: nn.losses.cross_entropy([[1.0, 2.0]], [0, 1]), ShapeError, "1 samples of logits but 2 targets"),
    ],
)
def test_bad_input_is_named(call, error, words) -> None:
    with pytest.raises(error, match=words):
        call()
