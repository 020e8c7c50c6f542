"""Run every benchmark, print the tables and write them to benchmarks/results.json.

    python benchmarks/run.py            # from the repository root, with the `bench` extra
    python benchmarks/run.py --quick    # fewer repeats and one run, for a smoke test

Times are medians of several runs; compare the ratios, which are measured side
by side in the same process (absolute times depend on the machine and its load).
The speed issue's workloads (the four MLP sizes and the GPT step) are run `RUNS`
times over; every ratio is reported with its value in each run and their spread,
since a shared machine moves a ratio from one minute to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import engine, gpt, mlp_sizes, mlp_step  # noqa: E402
from benchmarks.common import optional, table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
#: Whole runs of the speed issue's workloads (the targets are judged on their spread).
RUNS = 3


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "torch"):
        module = optional(name)
        found[name] = getattr(module, "__version__", None) if module else None
    found["micrograd"] = "0.1.0" if optional("micrograd") else None
    found["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS")  # set to 1 by benchmarks.common unless given
    return found


def ratios(results: dict[str, Any], path: str = "") -> dict[str, float]:
    """Every ratio of one run by its path ("mlp_sizes.sizes.2-16-16-1.traced_over_numpy"): a number under
    a key naming a ratio ("_over_", "speedup"), or the median of the per-round ratios stored under it."""
    found: dict[str, float] = {}
    for key, value in results.items():
        name = f"{path}.{key}" if path else str(key)
        is_ratio = "_over_" in str(key) or "speedup" in str(key)
        if is_ratio and isinstance(value, (int, float)):
            found[name] = float(value)
        elif is_ratio and isinstance(value, dict) and "median" in value:
            found[name] = float(value["median"])
        elif isinstance(value, dict):
            found.update(ratios(value, name))
    return found


def spread(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For every ratio found in all runs: its value in each run, their median, min and max."""
    per_run = [ratios(run) for run in runs]
    names = [name for name in per_run[0] if all(name in found for found in per_run)]
    rows = {}
    for name in names:
        values = [found[name] for found in per_run]
        rows[name] = {"runs": values, "median": statistics.median(values), "min": min(values), "max": max(values)}
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run each instead of medians (smoke test)")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs of the MLP sizes and the GPT (default {RUNS})")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 5
    runs = 1 if args.quick else max(1, args.runs)
    started = time.time()
    results: dict[str, Any] = {
        "command": "python benchmarks/run.py" + (" --quick" if args.quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    }
    # The engine first, before numpy and torch are imported: the garbage collector walks
    # every live object, so a big library in memory slows both engines' graphs, unevenly.
    print("## Engine: build + backward (issue 2)\n")
    results["engine"] = engine.main(repeats)
    print("\n## Training step (issue 5)\n")
    results["mlp_step"] = mlp_step.main(2 * repeats - 1)
    speed_runs = []
    for run in range(1, runs + 1):
        print(f"\n## Run {run} of {runs}: one training step at four MLP sizes: Trainer(engine='traced'), "
              "numpy by hand, PyTorch (issue 14)\n")
        sizes = mlp_sizes.main(2 * repeats - 1)
        print(f"\n## Run {run} of {runs}: tiny GPT, one Adam step on one name (issues 13, 14)\n")
        speed_runs.append({"mlp_sizes": sizes, "gpt": gpt.main(repeats)})
    results.update(speed_runs[-1])  # the last run in full, as before
    results["runs"] = speed_runs
    results["spread"] = spread(speed_runs)
    print(f"\n## Every ratio over the {runs} run(s)\n")
    rows = [[name, *[f"{r:.3g}" for r in row["runs"]], f"{row['median']:.3g}", f"{row['min']:.3g} - {row['max']:.3g}"]
            for name, row in results["spread"].items()]  # fmt: skip
    print(table(["ratio", *[f"run {k}" for k in range(1, runs + 1)], "median", "min - max"], rows))
    results["versions"] = versions()
    results["seconds"] = round(time.time() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['command']} in {results['seconds']} s on {results['machine']}; written to {RESULTS.name}")
    return results


if __name__ == "__main__":
    main()
