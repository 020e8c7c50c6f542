"""Traced graphs that change with the data: integer inputs that pick rows (`autograd.indices`,
replayed as a gather), one trace per input shape (`autograd.traced`), softmax's shift taken
per sample, and the tiny GPT traced once per name length.

The reference is eager mode of this engine, run one sample at a time (itself checked
against PyTorch in test_gpt.py, test_select.py and test_functional.py).
"""

from __future__ import annotations

import random

import pytest
from conftest import eager_losses_and_gradients, require_module

import nn
from autograd import Value, indices, sum_values, trace, traced
from autograd.errors import DomainError, InvalidArgumentError, InvalidTypeError, ShapeError
from nn.functional import cross_entropy, log_softmax, softmax
from nn.gpt import GPT, Tokenizer, load_names, traced_loss
from nn.optim import Adam

np = require_module("numpy", extra="fast")


def eager_sum(fn, parameters, samples):
    """Each sample's output and the gradients of their sum, eagerly, one sample at a time (``.grad`` left at 0)."""
    outputs, grads = eager_losses_and_gradients(fn, parameters, samples)
    for p in parameters:
        p.grad = 0.0
    return outputs, grads


def traced_sum(step, parameters, batches):
    for p in parameters:
        p.grad = 0.0
    outputs = step.forward(*batches).tolist()
    step.backward()
    grads = [p.grad for p in parameters]
    for p in parameters:
        p.grad = 0.0
    return outputs, grads


def test_traced_embedding_lookups_equal_eager_and_repeated_ids_accumulate() -> None:
    """Random table and ids; a batch where one sample repeats an id and two samples share ids."""
    rng = random.Random(4)
    emb = nn.Embedding(7, 3, seed=1)
    head = [Value(rng.uniform(-1, 1)) for _ in range(3)]
    params = emb.parameters() + head

    def fn(ids):
        rows = emb(ids)
        return sum_values([(w * x).tanh() for row in rows for w, x in zip(head, row)])

    step = trace(fn, indices([0, 1, 2, 3]))
    batch = [[rng.randrange(7) for _ in range(4)] for _ in range(9)] + [[5, 5, 5, 1], [5, 5, 5, 1]]
    traced, traced_grads = traced_sum(step, params, [batch])
    eager, eager_grads = eager_sum(fn, params, [(ids,) for ids in batch])
    assert traced == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)
    assert sum(1 for g in traced_grads[: 7 * 3] if g != 0.0) > 3  # the ids reached several rows


def test_traced_cross_entropy_of_index_targets_equals_eager() -> None:
    rng = random.Random(5)
    weight = [[Value(rng.gauss(0, 2)) for _ in range(3)] for _ in range(5)]
    params = [w for row in weight for w in row]

    def fn(x, target):
        logits = [sum_values([w * xi for w, xi in zip(row, x)]) for row in weight]
        return cross_entropy(logits, target)

    step = trace(fn, [0.0, 0.0, 0.0], indices(0))
    X = [[rng.uniform(-3, 3) for _ in range(3)] for _ in range(12)]
    T = [rng.randrange(5) for _ in range(12)]
    traced, traced_grads = traced_sum(step, params, [X, T])
    eager, eager_grads = eager_sum(fn, params, list(zip(X, T)))
    assert traced == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)


def test_index_inputs_are_checked_at_replay_and_at_trace_time() -> None:
    table = [Value(1.0), Value(2.0), Value(3.0)]
    step = trace(lambda ids: nn.functional.embedding(ids[0], [[w] for w in table])[0] * 2.0, indices([0]))
    assert step.forward([[2], [0]]).tolist() == [6.0, 2.0]
    replay_error = r"index 3.0 is not an integer in \[0, 3\) \(traced replay, sample 1; index: i1\)"
    with pytest.raises(DomainError, match=replay_error):
        step.forward([[0], [3]])
    with pytest.raises(InvalidArgumentError, match=r"argument 0 holds indices, but sample 1 is 1.5"):
        step.forward([[0], [1.5]])
    with pytest.raises(InvalidArgumentError, match=r"sample 0 is -1.0; expected an integer >= 0"):
        step.forward([[-1]])
    with pytest.raises(InvalidArgumentError, match=r"trace: example 0\[1\]: an index must be an integer >= 0, got 1.5"):
        trace(lambda ids: ids[0], indices([1.0, 1.5]))
    with pytest.raises(InvalidArgumentError, match=r"an index must be an integer >= 0, got -2"):
        trace(lambda i: i, indices(-2))
    with pytest.raises(InvalidTypeError, match=r"trace: example 0: expected an int or float, got bool True"):
        trace(lambda i: i, indices(True))


def test_a_float_input_used_as_an_index_is_checked_where_it_picks() -> None:
    """Without `indices`, a traced float that select reads must still hold a valid index."""
    v = [Value(1.0), Value(2.0)]
    step = trace(lambda t: nn.functional.cross_entropy(v, t), 0)
    with pytest.raises(DomainError, match=r"index 0.5 is not an integer in \[0, 2\) \(traced replay, sample 0"):
        step.forward([0.5])


