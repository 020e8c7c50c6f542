r"""The classic worked example of backpropagation, checked number by number.

Network 2-2-1, sigmoid everywhere, σ(z) = 1/(1 + e^-z), σ'(z) = σ(z)(1 - σ(z)).
Inputs x1 = 0.5, x2 = 0.1; target y = 0.6; loss E = (ŷ - y)²; one SGD step, η = 0.1.
Weights w_ij: hidden neuron i, input j (w3j: output neuron, hidden input j):
    w11 = 0.4, w12 = 0.3, b1 = 0.1
    w21 = 0.6, w22 = 0.9, b2 = 0.2
    w31 = 0.5, w32 = 0.7, b3 = 0.3

Forward pass
    net_h1 = w11·x1 + w12·x2 + b1 = 0.2 + 0.03 + 0.1          = 0.33
    net_h2 = w21·x1 + w22·x2 + b2 = 0.3 + 0.09 + 0.2          = 0.59
    h1     = σ(net_h1)                                         = 0.5817593768418363
    h2     = σ(net_h2)                                         = 0.6433651456944018
    net_o  = w31·h1 + w32·h2 + b3                              = 1.0412352904069995
    ŷ      = σ(net_o)                                          = 0.7390882858670579
    E      = (ŷ - y)²                                          = 0.01934555126543642

Backward pass (chain rule; δ = ∂E/∂net of a neuron)
    δ_o    = ∂E/∂ŷ · ∂ŷ/∂net_o = 2(ŷ - y) · ŷ(1 - ŷ)           = 0.05364267758068754
    ∂E/∂w31 = δ_o·h1,  ∂E/∂w32 = δ_o·h2,  ∂E/∂b3 = δ_o
    δ_h1   = δ_o · w31 · h1(1 - h1)                            = 0.006526044891597781
    δ_h2   = δ_o · w32 · h2(1 - h2)                            = 0.008615684794321087
    ∂E/∂w1j = δ_h1·x_j,  ∂E/∂b1 = δ_h1;   ∂E/∂w2j = δ_h2·x_j,  ∂E/∂b2 = δ_h2

Update (plain gradient descent)
    w ← w - η·∂E/∂w   for each of the nine parameters.

Every expected number is computed twice, independently of the library: from the
formulas above with math.exp in `hand_derivation`, and as literals obtained
beforehand from a separate python one-liner using only `math`.
"""

from __future__ import annotations

import math

import pytest

import nn

X, TARGET, LR = [0.5, 0.1], 0.6, 0.1
WEIGHTS = {"w11": 0.4, "w12": 0.3, "b1": 0.1, "w21": 0.6, "w22": 0.9, "b2": 0.2, "w31": 0.5, "w32": 0.7, "b3": 0.3}
# In model.parameters() order: L1.N0.w1, L1.N0.w2, L1.N0.b, L1.N1.w1, L1.N1.w2, L1.N1.b, L2.N0.w1, L2.N0.w2, L2.N0.b
NAMES = ["w11", "w12", "b1", "w21", "w22", "b2", "w31", "w32", "b3"]

LITERAL_FORWARD = {
    "net_h1": 0.33,
    "net_h2": 0.59,
    "h1": 0.5817593768418363,
    "h2": 0.6433651456944018,
    "net_o": 1.0412352904069995,
    "y_hat": 0.7390882858670579,
    "E": 0.01934555126543642,
}
LITERAL_GRADIENTS = {
    "w11": 0.0032630224457988904, "w12": 0.0006526044891597781, "b1": 0.006526044891597781,
    "w21": 0.004307842397160543, "w22": 0.0008615684794321087, "b2": 0.008615684794321087,
    "w31": 0.031207130681468326, "w32": 0.03451182907713686, "b3": 0.05364267758068754,
}  # fmt: skip
LITERAL_UPDATED = {
    "w11": 0.3996736977554201, "w12": 0.299934739551084, "b1": 0.09934739551084022,
    "w21": 0.5995692157602839, "w22": 0.8999138431520568, "b2": 0.1991384315205679,
    "w31": 0.4968792869318532, "w32": 0.6965488170922862, "b3": 0.29463573224193124,
}  # fmt: skip


