"""Run every benchmark, print the tables and write them to benchmarks/results.json.

    python benchmarks/run.py            # from the repository root, with the `bench` extra
    python benchmarks/run.py --quick    # fewer repeats, for a smoke test

Times are medians of several runs; compare the ratios, which are measured side
by side in the same process (absolute times depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import engine, gpt, mlp_sizes, mlp_step  # noqa: E402
from benchmarks.common import optional  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "torch"):
        module = optional(name)
        found[name] = getattr(module, "__version__", None) if module else None
    found["micrograd"] = "0.1.0" if optional("micrograd") else None
    found["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS")  # set to 1 by benchmarks.common unless given
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run each instead of medians (smoke test)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 5
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
    print("\n## One training step at four MLP sizes: Trainer(engine='traced'), numpy by hand, PyTorch (issue 14)\n")
    results["mlp_sizes"] = mlp_sizes.main(2 * repeats - 1)
    print("\n## Tiny GPT: one Adam step on one name (issues 13, 14)\n")
    results["gpt"] = gpt.main(repeats)
    results["versions"] = versions()
    results["seconds"] = round(time.time() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['command']} in {results['seconds']} s on {results['machine']}; written to {RESULTS.name}")
    return results


if __name__ == "__main__":
    main()
