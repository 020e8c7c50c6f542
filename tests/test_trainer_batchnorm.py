"""The Trainer with models that contain nn.BatchNorm1d: a batch-level forward
(`Module.forward_batch`) in batch and minibatch mode, a clear error where a batch
would hold one sample, eval mode for scoring. Gradients, updated weights and
running statistics are compared with the same model in PyTorch (float64).
"""

from __future__ import annotations

import re

import pytest
from conftest import require_module

import nn
from autograd.errors import InvalidArgumentError, NonFiniteError, ShapeError

X, Y = nn.data.moons(40, noise=0.1, seed=0)


def bn_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 4, seed=0), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1, seed=1), nn.Sigmoid())


def torch_twin(torch, model):
    """The same layers in PyTorch, float64, with the same weights (state dict keys are the same)."""
    twin = torch.nn.Sequential(
        torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 1), torch.nn.Sigmoid()
    ).double()
    state = model.state_dict()
    twin.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in state.items()})
    return twin


def torch_value(torch_tensors, name):
    """The entry of a PyTorch tensor named like our parameter, e.g. ``0.weight[1][0]``."""
    key, *indices = re.split(r"\[", name)
    tensor = torch_tensors[key]
    for i in indices:
        tensor = tensor[int(i.rstrip("]"))]
    return float(tensor)


@pytest.mark.parametrize("mode, batches", [("batch", [range(40)]), ("minibatch", [range(20), range(20, 40)])])
def test_one_epoch_with_batch_norm_equals_torch(mode, batches, torch):
    """SGD η = 0.1: each batch is one graph (BatchNorm1d normalises over it), mean MSE, one step.
    Checked: the gradients of the last step, the weights after the epoch, the running statistics."""
    model = bn_model()
    twin = torch_twin(torch, model)
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode=mode, batch_size=20, shuffle=False)
    trainer.fit(X, Y, epochs=1, progress=False)

    inputs, targets = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)[:, None]
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    twin.train()
    for indices in batches:
        rows = list(indices)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(twin(inputs[rows]), targets[rows]).backward()
        optimizer.step()
    grads = {name: p.grad for name, p in twin.named_parameters()}
    for name, p in model.named_parameters():
        assert p.grad == pytest.approx(torch_value(grads, name), abs=1e-10), name
    state = {k: v for k, v in twin.state_dict().items()}
    for name, p in model.named_parameters():
        assert p.data == pytest.approx(torch_value(state, name), abs=1e-10), name
    ours = model.state_dict()
    assert ours["1.running_mean"] == pytest.approx(state["1.running_mean"].tolist(), abs=1e-10)
    assert ours["1.running_var"] == pytest.approx(state["1.running_var"].tolist(), abs=1e-10)
    assert ours["1.num_batches_tracked"] == len(batches)


def test_evaluate_and_predict_use_eval_mode_and_restore_the_mode(torch):
    """Scoring uses the running statistics (PyTorch's eval()), and leaves each module's mode as it was."""
    model = bn_model()
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch")
    trainer.fit(X, Y, epochs=2, progress=False)
    assert model.training and all(m.training for m in model.modules())  # as before fit
    twin = torch_twin(torch, model).eval()
    inputs, targets = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)[:, None]
    with torch.no_grad():
        expected = twin(inputs)
    scores = trainer.evaluate(X, Y)
    assert scores["loss"] == pytest.approx(float(torch.nn.functional.mse_loss(expected, targets)), abs=1e-12)
    assert trainer.predict(X) == pytest.approx(expected[:, 0].tolist(), abs=1e-12)
    assert model.training and model[1].training
    model[1].eval()  # a mixed tree keeps its mixture
    trainer.evaluate(X, Y)
    assert model.training and not model[1].training


def test_online_mode_and_batches_of_one_are_refused_clearly():
    model = bn_model()
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InvalidArgumentError, match="BatchNorm1d normalises over the batch, and a batch of one sample"):
        nn.Trainer(model, optimizer, mode="online")
    with pytest.raises(InvalidArgumentError, match="no variance"):
        nn.Trainer(model, optimizer, mode="minibatch", batch_size=1)
    trainer = nn.Trainer(model, optimizer, mode="minibatch", batch_size=3)
    with pytest.raises(InvalidArgumentError, match="with 40 samples and batch_size 3 a batch holds 1 sample"):
        trainer.fit(X, Y, epochs=1, progress=False)  # 40 = 13·3 + 1


def test_a_single_sample_in_training_mode_is_a_shape_error_naming_the_batch():
    with pytest.raises(ShapeError, match="normalises each feature over a batch, but got one sample of 4 values"):
        bn_model()([0.5, 0.5])
    model = bn_model().eval()
    assert len(model([0.5, 0.5])) == 1  # eval mode: the running statistics, one sample is fine


def test_models_that_a_trace_would_freeze_are_refused_by_the_traced_engine_and_skipped_by_auto():
    require_module("numpy", extra="fast")
    model = bn_model()
    with pytest.raises(InvalidArgumentError, match="use engine='eager'"):
        nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch", engine="traced")
    dropout = nn.Sequential(nn.Linear(2, 4, seed=0), nn.Dropout(0.5, seed=0), nn.Linear(4, 1, seed=1))
    with pytest.raises(InvalidArgumentError, match="Dropout"):
        nn.Trainer(dropout, nn.optim.SGD(dropout.parameters(), lr=0.1), engine="traced")
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=0.1), mode="batch", engine="auto")
    line = trainer.choose_engine(X, Y)
    assert line == "engine: eager (a graph of Values for every sample; BatchNorm1d cannot be traced)"
    assert trainer.engine == "eager"


def test_a_divergence_restores_the_running_statistics_with_the_parameters(torch):
    """SGD η = 1e300: epoch 1's update is finite, epoch 2's first forward overflows (prediction inf)
    after its batch norm has already folded that batch into the running statistics. The restored
    state is the one before epoch 1's update: initial weights, and running statistics after one
    batch at those weights, i.e. PyTorch's after one training-mode forward of the same net."""
    model = nn.Sequential(nn.Linear(2, 4, seed=0), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1, seed=1))
    start = model.state_dict()
    twin = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    twin = twin.double()
    twin.load_state_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in start.items()})
    with torch.no_grad():
        twin.train()(torch.tensor(X, dtype=torch.float64))
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=1e300), mode="batch")
    with pytest.raises(NonFiniteError, match="diverged at epoch 2, batch 1"):
        trainer.fit(X, Y, epochs=3, progress=False)
    state = model.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"):
        assert state[key] == start[key]
    assert state["1.running_mean"] == pytest.approx(twin[1].running_mean.tolist(), abs=1e-12)
    assert state["1.running_var"] == pytest.approx(twin[1].running_var.tolist(), abs=1e-12)
    assert state["1.num_batches_tracked"] == 1
