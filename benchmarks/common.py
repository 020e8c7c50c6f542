"""What every benchmark script shares: the repository on sys.path, median timing,
optional competitors, and a plain-text table.

Times are medians of several runs (the machine may be busy); what we report are
the ratios, measured side by side in the same process.
"""

from __future__ import annotations

import gc
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# PyTorch runs with one thread; numpy's BLAS (for the traced replay and the hand-written
# numpy step) gets one thread too, so every contestant has the same share of the machine.
# Read by OpenBLAS (and MKL, OpenMP) when numpy is first imported: set before that, and
# only if the caller has not chosen a number.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def median_seconds(contestants: dict[str, tuple[Callable[[], Any], int]], repeats: int) -> dict[str, float]:
    """Median wall time of one call of each contestant ``name: (run, inner)`` (see `round_seconds`)."""
    times = round_seconds(contestants, repeats)
    return {name: statistics.median(samples) for name, samples in times.items()}


def round_seconds(contestants: dict[str, tuple[Callable[[], Any], int]], repeats: int) -> dict[str, list[float]]:
    """Wall time of one call of each contestant ``name: (run, inner)``, one entry per round.

    The contestants take turns, ``repeats`` rounds, so a change of machine load
    touches all of them alike; a turn times ``inner`` calls and divides (entry k of
    every list comes from round k, so ratios can be taken round by round).
    What a call returns (a graph's output, say) is kept until the clock stops:
    freeing it is not part of the turn (engine.py times that on its own).
    Garbage from the previous turn is collected before the clock starts (a
    graph with reference cycles, like micrograd's, is not charged to the next
    contestant); the collector stays on while timing, as for any user.
    """
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(repeats):
        for name, (run, inner) in contestants.items():
            gc.collect()
            start = time.perf_counter()
            kept = [run() for _ in range(inner)]
            times[name].append((time.perf_counter() - start) / inner)
            del kept
    return times


def optional(module: str) -> ModuleType | None:
    """The module, or None when it is not installed (its column then says so)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def ratio(slower: float | None, faster: float | None) -> float | None:
    return None if not slower or not faster else slower / faster


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "not installed"
    return f"{seconds * 1e3:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.3g} ms"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.3g}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def torch_mse_sgd_step(torch: Any, layers: Any, X: list[list[float]], y: list[float], lr: float) -> Callable[[], float]:
    """One full-batch PyTorch step of ``layers`` (a one-output Sequential): MSE, backward, SGD; returns the loss."""
    optimizer = torch.optim.SGD(layers.parameters(), lr=lr)
    inputs = torch.tensor(X, dtype=torch.float64)
    targets = torch.tensor(y, dtype=torch.float64)

    def step() -> float:
        optimizer.zero_grad()
        loss = ((layers(inputs).squeeze(1) - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
        return float(loss.item())

    return step
