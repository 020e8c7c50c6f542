"""nn.Module and the PyTorch-style modules, each against torch.nn in float64 with the
same weights (PyTorch is the independent reference): outputs, gradients, running
statistics and state-dict keys."""

from __future__ import annotations

import math

import pytest
from conftest import entry

import nn
from autograd import Value, sum_values
from autograd.errors import InvalidArgumentError, InvalidTypeError, ModelFileError, ShapeError
from nn.modules import BatchNorm1d, Dropout, Embedding, Linear, Module, ReLU, RMSNorm, Sequential, Sigmoid, Tanh

BATCH = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-0.7, 0.9, 0.1], [0.2, -0.3, 1.2]]


def weighted_sum(rows):
    """Σ c_ki · y_ki with fixed, different coefficients, so every output gets its own gradient."""
    return sum_values([(0.3 + 0.1 * k - 0.2 * i) * y for k, row in enumerate(rows) for i, y in enumerate(row)])


def torch_weighted_sum(torch, out):
    n, d = out.shape
    coefficients = torch.tensor([[0.3 + 0.1 * k - 0.2 * i for i in range(d)] for k in range(n)])
    return (coefficients * out).sum()


def copy_into_torch(torch, ours: Module, theirs) -> None:
    with torch.no_grad():
        for key, value in ours.state_dict().items():
            theirs.state_dict()[key].copy_(torch.tensor(value))


def test_sequential_equals_torch_outputs_gradients_and_state_dict_keys(torch) -> None:
    model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1), Sigmoid())
    reference = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2), torch.nn.Sigmoid()
    ).double()
    assert list(model.state_dict()) == list(reference.state_dict())
    copy_into_torch(torch, model, reference)
    outputs = [model(x) for x in BATCH]
    weighted_sum(outputs).backward()
    expected = reference(torch.tensor(BATCH))
    torch_weighted_sum(torch, expected).backward()
    for row, expected_row in zip(outputs, expected.tolist()):
        assert [y.data for y in row] == pytest.approx(expected_row, rel=1e-12)
    grads = {key: p.grad for key, p in reference.named_parameters()}
    for name, v in model.named_parameters():
        assert v.grad == pytest.approx(entry(grads, name).item(), rel=1e-12, abs=1e-14), name


def test_named_parameters_follow_parameters_and_name_their_state_dict_place() -> None:
    model = Sequential(Linear(2, 3, seed=0), ReLU(), Linear(3, 1, bias=False, seed=0))
    named = model.named_parameters()
    assert [v for _, v in named] == model.parameters()
    assert named[0][0] == "0.weight[0][0]" and named[5][0] == "0.weight[2][1]" and named[6][0] == "0.bias[0]"
    assert named[-1][0] == "2.weight[0][2]"
    state = model.state_dict()
    for name, v in named:
        assert entry(state, name) == v.data


def test_train_and_eval_reach_every_module() -> None:
    model = Sequential(Linear(2, 2), Dropout(0.5), Sequential(BatchNorm1d(2), ReLU()))
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 6
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(InvalidTypeError):
        model.train("no")  # type: ignore[arg-type]


def test_load_state_dict_checks_everything_before_writing() -> None:
    model = Sequential(Linear(2, 2, seed=0), BatchNorm1d(2))
    before = model.state_dict()
    bad = dict(before)
    bad["1.running_var"] = [1.0, float("nan")]
    with pytest.raises(ModelFileError, match="1.running_var"):
        model.load_state_dict(bad)
    bad = dict(before)
    bad["0.weight"] = [[9.0, 9.0], [9.0]]
    with pytest.raises(ModelFileError, match=r"0.weight\[1\]"):
        model.load_state_dict(bad)
    assert model.state_dict() == before
    other = Sequential(Linear(2, 2, seed=5), BatchNorm1d(2))
    other.load_state_dict(before)
    assert other.state_dict() == before


def test_batchnorm_equals_torch_in_training_and_eval(torch) -> None:
    bn = BatchNorm1d(3, eps=1e-5, momentum=0.1)
    reference = torch.nn.BatchNorm1d(3, eps=1e-5, momentum=0.1).double()
    for p, value in zip(bn.weight, [1.5, -0.5, 2.0]):
        p.data = value
    for p, value in zip(bn.bias, [0.1, 0.2, -0.3]):
        p.data = value
    copy_into_torch(torch, bn, reference)
    for batch in (BATCH, [[2 * x - 1 for x in row] for row in reversed(BATCH)]):
        inputs = [[Value(x) for x in row] for row in batch]
        out = bn(inputs)
        weighted_sum(out).backward()
        X = torch.tensor(batch, requires_grad=True)
        expected = reference(X)
        torch_weighted_sum(torch, expected).backward()
        for row, expected_row in zip(out, expected.tolist()):
            assert [y.data for y in row] == pytest.approx(expected_row, rel=1e-10, abs=1e-12)
        for row, expected_row in zip(inputs, X.grad.tolist()):
            assert [x.grad for x in row] == pytest.approx(expected_row, rel=1e-10, abs=1e-12)
    assert [p.grad for p in bn.weight] == pytest.approx(reference.weight.grad.tolist(), rel=1e-10)
    assert [p.grad for p in bn.bias] == pytest.approx(reference.bias.grad.tolist(), rel=1e-10)
    assert bn.running_mean == pytest.approx(reference.running_mean.tolist(), rel=1e-10)
    assert bn.running_var == pytest.approx(reference.running_var.tolist(), rel=1e-10)
    assert bn.num_batches_tracked == reference.num_batches_tracked.item() == 2
    bn.eval()
    reference.eval()
    out = bn([[Value(x) for x in row] for row in BATCH])
    for row, expected_row in zip(out, reference(torch.tensor(BATCH)).tolist()):
        assert [y.data for y in row] == pytest.approx(expected_row, rel=1e-10)


