"""One full-batch training step at four MLP sizes, three contestants side by side (issue 14).

Step = forward over the whole batch, MSE loss E = (1/n)·Σ_p (ŷ_p - t_p)², gradients,
SGD update w ← w - η·∂E/∂w; float64, hidden layers relu, linear output, η = 0.01.
The same initial weights and data for every contestant:

- traced: `nn.Trainer(engine="traced", mode="batch")` fitting an `nn.MLP` with `nn.optim.SGD`:
  everything the Trainer does around a step counts (its checks, its history); a turn is
  one ``fit`` (full batch: one update per epoch);
- replay: the same traced replay without the Trainer, on arrays as the Trainer runs it
  (`autograd.trace`'s ``forward(..., theta=θ)`` and ``gradient``, then `nn.optim.SGD.step_arrays`):
  the difference to the row above is the Trainer's own;
- numpy: the same step written by hand on arrays: three matrix products forward, the
  transposed ones backward, the update in place: the floor of any numpy replay;
- PyTorch: ``torch.nn.Sequential`` of Linear/ReLU in float64, ``torch.set_num_threads(1)``,
  ``torch.optim.SGD``.

A *step* is what one more step costs: every contestant makes a turn of `EPOCHS` steps and
a long one (`LONG_EPOCHS`, or a workload's `Workload.long_turn`: 210 at 2-16-16-1, whose steps
are short; the Trainer: a ``fit`` of that many epochs), and a step is their difference over
the difference of their steps. Alike for all, this leaves out what a turn pays
once: the first step after another contestant's turn (cold caches) and, for the Trainer,
the *fixed cost of a fit* (checking the data, reading the weights into arrays, writing
weights, gradients and buffers back into the Values, scoring the final model once),
reported on its own: the short fit less its steps. The short turn per step is reported
as well (the ``fit`` of `EPOCHS` epochs over `EPOCHS`, its fixed cost included, against
`EPOCHS` steps of the others over `EPOCHS`).

The contestants take turns (traced, replay, numpy, PyTorch, each short then long, traced,
…); each round gives the ratios traced/numpy and traced/PyTorch (and replay/numpy,
numpy/PyTorch) of its steps, and we report the median ratio with its spread (min–max)
over the rounds: the machine is shared, and a ratio measured within one round is
steadier than a ratio of two medians. Before timing, all must give the same losses
(to 1e-10) over three steps from the same weights.

    python benchmarks/mlp_sizes.py            # every size
    python benchmarks/mlp_sizes.py --quick    # one round: a smoke test, not a measurement
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nn  # noqa: E402
from autograd import trace  # noqa: E402
from benchmarks.common import fmt_ms, fmt_ratio, optional, round_seconds, table, torch_mse_sgd_step  # noqa: E402

LEARNING_RATE = 0.01
#: Steps in a short turn (the Trainer: one `fit` of this many epochs, one update each) and in a long one
#: (a workload may ask for more: `Workload.long_turn`).
EPOCHS = 10
LONG_EPOCHS = 30
#: Steps compared before timing; their losses must agree to `TOLERANCE` (relative).
CHECK_STEPS = 3
TOLERANCE = 1e-10

#: A contestant: ``run(k)`` makes k training steps and returns the k losses (each before its update).
Run = Callable[[int], list[float]]


@dataclass(frozen=True)
class Workload:
    """A 2-layer relu MLP nin-h1-h2-1 trained on ``samples`` samples, full batch."""

    nin: int
    hidden: tuple[int, int]
    samples: int
    #: Steps in its long turn: at least `LONG_EPOCHS`, more where a step is so short that the
    #: difference of 20 steps would be within the machine's noise.
    long_turn: int = LONG_EPOCHS

    @property
    def name(self) -> str:
        return f"{self.nin}-{self.hidden[0]}-{self.hidden[1]}-1"

    @property
    def sizes(self) -> list[int]:
        return [*self.hidden, 1]


WORKLOADS = [
    Workload(2, (16, 16), 100, long_turn=210),  # 0.1 ms a step: 200 steps make the difference
    Workload(2, (64, 64), 1000),
    Workload(16, (64, 64), 1000),
    Workload(64, (128, 128), 256),
]


def make_data(workload: Workload, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    """Inputs x ~ N(0, 1) and a smooth target t = sin(Σ_j x_j / √nin) (a regression: no classes)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((workload.samples, workload.nin))
    y = np.sin(X.sum(axis=1) / np.sqrt(workload.nin))
    return X.tolist(), y.tolist()


