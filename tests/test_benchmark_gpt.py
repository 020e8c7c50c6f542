"""The GPT benchmark's reference engine computes the same loss as nn.gpt (to 1e-12, checked
by the benchmark itself before timing, for the eager and the traced contestant) and the same
gradients (to 1e-10, checked here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from benchmarks import gpt as bench
from nn.gpt import GPT, Tokenizer, load_names


@pytest.fixture(autouse=True)
def deep_recursion() -> Iterator[None]:
    """The reference engine sorts its graph recursively; the limit goes back afterwards
    (left high, a later C-level recursion such as json's could overflow the C stack)."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(bench.RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(saved)


def test_reference_engine_matches_this_engine_on_loss_and_gradients() -> None:
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


def test_the_benchmark_steppers_run_and_agree_on_their_losses() -> None:
    """Two turns (a step on every word each): the three contestants start from the same
    weights, and Adam moves them alike, so their losses agree step by step."""
    runs = bench.Contestants()
    assert sorted(runs.trace_seconds) == sorted({len(tokens) for tokens in runs.words})
    for _ in range(2):
        reference = runs.steps["reference"]()
        assert runs.steps["eager"]() == pytest.approx(reference, rel=1e-10)
        assert runs.steps["traced"]() == pytest.approx(reference, rel=1e-10)


def test_after_the_benchmark_steps_the_traced_weights_and_moments_are_eager_ones() -> None:
    """Two turns of the eager and the traced contestant (twelve Adam steps, names of five
    lengths): the traced contestant's arrays, written back, equal eager's Values and buffers."""
    runs = bench.Contestants()
    for _ in range(2):
        runs.steps["eager"]()
        runs.steps["traced"]()
    runs.traced.write_back()
    eager, traced = (runs.models[name].parameters_list() for name in ("eager", "traced"))
    assert [w.data for w in traced] == pytest.approx([w.data for w in eager], rel=1e-12, abs=1e-12)
    assert [w.grad for w in traced] == pytest.approx([w.grad for w in eager], rel=1e-12, abs=1e-12)
    for buffer in ("m", "v"):
        expected = runs.optimizers["eager"].state[buffer]
        assert runs.optimizers["traced"].state[buffer] == pytest.approx(expected, rel=1e-12, abs=1e-15), buffer
