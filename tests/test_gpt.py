"""The tiny GPT on scalar Values against the same model written in PyTorch (float64,
same weights): the loss, every gradient and one Adam step agree to 1e-10.

The PyTorch model is written the usual tensor way (all positions at once, a causal
mask instead of the key/value cache), so it checks the scalar one independently.
"""

from __future__ import annotations

import math
import random

import pytest

from autograd import Value
from autograd.errors import InvalidArgumentError
from nn.functional import cross_entropy, softmax
from nn.gpt import GPT, Tokenizer, load_names, train
from nn.optim import Adam


def torch_loss(torch, weights: dict, tokens: list[int], n_head: int, block_size: int):
    F = torch.nn.functional
    n = min(block_size, len(tokens) - 1)
    inputs = torch.tensor(tokens[:n])
    targets = torch.tensor(tokens[1 : n + 1])

    def rmsnorm(x):
        return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + 1e-5)

    x = weights["wte"][inputs] + weights["wpe"][:n]
    x = rmsnorm(x)
    residual = x
    h = rmsnorm(x)
    q, k, v = h @ weights["attn.wq"].T, h @ weights["attn.wk"].T, h @ weights["attn.wv"].T
    d = q.shape[-1]
    hs = d // n_head
    q, k, v = (t.view(n, n_head, hs).transpose(0, 1) for t in (q, k, v))  # (head, n, hs)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    attended = (F.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(n, d)
    x = attended @ weights["attn.wo"].T + residual
    residual = x
    x = F.relu(rmsnorm(x) @ weights["mlp.fc1"].T) @ weights["mlp.fc2"].T + residual
    logits = x @ weights["lm_head"].T
    return F.cross_entropy(logits, targets)


@pytest.fixture(scope="module")
def setup():
    names = load_names()
    tokenizer = Tokenizer(names)
    model = GPT(tokenizer.vocab_size, n_embd=16, n_head=4, block_size=16, seed=3)
    return names, tokenizer, model


@pytest.mark.parametrize("word", ["emma", "christopher", "al", "maximilianfredericko"])
def test_one_training_step_equals_pytorch(word: str, setup, torch) -> None:
    _, tokenizer, model = setup
    tokens = tokenizer.encode(word)
    weights = {
        name: torch.tensor([[w.data for w in row] for row in rows], requires_grad=True)
        for name, rows in model.parameters.items()
    }
    expected = torch_loss(torch, weights, tokens, model.n_head, model.block_size)
    expected.backward()
    for p in model.parameters_list():
        p.grad = 0.0
    loss = model.loss(tokens)
    loss.backward()
    assert loss.data == pytest.approx(expected.item(), rel=1e-10, abs=1e-12)
    for name, rows in model.parameters.items():
        ours = [[w.grad for w in row] for row in rows]
        theirs = weights[name].grad.tolist()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a == pytest.approx(b, rel=1e-10, abs=1e-12), f"{name}[{i}]"

    # One Adam step (β₁ 0.85, β₂ 0.99) from these gradients, on both sides.
    reference = torch.optim.Adam(list(weights.values()), lr=0.01, betas=(0.85, 0.99), eps=1e-8)
    reference.step()
    saved = {name: [[w.data for w in row] for row in rows] for name, rows in model.parameters.items()}
    Adam(model.parameters_list(), lr=0.01, betas=(0.85, 0.99), eps=1e-8).step()
    for name, rows in model.parameters.items():
        for a_row, b_row in zip([[w.data for w in row] for row in rows], weights[name].tolist()):
            assert a_row == pytest.approx(b_row, rel=1e-10, abs=1e-12)
    for name, rows in model.parameters.items():  # leave the shared model as it was
        for row, values in zip(rows, saved[name]):
            for w, value in zip(row, values):
                w.data = value


def test_softmax_and_cross_entropy_are_stable_for_huge_logits(torch) -> None:
    logits = [1000.0, -1000.0, 999.0]
    ours = cross_entropy([Value(z) for z in logits], 2)
    expected = torch.nn.functional.cross_entropy(torch.tensor([logits]), torch.tensor([2]))
    assert ours.data == pytest.approx(expected.item(), rel=1e-12)
    probs = softmax([Value(z) for z in logits])
    assert [p.data for p in probs] == pytest.approx(torch.softmax(torch.tensor(logits), 0).tolist(), rel=1e-12)


def test_names_are_the_census_list_and_the_tokenizer_round_trips() -> None:
    names = load_names()
    assert len(names) == 5163 and len(set(names)) == len(names)
    assert {"emma", "james", "mary"} <= set(names)
    tokenizer = Tokenizer(names)
    assert tokenizer.vocab_size == 27  # a..z and ⟨BOS⟩
    assert tokenizer.decode(tokenizer.encode("zoe")) == "zoe"
    with pytest.raises(InvalidArgumentError, match="'!'"):
        tokenizer.encode("zoe!")


def test_training_lowers_the_loss_and_samples_are_names_of_letters() -> None:
    """A few dozen Adam steps on a handful of names: the mean loss falls below the
    uniform guess log(27) ≈ 3.30 (where an untrained model starts)."""
    names = ["anna", "emma", "ella", "anne", "hanna"]
    tokenizer = Tokenizer(names)
    model = GPT(tokenizer.vocab_size, n_embd=8, n_head=2, block_size=8, seed=0)
    losses = train(model, names, tokenizer, steps=60, lr=0.02, report_every=0)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10
    assert sum(losses[-10:]) / 10 < math.log(tokenizer.vocab_size)
    word = tokenizer.decode(model.sample(random.Random(0)))
    assert set(word) <= set("".join(names))


def test_attention_pattern_is_causal_and_each_row_sums_to_one(setup) -> None:
    _, tokenizer, model = setup
    pattern = model.attention(tokenizer.encode("emma"))
    assert len(pattern) == model.n_head
    for head in pattern:
        assert [len(row) for row in head] == [1, 2, 3, 4, 5, 6]  # position t attends to 0..t
        for row in head:
            assert sum(row) == pytest.approx(1.0, rel=1e-12)