def make_model(workload: Workload, seed: int = 0) -> nn.MLP:
    return nn.MLP(workload.nin, workload.sizes, activation="relu", output_activation="linear", seed=seed)


def weights_of(model: nn.MLP) -> list[tuple[list[list[float]], list[float]]]:
    """(W, b) per layer, W[k][j] from input j to neuron k: the layout of torch.nn.Linear."""
    state = model.state_dict()
    return [(state[f"layers.{i}.weight"], state[f"layers.{i}.bias"]) for i in range(len(model.layers))]


def traced_contestant(model: nn.MLP, X: list[list[float]], y: list[float]) -> Run:
    """Steps through the Trainer with the traced engine: ``fit(X, y, epochs=k)`` in batch mode."""
    optimizer = nn.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    trainer = nn.Trainer(model, optimizer, loss=nn.losses.mse, mode="batch", shuffle=False, engine="traced")

    def run(steps: int) -> list[float]:
        return trainer.fit(X, y, epochs=steps, progress=False).loss

    return run


def replay_contestant(model: nn.MLP, X: list[list[float]], y: list[float]) -> Run:
    """The traced replay without the Trainer: `autograd.trace` of E_p = (ŷ_p - t_p)², its forward
    over the batch with the weights θ in an array, its gradient with seed ∂E/∂E_p = 1/n, then
    `nn.optim.SGD.step_arrays` on θ (what the Trainer adds around these is the difference
    between the two rows)."""
    import numpy as np

    per_sample = trace(lambda x, t: (model(x) - t) ** 2, X[0], y[0])
    inputs, targets = np.array(X, dtype=float), np.array(y, dtype=float)
    optimizer = nn.optim.SGD(per_sample.parameters, lr=LEARNING_RATE)
    weights = np.array([p.data for p in per_sample.parameters])
    buffers = {name: np.array(values) for name, values in optimizer.state.items()}

    def step() -> float:
        nonlocal weights
        losses = per_sample.forward(inputs, targets, theta=weights)
        weights = optimizer.step_arrays(weights, per_sample.gradient(1.0 / len(targets)), buffers)
        return float(losses.mean())

    return lambda steps: [step() for _ in range(steps)]


def numpy_contestant(weights: Sequence[tuple[Any, Any]], X: list[list[float]], y: list[float]) -> Run:
    """The same step by hand. Forward z₁ = X·W₁ᵀ + b₁, h₁ = relu(z₁), z₂ = h₁·W₂ᵀ + b₂,
    h₂ = relu(z₂), ŷ = h₂·W₃ᵀ + b₃; backward with δ = ∂E/∂ŷ = (2/n)(ŷ - t):
    ∂E/∂W₃ = δᵀ·h₂, ∂E/∂h₂ = δ·W₃, δ₂ = ∂E/∂h₂ ⊙ [z₂ > 0], ∂E/∂W₂ = δ₂ᵀ·h₁, … (biases: column sums)."""
    import numpy as np

    (W1, b1), (W2, b2), (W3, b3) = [(np.array(W, dtype=float), np.array(b, dtype=float)) for W, b in weights]
    inputs, targets = np.array(X, dtype=float), np.array(y, dtype=float)
    n = len(targets)

    def step() -> float:
        z1 = inputs @ W1.T + b1
        h1 = np.maximum(z1, 0.0)
        z2 = h1 @ W2.T + b2
        h2 = np.maximum(z2, 0.0)
        residual = (h2 @ W3.T + b3)[:, 0] - targets
        loss = float(residual @ residual) / n
        d3 = (2.0 / n) * residual[:, None]
        d2 = (d3 @ W3) * (z2 > 0.0)
        d1 = (d2 @ W2) * (z1 > 0.0)
        for W, b, d, h in ((W3, b3, d3, h2), (W2, b2, d2, h1), (W1, b1, d1, inputs)):
            W -= LEARNING_RATE * (d.T @ h)
            b -= LEARNING_RATE * d.sum(axis=0)
        return loss

    return lambda steps: [step() for _ in range(steps)]


