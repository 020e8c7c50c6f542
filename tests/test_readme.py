"""The README's Python examples run as written (so the documentation cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# Python blocks, except those showing an interactive session (">>>" with error output).
BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    if ">>>" not in block
]


def first_line(block: str) -> str:
    return block.strip().splitlines()[0][:60]


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=first_line)
def test_readme_example_runs(block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request) -> None:
    if "import torch" in block or "import nn, torch" in block:
        request.getfixturevalue("torch")
    if "draw_graph" in block and ".render(" in block:
        request.getfixturevalue("dot_program")
    monkeypatch.chdir(tmp_path)  # examples may write files (models, drawings)
    code = compile(block, str(README), "exec")
    # An example that shows an error ("# NonFiniteError: ...") must raise exactly that.
    shown = re.search(r"^# (\w+Error):", block, flags=re.M)
    if shown is None:
        exec(code, {"__name__": "readme_example"})
        return
    from autograd import errors

    with pytest.raises(getattr(errors, shown.group(1))):
        exec(code, {"__name__": "readme_example"})