def sigma(z):
    return 1.0 / (1.0 + math.exp(-z))


def hand_derivation():
    """The equations of the module docstring, one line each, with floats and math.exp only."""
    w = WEIGHTS
    x1, x2 = X
    net_h1 = w["w11"] * x1 + w["w12"] * x2 + w["b1"]
    net_h2 = w["w21"] * x1 + w["w22"] * x2 + w["b2"]
    h1, h2 = sigma(net_h1), sigma(net_h2)
    net_o = w["w31"] * h1 + w["w32"] * h2 + w["b3"]
    y_hat = sigma(net_o)
    E = (y_hat - TARGET) ** 2
    delta_o = 2 * (y_hat - TARGET) * y_hat * (1 - y_hat)
    delta_h1 = delta_o * w["w31"] * h1 * (1 - h1)
    delta_h2 = delta_o * w["w32"] * h2 * (1 - h2)
    gradients = {
        "w11": delta_h1 * x1, "w12": delta_h1 * x2, "b1": delta_h1,
        "w21": delta_h2 * x1, "w22": delta_h2 * x2, "b2": delta_h2,
        "w31": delta_o * h1, "w32": delta_o * h2, "b3": delta_o,
    }  # fmt: skip
    forward = {"net_h1": net_h1, "net_h2": net_h2, "h1": h1, "h2": h2, "net_o": net_o, "y_hat": y_hat, "E": E}
    updated = {name: w[name] - LR * g for name, g in gradients.items()}
    return forward, gradients, updated


@pytest.fixture
def model():
    network = nn.MLP(2, [2, 1], activation="sigmoid", seed=0)
    w = WEIGHTS
    network.load_state_dict(
        {
            "layers.0.weight": [[w["w11"], w["w12"]], [w["w21"], w["w22"]]],
            "layers.0.bias": [w["b1"], w["b2"]],
            "layers.1.weight": [[w["w31"], w["w32"]]],
            "layers.1.bias": [w["b3"]],
        }
    )
    return network


def test_hand_derivation_agrees_with_the_literal_numbers():
    forward, gradients, updated = hand_derivation()
    for computed, literal in ((forward, LITERAL_FORWARD), (gradients, LITERAL_GRADIENTS), (updated, LITERAL_UPDATED)):
        for name in literal:
            assert computed[name] == pytest.approx(literal[name], abs=1e-15), name


def test_forward_pass(model):
    forward, _, _ = hand_derivation()
    h1, h2 = model.layers[0](X)
    y_hat = model(X)
    E = nn.losses.mse(y_hat, TARGET)
    observed = {
        "net_h1": h1.parents[0].data, "net_h2": h2.parents[0].data, "h1": h1.data, "h2": h2.data,
        "net_o": y_hat.parents[0].data, "y_hat": y_hat.data, "E": E.data,
    }  # fmt: skip
    for name, value in observed.items():
        assert value == pytest.approx(forward[name], abs=1e-12), name
        assert value == pytest.approx(LITERAL_FORWARD[name], abs=1e-12), name


def test_every_gradient(model):
    _, gradients, _ = hand_derivation()
    nn.losses.mse(model(X), TARGET).backward()
    for name, p in zip(NAMES, model.parameters()):
        assert p.grad == pytest.approx(gradients[name], abs=1e-12), f"{name} ({p.label})"
        assert p.grad == pytest.approx(LITERAL_GRADIENTS[name], abs=1e-12), f"{name} ({p.label})"


def test_every_weight_after_one_sgd_step(model):
    _, _, updated = hand_derivation()
    optimizer = nn.optim.SGD(model.parameters(), lr=LR)
    optimizer.zero_grad()
    nn.losses.mse(model(X), TARGET).backward()
    optimizer.step()
    for name, p in zip(NAMES, model.parameters()):
        assert p.data == pytest.approx(updated[name], abs=1e-12), f"{name} ({p.label})"
        assert p.data == pytest.approx(LITERAL_UPDATED[name], abs=1e-12), f"{name} ({p.label})"