def torch_contestant(torch: Any, weights: Sequence[tuple[Any, Any]], X: list[list[float]], y: list[float]) -> Run:
    """The same step in PyTorch: Sequential of Linear/ReLU, float64, one thread, torch.optim.SGD."""
    torch.set_num_threads(1)
    linears = [torch.nn.Linear(len(W[0]), len(W), dtype=torch.float64) for W, _ in weights]
    with torch.no_grad():
        for linear, (W, b) in zip(linears, weights):
            linear.weight.copy_(torch.tensor(W, dtype=torch.float64))
            linear.bias.copy_(torch.tensor(b, dtype=torch.float64))
    layers = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1], torch.nn.ReLU(), linears[2])
    step = torch_mse_sgd_step(torch, layers, X, y, LEARNING_RATE)
    return lambda steps: [step() for _ in range(steps)]


def contestants(workload: Workload, torch: Any = None, seed: int = 0) -> dict[str, Run]:
    """The contestants on the same data and the same initial weights (PyTorch only if given)."""
    X, y = make_data(workload, seed)
    model = make_model(workload, seed)
    weights = weights_of(model)
    runs = {
        "traced": traced_contestant(model, X, y),
        "replay": replay_contestant(make_model(workload, seed), X, y),
        "numpy": numpy_contestant(weights, X, y),
    }
    if torch is not None:
        runs["torch"] = torch_contestant(torch, weights, X, y)
    return runs


def check_same_losses(runs: dict[str, Run], steps: int = CHECK_STEPS, tolerance: float = TOLERANCE) -> list[float]:
    """Run every contestant ``steps`` steps; their losses must agree to ``tolerance`` (relative to
    max(1, |E|)), else AssertionError naming the two contestants. Returns the first one's losses."""
    names = list(runs)
    losses = {name: runs[name](steps) for name in names}
    reference = losses[names[0]]
    for name in names[1:]:
        for k, (a, b) in enumerate(zip(reference, losses[name])):
            if not abs(a - b) <= tolerance * max(1.0, abs(a)):
                raise AssertionError(f"step {k + 1}: {names[0]} gives loss {a!r}, {name} gives {b!r}")
    return reference


def trace_seconds(workload: Workload, repeats: int) -> list[float]:
    """Seconds to trace the per-sample loss and outputs, as the Trainer traces it (`autograd.trace`)."""
    model = make_model(workload)
    X, y = make_data(workload)

    def loss_and_output(x: list[Any], t: list[Any]) -> list[Any]:
        output = model(x)
        return [nn.losses.mse(output, t), output]

    times = []
    for _ in range(repeats):
        gc.collect()  # the previous trace's graph is garbage: not charged to this one
        start = time.perf_counter()
        trace(loss_and_output, X[0], [y[0]])
        times.append(time.perf_counter() - start)
    return times


