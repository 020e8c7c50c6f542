"""Execute every notebook in this folder top to bottom and save it with its outputs.

    python notebooks/run_all.py            # all of them
    python notebooks/run_all.py 02 05      # those whose names start with 02 or 05

The committed notebooks carry their outputs so that the pictures show when the
repository is browsed; run this after changing a notebook or the code it shows.
Every notebook fixes its seeds, so a second run gives the same outputs.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import nbclient
import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CELL_TIMEOUT = 120  # seconds
# The text form of a picture object, e.g. "<graphviz...Digraph object at 0x7f...>": it
# changes from run to run and says nothing the picture beside it does not.
MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def execute(path: Path) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel that imports the project from this repository."""
    notebook = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    env.pop("MPLBACKEND", None)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        record_timing=False,  # no run times in the saved file: a second run saves the same bytes
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
            cell.outputs = merged_streams(cell.outputs)
            for output in cell.outputs:
                data = output.get("data", {})
                if len(data) > 1 and MEMORY_ADDRESS.search(data.get("text/plain", "")):
                    del data["text/plain"]
    return notebook


def merged_streams(outputs: list) -> list:
    """Consecutive prints to the same stream as one output (the kernel splits them by timing)."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output.output_type == "stream"
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text = "".join(previous.text) + "".join(output.text)
        else:
            merged.append(output)
    return merged


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
