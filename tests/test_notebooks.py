"""Every notebook in notebooks/ is stored with the outputs of a clean top-to-bottom run
(so the pictures show when the repository is browsed), and still runs top to bottom in a
fresh Jupyter kernel. After changing a notebook, or code it shows, save it again with
`python notebooks/run_all.py`."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = [
    "01_value_and_backward.ipynb",
    "02_worked_example.ipynb",
    "03_training_modes.ipynb",
    "04_initialization_and_saturation.ipynb",
    "05_derive_it_yourself.ipynb",
    "06_tiny_gpt.ipynb",  # on main (merged from another branch)
    "07_gradient_descent_and_momentum.ipynb",
    "08_overfitting_and_weight_decay.ipynb",
]
LARGEST_NOTEBOOK = 2_000_000  # bytes, outputs included: pictures are meant to be small PNG or SVG


def run_all():
    """notebooks/run_all.py, the script that executes and saves the notebooks."""
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "notebooks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_text(notebook) -> list[str]:
    """What each code cell printed (stdout), cell by cell (however the kernel split it into messages)."""
    return [
        "".join("".join(o["text"]) for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def test_the_notebooks_are_all_there() -> None:
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_with_the_outputs_of_one_clean_run(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), (
        f"{path.name}: not saved from one top-to-bottom run (execution counts {counts}); "
        "run python notebooks/run_all.py"
    )
    for cell in code_cells:
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name}, cell {cell.id}: stored with an error"
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                f"{path.name}, cell {cell.id}: stored with a warning or error on stderr: {output.text[:200]}"
            )
    assert any(cell.outputs for cell in code_cells), f"{path.name}: stored without outputs"
    size = path.stat().st_size
    assert size < LARGEST_NOTEBOOK, f"{path.name}: {size} bytes; make the pictures smaller"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_and_prints_what_is_stored(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    stored = nbformat.read(path, as_version=4)
    executed = run_all().execute(path)  # raises CellExecutionError, naming the cell, when one fails
    errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # Seeds are fixed, so a fresh run prints the same numbers as the stored one; if it
    # does not, the stored outputs are stale.
    stale = f"{path.name}: the stored outputs are stale; run python notebooks/run_all.py"
    assert printed_text(executed) == printed_text(stored), stale


def test_the_readme_maps_each_statement_to_cells_that_exist() -> None:
    """notebooks/README.md: one row per statement of the source texts, naming the notebook
    (by its number) and the cells (by id) that show it; every id must be in that notebook."""
    nbformat = pytest.importorskip("nbformat")
    ids = {path.name[:2]: {cell.id for cell in nbformat.read(path, as_version=4).cells} for path in NOTEBOOKS}
    rows = [line.split("|") for line in (ROOT / "notebooks" / "README.md").read_text().splitlines()]
    statements = [row for row in rows if len(row) > 6 and row[1].strip().isdigit()]
    assert len(statements) >= 70
    for row in statements:
        number, notebook, cells = row[1].strip(), row[4].strip(), re.findall(r"`([^`]+)`", row[5])
        assert cells, f"statement {number}: no cell named"
        for cell in cells:
            assert cell in ids[notebook], f"statement {number}: no cell {cell!r} in notebook {notebook}"
