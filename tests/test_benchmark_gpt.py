"""The GPT benchmark's reference engine computes the same loss as nn.gpt (to 1e-12, checked
by the benchmark itself before timing) and the same gradients (to 1e-10, checked here)."""

from __future__ import annotations

import sys

import pytest

from benchmarks import gpt as bench
from nn.gpt import GPT, Tokenizer, load_names


def test_reference_engine_matches_this_engine_on_loss_and_gradients() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    tokenizer = Tokenizer(load_names())
    model = GPT(tokenizer.vocab_size, seed=2)
    ref = {name: [[bench.RefValue(w.data) for w in row] for row in rows] for name, rows in model.parameters.items()}
    tokens = tokenizer.encode("olivia")
    ours = model.loss(tokens)
    ours.backward()
    theirs = bench.ref_loss(ref, tokens, model.n_head, model.block_size)
    theirs.backward()
    assert ours.data == pytest.approx(theirs.data, rel=1e-12)
    for name, rows in model.parameters.items():
        for row, ref_row in zip(rows, ref[name]):
            assert [w.grad for w in row] == pytest.approx([r.grad for r in ref_row], rel=1e-10, abs=1e-13), name


def test_the_benchmark_steppers_run_and_agree_on_the_first_loss() -> None:
    eager_step, reference_step, _ = bench.contestants()
    assert eager_step() == pytest.approx(reference_step(), rel=1e-12)
