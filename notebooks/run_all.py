"""Execute every notebook in this folder top to bottom and save it with its outputs.

    python notebooks/run_all.py            # all of them
    python notebooks/run_all.py 02 05      # those whose names start with 02 or 05

The committed notebooks carry their outputs so that the pictures show when the
repository is browsed; run this after changing a notebook or the code it shows.
Every notebook fixes its seeds, so a second run gives the same outputs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELL_TIMEOUT = 120  # seconds


def execute(path: Path) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel that imports the project from this repository."""
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    env.pop("MPLBACKEND", None)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=env)
    return notebook


def main(prefixes: list[str]) -> None:
    for path in sorted(HERE.glob("*.ipynb")):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        started = time.perf_counter()
        notebook = execute(path)
        nbformat.write(notebook, path)
        print(f"{path.name}: executed in {time.perf_counter() - started:.1f} s, saved with outputs")


if __name__ == "__main__":
    main(sys.argv[1:])