def test_one_trace_per_length_each_equal_to_eager_and_a_known_length_is_not_traced_again() -> None:
    rng = random.Random(6)
    emb = nn.Embedding(6, 2, seed=2)
    w = Value(0.7)
    params = [*emb.parameters(), w]

    def fn(ids, scale):
        rows = emb(ids)
        return sum_values([(w * x * scale).sigmoid() for row in rows for x in row]) * (1.0 / len(ids))

    calls = []
    step = traced(lambda ids, scale: calls.append(len(ids)) or fn(ids, scale), indices=(0,))
    for length in (3, 5, 8):
        batch = [[rng.randrange(6) for _ in range(length)] for _ in range(4)]
        scales = [rng.uniform(0.5, 2.0) for _ in range(4)]
        traced_out, traced_grads = traced_sum(step, params, [batch, scales])
        eager, eager_grads = eager_sum(fn, params, list(zip(batch, scales)))
        assert traced_out == pytest.approx(eager, rel=1e-12, abs=1e-12)
        assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)
    assert calls == [3, 5, 8]
    step.forward([[1, 2, 3, 4, 5]], [1.0])  # a length seen before: replayed, not traced
    assert calls == [3, 5, 8]
    assert sorted(step.traces) == [((3,), ()), ((5,), ()), ((8,), ())]


def test_traced_cache_errors() -> None:
    step = traced(lambda x: x[0] * 2.0)
    with pytest.raises(Exception, match="call forward"):
        step.backward()
    with pytest.raises(ShapeError, match="argument 0 must be a non-empty batch"):
        step.forward([])
    with pytest.raises(ShapeError, match="not rectangular"):
        step.forward([[1.0, 2.0], [1.0]])
    with pytest.raises(InvalidTypeError, match="fn must be callable"):
        traced(3)


@pytest.mark.parametrize("function", [softmax, log_softmax])
def test_softmax_replayed_where_the_argmax_moved_and_logits_are_large_equals_eager(function) -> None:
    """Traced at logits whose largest is the first; replayed where it is the last and the
    logits are ±800 (e^800 overflows: a maximum frozen at trace time would give inf or nan)."""
    weights = [Value(1.0 + 0.1 * k) for k in range(4)]

    def fn(z):
        return sum_values([w * p for w, p in zip(weights, function([w * x for w, x in zip(weights, z)]))])

    step = trace(fn, [3.0, 0.0, 1.0, 2.0])
    batch = [[-800.0, 10.0, 790.0, 800.0], [800.0, -800.0, 0.0, 799.5], [0.1, 0.2, 0.3, 0.4]]
    traced_out, traced_grads = traced_sum(step, weights, [batch])
    eager, eager_grads = eager_sum(fn, weights, [(z,) for z in batch])
    assert np.isfinite(traced_out).all()
    assert traced_out == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)


# -- the tiny GPT, traced once per name length --------------------------------------------


@pytest.fixture(scope="module")
def gpt_setup():
    tokenizer = Tokenizer(load_names())
    model = GPT(tokenizer.vocab_size, n_embd=16, n_head=4, block_size=16, seed=5)
    return tokenizer, model


def test_traced_gpt_loss_and_every_gradient_equal_eager_on_names_of_different_lengths(gpt_setup) -> None:
    tokenizer, model = gpt_setup
    params = model.parameters_list()
    step = traced_loss(model)
    words = ["al", "emma", "olivia", "christopher", "maximilianfredericko", "anna"]  # anna: emma's length
    for word in words:
        tokens = tokenizer.encode(word)
        traced_out, traced_grads = traced_sum(step, params, [[tokens]])
        eager, eager_grads = eager_sum(model.loss, params, [(tokens,)])
        assert traced_out == pytest.approx(eager, rel=1e-12, abs=1e-12), word
        assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12), word
    assert len(step.traces) == 5


def test_a_batch_of_names_of_one_length_replays_each_name(gpt_setup) -> None:
    tokenizer, model = gpt_setup
    params = model.parameters_list()
    names = [tokenizer.encode(w) for w in ("emma", "anna", "ella", "zoey")]
    traced_out, traced_grads = traced_sum(traced_loss(model), params, [names])
    eager, eager_grads = eager_sum(model.loss, params, [(tokens,) for tokens in names])
    assert traced_out == pytest.approx(eager, rel=1e-12, abs=1e-12)
    assert traced_grads == pytest.approx(eager_grads, rel=1e-12, abs=1e-12)


def test_adam_after_a_traced_step_gives_the_weights_of_an_eager_step() -> None:
    tokenizer = Tokenizer(load_names())
    eager_model = GPT(tokenizer.vocab_size, seed=8)
    traced_model = GPT(tokenizer.vocab_size, seed=8)
    eager_opt = Adam(eager_model.parameters_list(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    traced_opt = Adam(traced_model.parameters_list(), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    step = traced_loss(traced_model)
    for word in ("olivia", "al", "olivia"):
        tokens = tokenizer.encode(word)
        loss = eager_model.loss(tokens)
        eager_opt.zero_grad()
        loss.backward()
        eager_opt.step()
        replayed = step.forward([tokens])
        traced_opt.zero_grad()
        step.backward()
        traced_opt.step()
        assert replayed[0] == pytest.approx(loss.data, rel=1e-12, abs=1e-12)
    assert [w.data for w in traced_model.parameters_list()] == pytest.approx(
        [w.data for w in eager_model.parameters_list()], rel=1e-12, abs=1e-12
    )
