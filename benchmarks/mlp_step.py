"""One training step of a 2-16-16-1 MLP on 100 moons samples (issue 5).

Step = forward over the 100 samples, MSE loss E = (1/n)·Σ_p (ŷ_p - t_p)², gradients,
SGD update w ← w - η·∂E/∂w. Hidden layers relu, linear output, η = 0.05, float64:

- eager: `nn.MLP` on Values, neurons summed with one Σ node (`autograd.sum_values`);
- traced: the per-sample loss traced once (`autograd.trace`), replayed over the batch;
- micrograd 0.1.0: its own `micrograd.nn.MLP` (same sizes, relu hidden, linear output);
- PyTorch: ``nn.Sequential`` of Linear/ReLU in float64, ``torch.set_num_threads(1)``.

    python benchmarks/mlp_step.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nn  # noqa: E402
from autograd import sum_values, trace  # noqa: E402
from benchmarks.common import (  # noqa: E402
    fmt_ms,
    fmt_ratio,
    median_seconds,
    optional,
    ratio,
    table,
    torch_mse_sgd_step,
)

SAMPLES = 100
SIZES = [16, 16, 1]
LEARNING_RATE = 0.05


def make_model() -> nn.MLP:
    return nn.MLP(2, SIZES, activation="relu", output_activation="linear", seed=0)


def eager_step(model: nn.MLP, X: list[list[float]], y: list[float]) -> float:
    loss = sum_values([(model(x) - t) ** 2 for x, t in zip(X, y)]) / len(y)  # type: ignore[operator]
    params = model.parameters()
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= LEARNING_RATE * p.grad
    return loss.data


def traced_stepper(model: nn.MLP, X: list[list[float]], y: list[float]) -> Any:
    import numpy as np

    per_sample = trace(lambda x, t: (model(x) - t) ** 2, [0.0, 0.0], 0.0)
    inputs, targets = np.array(X), np.array(y)
    params = model.parameters()

    def step() -> float:
        losses = per_sample.forward(inputs, targets)
        for p in params:
            p.grad = 0.0
        per_sample.backward(1.0 / len(targets))  # ∂E/∂E_p = 1/n
        for p in params:
            p.data -= LEARNING_RATE * p.grad
        return float(losses.mean())

    return step


def micrograd_stepper(X: list[list[float]], y: list[float]) -> Any:
    from micrograd.nn import MLP

    model = MLP(2, SIZES)

    def step() -> float:
        loss = sum((model(x) - t) ** 2 for x, t in zip(X, y)) * (1.0 / len(y))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= LEARNING_RATE * p.grad
        return loss.data

    return step


def torch_stepper(torch: Any, X: list[list[float]], y: list[float]) -> Any:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layers = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    ).double()
    return torch_mse_sgd_step(torch, layers, X, y, LEARNING_RATE)


def check_traced_matches_eager(X: list[list[float]], y: list[float]) -> None:
    """The traced step must train exactly like the eager one (guards the benchmark itself)."""
    eager_model, traced_model = make_model(), make_model()
    step = traced_stepper(traced_model, X, y)
    for _ in range(3):
        eager_loss, traced_loss = eager_step(eager_model, X, y), step()
        assert abs(eager_loss - traced_loss) <= 1e-12 * max(1.0, abs(eager_loss)), (eager_loss, traced_loss)


def run(repeats: int = 5) -> dict[str, Any]:
    X, y = nn.data.moons(SAMPLES, noise=0.1, seed=0)
    check_traced_matches_eager(X, y)
    results: dict[str, Any] = {"samples": SAMPLES, "sizes": [2, *SIZES]}
    model = make_model()
    contestants = {
        "eager": (lambda: eager_step(model, X, y), 1),
        "traced": (traced_stepper(make_model(), X, y), 50),
    }
    if optional("micrograd"):
        contestants["micrograd"] = (micrograd_stepper(X, y), 1)
    torch = optional("torch")
    if torch:
        contestants["torch"] = (torch_stepper(torch, X, y), 50)
    times = median_seconds(contestants, repeats)
    for name in ("eager", "traced", "micrograd", "torch"):
        results[f"{name}_s"] = times.get(name)
    results["eager_speedup_vs_micrograd"] = ratio(results["micrograd_s"], results["eager_s"])
    results["traced_speedup_vs_micrograd"] = ratio(results["micrograd_s"], results["traced_s"])
    results["traced_over_torch"] = ratio(results["traced_s"], results["torch_s"])
    return results


def report(r: dict[str, Any]) -> str:
    rows = [
        [
            f"MLP 2-16-16-1, {r['samples']} moons samples: one SGD step (MSE)",
            fmt_ms(r["eager_s"]),
            fmt_ms(r["traced_s"]),
            fmt_ms(r["micrograd_s"]),
            fmt_ms(r["torch_s"]),
        ],
        [
            "speed-up over micrograd",
            fmt_ratio(r["eager_speedup_vs_micrograd"]),
            fmt_ratio(r["traced_speedup_vs_micrograd"]),
            "1x" if r["micrograd_s"] else "-",
            fmt_ratio(ratio(r["micrograd_s"], r["torch_s"])),
        ],
        ["time / PyTorch's", fmt_ratio(ratio(r["eager_s"], r["torch_s"])), fmt_ratio(r["traced_over_torch"]),
         fmt_ratio(ratio(r["micrograd_s"], r["torch_s"])), "1x" if r["torch_s"] else "-"],
    ]
    return table(["workload", "eager", "traced", "micrograd 0.1.0", "PyTorch (1 thread)"], rows)


def main(repeats: int = 5) -> dict[str, Any]:
    results = run(repeats)
    print(report(results))
    return results


if __name__ == "__main__":
    main()