def test_the_same_step_through_the_trainer_in_online_mode(model):
    trainer = nn.Trainer(model, nn.optim.SGD(model.parameters(), lr=LR), mode="online")
    history = trainer.fit([X], [TARGET], epochs=1, progress=False)
    assert history.loss == [pytest.approx(LITERAL_FORWARD["E"], abs=1e-12)]
    assert [p.data for p in model.parameters()] == pytest.approx([LITERAL_UPDATED[n] for n in NAMES], abs=1e-12)


def test_the_step_lowers_the_loss(model):
    before = nn.losses.mse(model(X), TARGET).data
    model.load_state_dict(
        {
            "layers.0.weight": [[LITERAL_UPDATED["w11"], LITERAL_UPDATED["w12"]],
                                [LITERAL_UPDATED["w21"], LITERAL_UPDATED["w22"]]],
            "layers.0.bias": [LITERAL_UPDATED["b1"], LITERAL_UPDATED["b2"]],
            "layers.1.weight": [[LITERAL_UPDATED["w31"], LITERAL_UPDATED["w32"]]],
            "layers.1.bias": [LITERAL_UPDATED["b3"]],
        }
    )  # fmt: skip
    assert nn.losses.mse(model(X), TARGET).data < before


def test_the_half_squared_error_halves_every_gradient(model):
    """E' = ½(t - ŷ)² is E/2 for one output, so ∂E'/∂w = ½·∂E/∂w for every w (the hand
    derivation's gradients, halved); the delta rule then reads δ₃ = (ŷ - t)·ŷ(1 - ŷ)."""
    _, gradients, _ = hand_derivation()
    nn.losses.sse_half(model(X), TARGET).backward()
    for name, p in zip(NAMES, model.parameters()):
        assert p.grad == pytest.approx(gradients[name] / 2, abs=1e-12), name


def test_every_gradient_comes_from_the_old_weights_not_from_updated_output_weights(model):
    """Updating w31 first and then back-propagating through the new w31 would give
    δ₁ = δ₃·(w31 - η·δ₃·h₁)·h₁(1 - h₁) = 0.0064853131 (by hand, from the module docstring's
    numbers) instead of 0.0065260449: the engine's δ₁ (∂E/∂b1) is the latter."""
    forward, gradients, _ = hand_derivation()
    h1 = forward["h1"]
    delta3 = gradients["b3"]
    w31_updated = WEIGHTS["w31"] - LR * delta3 * h1
    delta1_literal = delta3 * w31_updated * h1 * (1 - h1)
    assert delta1_literal == pytest.approx(0.0064853131, abs=1e-10)
    optimizer = nn.optim.SGD(model.parameters(), lr=LR)
    nn.losses.mse(model(X), TARGET).backward()
    delta1_engine = model.parameters()[2].grad  # ∂E/∂b1 = δ₁
    optimizer.step()
    assert delta1_engine == pytest.approx(LITERAL_GRADIENTS["b1"], abs=1e-15)
    assert abs(delta1_engine - delta1_literal) > 4e-5


def test_the_other_reading_of_the_hidden_weights(model):
    """Reading w_ij as 'from input i to hidden neuron j': z₁ = w11·x1 + w21·x2 + b1 = 0.2 + 0.06
    + 0.1 = 0.36 and z₂ = w12·x1 + w22·x2 + b2 = 0.15 + 0.09 + 0.2 = 0.44 (by hand); then
    ŷ = σ(0.5·σ(0.36) + 0.7·σ(0.44) + 0.3) and E = (ŷ - 0.6)², with math.exp."""
    state = model.state_dict()
    state["layers.0.weight"] = [[0.4, 0.6], [0.3, 0.9]]
    model.load_state_dict(state)
    h1, h2 = model.layers[0](X)
    assert h1.parents[0].data == pytest.approx(0.36, abs=1e-15)
    assert h2.parents[0].data == pytest.approx(0.44, abs=1e-15)
    y_hat = sigma(0.5 * sigma(0.36) + 0.7 * sigma(0.44) + 0.3)
    assert nn.losses.mse(model(X), TARGET).data == pytest.approx((y_hat - TARGET) ** 2, abs=1e-15)