def test_batchnorm_refuses_a_batch_of_one_in_training_only() -> None:
    bn = BatchNorm1d(2)
    with pytest.raises(ShapeError, match="batch of 1"):
        bn([[1.0, 2.0]])
    bn.eval()
    assert len(bn([[1.0, 2.0]])) == 1


def test_dropout_is_the_identity_in_eval_and_drops_with_no_gradient_in_training() -> None:
    x = [Value(float(i + 1)) for i in range(200)]
    drop = Dropout(0.25, seed=0)
    drop.eval()
    assert drop(x) == x and drop([1.0])[0].data == 1.0
    drop.train()
    out = drop(x)
    sum_values(out).backward()
    dropped = [i for i, y in enumerate(out) if not y.requires_grad]
    kept = [i for i, y in enumerate(out) if y.requires_grad]
    assert dropped and kept
    for i in dropped:
        assert out[i].data == 0.0 and x[i].grad == 0.0
    for i in kept:  # kept units scaled by 1/(1 - p) = 4/3, and so is their gradient
        assert out[i].data == pytest.approx(x[i].data * 4 / 3, rel=1e-15)
        assert x[i].grad == pytest.approx(4 / 3, rel=1e-15)


def test_dropout_preserves_the_expected_value() -> None:
    """E[y] = (1 − p)·x/(1 − p) = x; over N draws the mean is within 4 standard errors,
    the standard deviation of one draw being x·√(p/(1 − p))."""
    p, x, n = 0.3, 2.0, 20000
    drop = Dropout(p, seed=1)
    mean = sum(drop([x])[0].data for _ in range(n)) / n
    assert abs(mean - x) < 4 * x * math.sqrt(p / (1 - p)) / math.sqrt(n)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_dropout_p_is_validated(p) -> None:
    with pytest.raises(InvalidArgumentError):
        Dropout(p)


def test_embedding_looks_up_rows_and_sums_repeated_gradients_like_torch(torch) -> None:
    emb = Embedding(5, 3, seed=0)
    reference = torch.nn.Embedding(5, 3).double()
    copy_into_torch(torch, emb, reference)
    ids = [1, 3, 1, 0]
    rows = emb(ids)
    weighted_sum(rows).backward()
    torch_weighted_sum(torch, reference(torch.tensor(ids))).backward()
    for row, expected in zip(emb.weight, reference.weight.grad.tolist()):
        assert [v.grad for v in row] == pytest.approx(expected, rel=1e-12, abs=0)
    assert [v.grad for v in emb.weight[4]] == [0.0, 0.0, 0.0]  # never looked up
    with pytest.raises(InvalidArgumentError, match="id 5"):
        emb(5)
    with pytest.raises(InvalidTypeError):
        emb([1.0])


@pytest.mark.parametrize("eps", [None, 1e-6])
def test_rmsnorm_equals_torch(eps, torch) -> None:
    norm = RMSNorm(3, eps=eps)
    for p, value in zip(norm.weight, [0.5, 2.0, -1.0]):
        p.data = value
    reference = torch.nn.RMSNorm(3, eps=eps).double()
    copy_into_torch(torch, norm, reference)
    inputs = [[Value(x) for x in row] for row in BATCH]
    out = [norm(row) for row in inputs]
    weighted_sum(out).backward()
    X = torch.tensor(BATCH, requires_grad=True)
    expected = reference(X)
    torch_weighted_sum(torch, expected).backward()
    for row, expected_row in zip(out, expected.tolist()):
        assert [y.data for y in row] == pytest.approx(expected_row, rel=1e-12)
    for row, expected_row in zip(inputs, X.grad.tolist()):
        assert [x.grad for x in row] == pytest.approx(expected_row, rel=1e-12)
    assert [p.grad for p in norm.weight] == pytest.approx(reference.weight.grad.tolist(), rel=1e-12)


def test_bad_construction_is_named() -> None:
    with pytest.raises(InvalidTypeError, match="item 1"):
        Sequential(Linear(1, 1), "relu")  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="expected 2 inputs, got 3"):
        Linear(2, 1)([1.0, 2.0, 3.0])
    with pytest.raises(InvalidArgumentError):
        BatchNorm1d(2, momentum=2.0)
    assert isinstance(nn.modules.Identity()([1.0])[0], Value)
