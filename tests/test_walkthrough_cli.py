"""`python -m nn train --out DIR` writes backward.html: the walkthrough of the sample graph.svg shows."""

from __future__ import annotations

import pytest

from nn import cli
from tests.test_walkthrough_frames import read_page


def test_train_writes_a_backward_page_with_every_frame(tmp_path, capsys, dot_program):
    pytest.importorskip("graphviz", reason="the page needs the graphviz package (pip install graphviz)")
    out = tmp_path / "xor"
    assert cli.main(["train", "--epochs", "3", "--no-progress", "--out", str(out)]) == 0
    assert f"{out / 'backward.html'}" in capsys.readouterr().out
    page = read_page(out / "backward.html")
    # A 2-2-1 net's loss of one sample: per neuron 2 products, a sum and σ; then the loss's own steps.
    assert len(page.frames) > 12 and page.external == []
    output = [name for name, grad in page.frames[0].items() if grad]
    assert len(output) == 1 and page.frames[0][output[0]] == "1.0"  # the pass starts at the loss
    assert all(page.frames[-1].values())  # at the end every node that needs a gradient has one


def test_a_model_too_large_to_draw_skips_the_page_with_the_reason(tmp_path, capsys):
    out = tmp_path / "moons"
    options = ["--dataset", "moons", "--samples", "12", "--hidden", "16", "16", "--epochs", "1", "--no-progress"]
    assert cli.main(["train", *options, "--out", str(out)]) == 0
    assert not (out / "backward.html").exists()
    assert "note: backward.html skipped: walkthrough frames: the graph has" in capsys.readouterr().out
