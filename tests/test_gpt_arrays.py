"""Traced GPT training in arrays (`nn.gpt.ArrayTraining`) against eager training on the Values:
the expected numbers are those of the eager step (``loss.backward()`` and `Adam.step`, itself
checked against PyTorch in test_gpt.py), to 1e-12 for the weights and Adam's moments."""

from __future__ import annotations

import pytest
from conftest import require_module

from autograd.errors import InvalidArgumentError
from nn.gpt import GPT, ArrayTraining, Tokenizer, load_names, train
from nn.optim import Adam

np = require_module("numpy", extra="fast")

# Three lengths; "e" is in the first name but not the second, "z" in none; "al" reads only
# two rows of the position table.
WORDS = ["emma", "al", "christopher", "emma"]
ENGINES = ("eager", "traced")


def adam(model: GPT) -> Adam:
    return Adam(model.parameters_list(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(load_names())


def test_array_steps_equal_eager_adam_steps_weights_and_moments(tokenizer) -> None:
    """After every step, θ and Adam's m and v in the arrays equal the eager step's Values and
    buffers, entry by entry (the arrays are in the optimizer's order)."""
    eager_model, traced_model = GPT(tokenizer.vocab_size, seed=11), GPT(tokenizer.vocab_size, seed=11)
    eager_optimizer, traced_optimizer = adam(eager_model), adam(traced_model)
    arrays = ArrayTraining(traced_model, traced_optimizer)
    for word in WORDS:
        tokens = tokenizer.encode(word)
        eager_optimizer.zero_grad()
        loss = eager_model.loss(tokens)
        loss.backward()
        eager_optimizer.step()
        assert arrays.step(tokens) == pytest.approx(loss.data, rel=1e-12)
        expected = [w.data for w in eager_model.parameters_list()]
        assert arrays.theta.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12), word
        assert arrays.grad.tolist() == pytest.approx([w.grad for w in eager_model.parameters_list()], abs=1e-12)
        for buffer in ("m", "v"):
            assert arrays.buffers[buffer].tolist() == pytest.approx(
                eager_optimizer.state[buffer], rel=1e-12, abs=1e-15
            ), (word, buffer)
    assert traced_optimizer.steps == eager_optimizer.steps == len(WORDS)


def test_weights_a_name_does_not_read_get_a_zero_gradient_and_move_by_their_moments(tokenizer) -> None:
    """Eager `Adam.step` updates every parameter it holds: after "emma", the row of "e" in the
    token table (absent from "al") and the rows of positions 3.. of the position table (not
    read by "al", 2 positions) have m ≠ 0, so the step on "al" moves them with g = 0 and their
    moments decay (m ← β₁·m). The array step must do the same."""
    eager_model, traced_model = GPT(tokenizer.vocab_size, seed=12), GPT(tokenizer.vocab_size, seed=12)
    eager_optimizer, traced_optimizer = adam(eager_model), adam(traced_model)
    arrays = ArrayTraining(traced_model, traced_optimizer)
    params = eager_model.parameters_list()
    index = {id(w): i for i, w in enumerate(params)}
    unread = [eager_model.parameters["wte"][tokenizer.ids["e"]][0], eager_model.parameters["wpe"][3][0]]
    for word in ("emma", "al"):
        tokens = tokenizer.encode(word)
        before = [w.data for w in unread]
        m_before = [eager_optimizer.state["m"][index[id(w)]] for w in unread]
        eager_optimizer.zero_grad()
        eager_model.loss(tokens).backward()
        eager_optimizer.step()
        arrays.step(tokens)
    # The eager step on "al": zero gradients, yet moved weights and decayed moments.
    assert [w.grad for w in unread] == [0.0, 0.0]
    assert all(m != 0.0 for m in m_before)
    assert [eager_optimizer.state["m"][index[id(w)]] for w in unread] == pytest.approx(
        [0.85 * m for m in m_before], rel=1e-15
    )
    assert all(w.data != b for w, b in zip(unread, before))
    for w in unread:
        i = index[id(w)]
        assert arrays.grad[i] == 0.0
        assert arrays.theta[i] == pytest.approx(w.data, rel=1e-12)
        assert arrays.buffers["m"][i] == pytest.approx(eager_optimizer.state["m"][i], rel=1e-12)
        assert arrays.buffers["v"][i] == pytest.approx(eager_optimizer.state["v"][i], rel=1e-12)


def test_values_change_only_at_write_back_which_leaves_what_an_eager_step_leaves(tokenizer) -> None:
    """Between write-backs the Values keep their weights; `write_back` puts θ into ``.data``,
    the last gradient into ``.grad`` and m, v into ``optimizer.state``, as eager steps leave them."""
    eager_model, traced_model = GPT(tokenizer.vocab_size, seed=13), GPT(tokenizer.vocab_size, seed=13)
    eager_optimizer, traced_optimizer = adam(eager_model), adam(traced_model)
    start = [w.data for w in traced_model.parameters_list()]
    arrays = ArrayTraining(traced_model, traced_optimizer)
    for word in WORDS[:3]:
        tokens = tokenizer.encode(word)
        eager_optimizer.zero_grad()
        eager_model.loss(tokens).backward()
        eager_optimizer.step()
        arrays.step(tokens)
    assert [w.data for w in traced_model.parameters_list()] == start
    assert traced_optimizer.state["m"] == [0.0] * len(start)
    arrays.write_back()
    for name, rows in eager_model.parameters.items():
        for eager_row, traced_row in zip(rows, traced_model.parameters[name]):
            assert [w.data for w in traced_row] == pytest.approx([w.data for w in eager_row], rel=1e-12, abs=1e-12)
            assert [w.grad for w in traced_row] == pytest.approx([w.grad for w in eager_row], abs=1e-12)
    for buffer in ("m", "v"):
        assert traced_optimizer.state[buffer] == pytest.approx(eager_optimizer.state[buffer], rel=1e-12, abs=1e-15)
    # What reads the Values now sees the trained model: the eager loss of a name.
    tokens = tokenizer.encode("olivia")
    assert traced_model.loss(tokens).data == pytest.approx(eager_model.loss(tokens).data, rel=1e-12)


def test_read_takes_weights_changed_on_the_values(tokenizer) -> None:
    """A weight set by hand between steps is used after `read` (the replay's loss equals eager's)."""
    model = GPT(tokenizer.vocab_size, seed=14)
    arrays = ArrayTraining(model, adam(model))
    arrays.step(tokenizer.encode("emma"))
    arrays.write_back()
    model.parameters["lm_head"][5][2].data = 3.0
    arrays.read()
    tokens = tokenizer.encode("zoe")
    assert arrays.loss(tokens) == pytest.approx(model.loss(tokens).data, rel=1e-12)


def test_a_parameter_the_optimizer_does_not_hold_is_refused(tokenizer) -> None:
    model = GPT(tokenizer.vocab_size, seed=15)
    arrays = ArrayTraining(model, Adam(model.parameters_list()[1:]))
    with pytest.raises(InvalidArgumentError, match=r"wte\[0\]\[0\], which the optimizer does not hold"):
        arrays.step(tokenizer.encode("emma"))


def test_gpt_train_traced_leaves_the_weights_of_eager_training() -> None:
    """`gpt.train` with the linearly decaying learning rate: after it returns, the traced run's
    Values (written back) equal the eager run's."""
    words = ["emma", "al", "anna", "bob", "zoe"]
    tokenizer = Tokenizer(words)
    models = {engine: GPT(tokenizer.vocab_size, n_embd=8, n_head=2, block_size=8, seed=1) for engine in ENGINES}
    losses = {
        engine: train(models[engine], words, tokenizer, steps=7, report_every=0, engine=engine) for engine in ENGINES
    }
    assert losses["traced"] == pytest.approx(losses["eager"], rel=1e-12)
    eager, traced = (models[engine].parameters_list() for engine in ENGINES)
    assert [w.data for w in traced] == pytest.approx([w.data for w in eager], rel=1e-12, abs=1e-12)
    assert [w.grad for w in traced] == pytest.approx([w.grad for w in eager], abs=1e-12)