def spread(ratios: list[float]) -> dict[str, float]:
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def run(
    rounds: int = 7, workloads: Sequence[Workload] = WORKLOADS, epochs: int = EPOCHS, long_epochs: int | None = None
) -> dict[str, Any]:
    """Every workload's turns (``long_epochs``, if given, for every long turn instead of `Workload.long_turn`)."""
    torch = optional("torch")
    results: dict[str, Any] = {"epochs_per_turn": epochs, "rounds": rounds, "sizes": {}}
    for workload in workloads:
        long_epochs_here = long_epochs or workload.long_turn
        runs = contestants(workload, torch)
        check_same_losses(runs)
        turns = {}
        for name, r in runs.items():  # every contestant makes a short and a long turn
            turns[name] = (functools.partial(r, epochs), 1)
            turns[f"{name} long"] = (functools.partial(r, long_epochs_here), 1)
        times = round_seconds(turns, rounds)
        row: dict[str, Any] = {"samples": workload.samples, "parameters": make_model(workload).nparameters,
                               "long_turn": long_epochs_here}  # fmt: skip
        # A step: what one more step costs, (long turn - short turn) / (its steps - epochs), alike for every
        # contestant (a turn's first step, after another contestant's turn, may find cold caches: it cancels).
        steps, fits = {}, {}
        for name in runs:
            short, long = times[name], times[f"{name} long"]
            steps[name] = [(t_long - t) / (long_epochs_here - epochs) for t, t_long in zip(short, long)]
            fits[name] = [t / epochs for t in short]
            row[f"{name}_step_s"] = statistics.median(steps[name])
            row[f"{name}_s"] = statistics.median(fits[name])
        # The traced fit's fixed cost: the short fit less its steps.
        row["fit_fixed_s"] = statistics.median([t - epochs * k for t, k in zip(times["traced"], steps["traced"])])
        for slower, faster in (("traced", "numpy"), ("traced", "torch"), ("replay", "numpy"), ("numpy", "torch")):
            if faster in runs:
                row[f"{slower}_over_{faster}"] = spread([a / b for a, b in zip(steps[slower], steps[faster])])
        for faster in ("numpy", "torch"):  # the short fit per update, its fixed cost spread over `epochs` updates
            if faster in runs:
                row[f"fit_over_{faster}"] = spread([a / b for a, b in zip(fits["traced"], fits[faster])])
        results["sizes"][workload.name] = row
    largest = max(workloads, key=lambda w: make_model(w).nparameters)
    results["trace_build"] = {"size": largest.name, **spread(trace_seconds(largest, max(3, rounds // 2)))}
    return results


def _ratio_text(r: dict[str, float] | None) -> str:
    if r is None:
        return "-"
    return f"{fmt_ratio(r['median'])} ({fmt_ratio(r['min'])}–{fmt_ratio(r['max'])})"


def report(r: dict[str, Any]) -> str:
    epochs = r["epochs_per_turn"]
    rows = [
        [
            f"{name}, {row['samples']:,} samples",
            fmt_ms(row["traced_step_s"]),
            fmt_ms(row["numpy_step_s"]),
            fmt_ms(row.get("torch_step_s")),
            _ratio_text(row["traced_over_numpy"]),
            _ratio_text(row.get("traced_over_torch")),
            fmt_ms(row["fit_fixed_s"]),
            _ratio_text(row["fit_over_numpy"]),
            _ratio_text(row.get("fit_over_torch")),
            _ratio_text(row["replay_over_numpy"]),
            _ratio_text(row.get("numpy_over_torch")),
        ]
        for name, row in r["sizes"].items()
    ]
    headers = ["model, full batch", "traced step (Trainer)", "numpy by hand", "PyTorch (1 thread)",
               "traced / numpy", "traced / PyTorch", "fixed cost per fit", f"{epochs}-epoch fit per update / numpy",
               f"{epochs}-epoch fit per update / PyTorch", "replay alone / numpy", "numpy / PyTorch"]  # fmt: skip
    build = r["trace_build"]
    long_turns = ", ".join(f"{row['long_turn']} steps at {name}" for name, row in r["sizes"].items())
    return (
        table(headers, rows)
        + f"\n\nOne SGD step each (MSE, float64); medians of {r['rounds']} rounds; ratios: median of the per-round"
        f" ratios (min–max). A step: (long turn - turn of {epochs} steps) / (steps of the long turn - {epochs}),"
        f" for every contestant (the Trainer's turns are fits of that many epochs); long turns: {long_turns};"
        f" fixed cost per fit: the rest of the {epochs}-epoch fit; {epochs}-epoch fit per update: that fit /"
        f" {epochs}, against {epochs} steps / {epochs} of the others."
        + f"\nTracing the {build['size']} model's loss: {fmt_ms(build['median'])}"
        f" ({fmt_ms(build['min'])}–{fmt_ms(build['max'])})."
    )


def main(rounds: int = 7) -> dict[str, Any]:
    results = run(rounds)
    print(report(results))
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round (smoke test)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of turns (default 7)")
    args = parser.parse_args()
    main(1 if args.quick else args.rounds)
