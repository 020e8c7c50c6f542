"""A tiny character-level GPT, written with scalar Values: every number of the
transformer is one node of the graph, so `backward()` is the whole of its training.

The model reads a name one character at a time and predicts the next one:

    x    = E_tok[c] + E_pos[t]                        token and position embeddings
    x    = rmsnorm(x)
    x    = x + W_o · attention(rmsnorm(x))            4 heads, causal, with a key/value cache
    x    = x + W₂ · relu(W₁ · rmsnorm(x))             the MLP block
    p    = softmax(W_out · x)                         the next character's probabilities
    loss = mean over positions of −log p[next]        cross-entropy

with rmsnorm(x) = x / √(mean(x²) + ε), no biases, and Adam (β₁ = 0.85, β₂ = 0.99) whose
learning rate decays linearly to 0. A name is wrapped in one extra token, ⟨BOS⟩, that
marks both its start and its end: sampling stops when the model predicts it.

    python -m nn gpt --steps 500        # train on the shipped names, then sample new ones
    python -m nn gpt --engine eager     # without the traced replay (the default when numpy is installed)

Traced training (`ArrayTraining`) replays the loss traced once per name length and keeps the
weights and Adam's moments in numpy arrays between steps; the Values get them at `write_back`.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from autograd import Trace, TracedByShape, Value, indices, sum_values, trace, traced
from autograd.errors import InvalidArgumentError, InvalidTypeError

from .functional import cross_entropy, embedding, softmax

if TYPE_CHECKING:
    from .optim import Optimizer

Matrix = list[list[Value]]


def load_names() -> list[str]:
    """The 5,163 distinct first names of the 1990 US Census name lists (public domain), lower case."""
    text = resources.files("nn").joinpath("names.txt").read_text(encoding="utf-8")
    return [line for line in text.split() if line]


class Tokenizer:
    """Characters ↔ integer ids; id 0 is ⟨BOS⟩, the start and end of every name."""

    BOS = 0

    def __init__(self, words: Iterable[str]) -> None:
        self.chars = sorted(set("".join(words)))
        self.ids = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, word: str) -> list[int]:
        """⟨BOS⟩, the characters' ids, ⟨BOS⟩."""
        try:
            return [self.BOS, *[self.ids[c] for c in word], self.BOS]
        except KeyError as exc:
            raise InvalidArgumentError(f"Tokenizer.encode: {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != self.BOS)


class GPT:
    """One transformer layer on scalar Values: embeddings, attention, MLP, output head.

    ``parameters`` holds every weight matrix by name (rows × columns of Values);
    `parameters_list` flattens them in that order.
    """

    def __init__(
        self,
        vocab_size: int,
        n_embd: int = 16,
        n_head: int = 4,
        block_size: int = 16,
        seed: int | random.Random = 0,
        std: float = 0.08,
    ) -> None:
        for name, value in (("vocab_size", vocab_size), ("n_embd", n_embd), ("n_head", n_head),
                            ("block_size", block_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidTypeError(f"GPT: {name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise InvalidArgumentError(f"GPT: {name} must be >= 1, got {value}")
        if n_embd % n_head:
            raise InvalidArgumentError(f"GPT: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.vocab_size, self.n_embd, self.n_head, self.block_size = vocab_size, n_embd, n_head, block_size
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)

        def matrix(rows: int, cols: int, name: str) -> Matrix:
            return [[Value(rng.gauss(0.0, std), label=f"{name}[{i}][{j}]") for j in range(cols)] for i in range(rows)]

        d = n_embd
        self.parameters: dict[str, Matrix] = {
            "wte": matrix(vocab_size, d, "wte"),
            "wpe": matrix(block_size, d, "wpe"),
            "attn.wq": matrix(d, d, "attn.wq"),
            "attn.wk": matrix(d, d, "attn.wk"),
            "attn.wv": matrix(d, d, "attn.wv"),
            "attn.wo": matrix(d, d, "attn.wo"),
            "mlp.fc1": matrix(4 * d, d, "mlp.fc1"),
            "mlp.fc2": matrix(d, 4 * d, "mlp.fc2"),
            "lm_head": matrix(vocab_size, d, "lm_head"),
        }

    def parameters_list(self) -> list[Value]:
        return [w for rows in self.parameters.values() for row in rows for w in row]

    def step(
        self,
        token: int | Value,
        pos: int,
        keys: list[list[Value]],
        values: list[list[Value]],
        pattern: list[list[list[float]]] | None = None,
    ) -> list[Value]:
        """The logits of the character after ``token`` at position ``pos``.

        ``keys`` and ``values`` are the cache: the keys and values of the positions
        before this one; this position's are appended, so attention reads them all.
        ``pattern``, when given, receives each head's attention weights (as numbers).
        ``token`` may be a Value holding the id (a traced input): see `loss`.
        """
        p = self.parameters
        x = [a + b for a, b in zip(embedding(token, p["wte"]), p["wpe"][pos])]
        x = rmsnorm(x)
        # Attention: each head compares this position's query with every cached key.
        residual = x
        x = rmsnorm(x)
        q, k, v = linear(x, p["attn.wq"]), linear(x, p["attn.wk"]), linear(x, p["attn.wv"])
        keys.append(k)
        values.append(v)
        head_size = self.n_embd // self.n_head
        scale = 1.0 / math.sqrt(head_size)
        heads: list[Value] = []
        for h in range(self.n_head):
            part = slice(h * head_size, (h + 1) * head_size)
            query = q[part]
            scores = [dot(query, key[part]) * scale for key in keys]
            weights = softmax(scores)
            if pattern is not None:
                pattern[h].append([w.data for w in weights])
            # Output i of the head: Σ_t weight_t · value_t[i], over this head's columns of the cached values.
            heads += [dot(weights, column) for column in zip(*[value[part] for value in values])]
        x = [a + b for a, b in zip(linear(heads, p["attn.wo"]), residual)]
        # MLP block: widen to 4·n_embd, relu, back.
        residual = x
        hidden = [h.relu() for h in linear(rmsnorm(x), p["mlp.fc1"])]
        x = [a + b for a, b in zip(linear(hidden, p["mlp.fc2"]), residual)]
        return linear(x, p["lm_head"])

    def loss(self, tokens: Sequence[int | Value]) -> Value:
        """Mean cross-entropy of predicting tokens[t + 1] from tokens[: t + 1], over at most block_size positions.

        The tokens may be Values holding the ids, so the loss can be traced with the ids as
        inputs (`autograd.indices`): embedding rows and target logits are then picked by the
        select row of the table, and one trace serves every name of the same length
        (`autograd.traced` keeps one per length, see `traced_loss`).
        """
        n = min(self.block_size, len(tokens) - 1)
        if n < 1:
            raise InvalidArgumentError("GPT.loss: needs at least two tokens")
        keys: list[list[Value]] = []
        values: list[list[Value]] = []
        losses = [cross_entropy(self.step(tokens[t], t, keys, values), tokens[t + 1]) for t in range(n)]
        return sum_values(losses) * (1.0 / n)

    def attention(self, tokens: Sequence[int]) -> list[list[list[float]]]:
        """The attention weights of each head: [head][position][earlier position], for pictures."""
        from autograd import no_grad

        pattern: list[list[list[float]]] = [[] for _ in range(self.n_head)]
        keys: list[list[Value]] = []
        values: list[list[Value]] = []
        with no_grad():
            for t, token in enumerate(tokens[: self.block_size]):
                self.step(token, t, keys, values, pattern)
        return pattern

    def sample(self, rng: random.Random, temperature: float = 1.0) -> list[int]:
        """Draw one name, a character at a time, until ⟨BOS⟩ comes out or the context is full."""
        from autograd import no_grad

        keys: list[list[Value]] = []
        values: list[list[Value]] = []
        token, out = Tokenizer.BOS, []
        with no_grad():
            for pos in range(self.block_size):
                logits = self.step(token, pos, keys, values)
                probs = softmax([z * (1.0 / temperature) for z in logits])
                token = rng.choices(range(self.vocab_size), weights=[p.data for p in probs])[0]
                if token == Tokenizer.BOS:
                    break
                out.append(token)
        return out


def traced_loss(model: GPT) -> TracedByShape:
    """`GPT.loss` traced once per name length, with the token ids as index inputs (needs numpy).

    ``forward([tokens])`` (a batch of one encoded name, or several of one length) gives each
    name's loss by replay, tracing at the first name of a new length; ``backward()`` then adds
    the gradients into the parameters' ``.grad``, as ``loss.backward()`` does eagerly.
    """
    return traced(model.loss, indices=(0,))


class ArrayTraining:
    """Traced training steps of a GPT with θ, ∂loss/∂θ and the optimizer's buffers in numpy arrays.

    One step on a name replays its length's trace of `GPT.loss` with the weights θ
    (`Trace.forward`'s ``theta``), takes ∂loss/∂θ from the replay (`Trace.gradient`) and
    updates θ and the buffers with the optimizer's array step (`Optimizer.step_arrays`,
    the same formula as its `step`). No Python loop over the ~4,000 weights is left in the
    step: reading every ``w.data``, adding every ``w.grad`` and the optimizer's loop cost
    more than the replay itself.

    The arrays follow the optimizer's order of parameters. A trace reads some of them
    (``positions``, found once per length: a name of n tokens reads n - 1 rows of the
    position table); the others get the gradient 0, as the eager step gives them, so
    Adam's moments decay and a weight with m ≠ 0 still moves, exactly as `Adam.step`
    moves every parameter it holds.

    While steps run the arrays are the model's weights and the Values keep those of the
    last `write_back`: call it before anything reads the model (sampling, `GPT.attention`,
    saving, an eager loss, the optimizer's ``state``). It puts θ into every ``w.data``,
    the last gradient into ``w.grad`` (as an eager step leaves it) and the buffers into
    ``optimizer.state``; `gpt.train` calls it when it returns. `read` takes the weights
    and buffers from the Values and the optimizer again, after the user changed them.
    The step count and learning rate are the optimizer's own throughout (a scheduler
    changes ``lr`` between steps as in eager training).
    """

    def __init__(self, model: GPT, optimizer: Optimizer) -> None:
        self.model, self.optimizer = model, optimizer
        self.params = optimizer.params
        self.place = {id(p): i for i, p in enumerate(self.params)}
        self.traces: dict[int, tuple[Trace, Any]] = {}  # by number of tokens: the trace and its positions
        self.read()

    def read(self) -> None:
        """Take θ from the parameters' ``.data`` and the buffers from ``optimizer.state``."""
        np = _numpy()
        self.theta = np.array([p.data for p in self.params], dtype=float)
        self.buffers = {name: np.array(values, dtype=float) for name, values in self.optimizer.state.items()}
        self.grad: Any = None

    def trace_for(self, tokens: Sequence[int]) -> tuple[Trace, Any]:
        """The trace of `GPT.loss` at this name's length (traced now if new) and where its
        parameters are in θ: ``theta[positions]`` is its ``theta``."""
        found = self.traces.get(len(tokens))
        if found is None:
            step = trace(self.model.loss, indices(list(tokens)))
            missing = [p.label or "a parameter" for p in step.parameters if id(p) not in self.place]
            if missing:
                raise InvalidArgumentError(
                    f"ArrayTraining: the loss reads {missing[0]}, which the optimizer does not hold"
                )
            np = _numpy()
            positions = np.array([self.place[id(p)] for p in step.parameters], dtype=np.intp)
            found = self.traces[len(tokens)] = (step, positions)
        return found

    def loss(self, tokens: Sequence[int]) -> float:
        """The loss of one encoded name at the weights θ, by replay (no step)."""
        step, positions = self.trace_for(tokens)
        return float(step.forward([tokens], theta=self.theta[positions])[0])

    def step(self, tokens: Sequence[int]) -> float:
        """One training step on one encoded name: its loss by replay, ∂loss/∂θ (0 for the
        parameters the name does not read), the optimizer's array step. Returns the loss
        (before the update)."""
        np = _numpy()
        loss = self.loss(tokens)
        step, positions = self.trace_for(tokens)
        grad = np.zeros(len(self.theta))
        grad[positions] = step.gradient()
        self.grad = grad
        self.theta = self.optimizer.step_arrays(self.theta, grad, self.buffers)
        return loss

    def write_back(self) -> None:
        """Put θ, the last gradient and the buffers into the Values and ``optimizer.state``."""
        for p, w in zip(self.params, self.theta.tolist()):
            p.data = w
        if self.grad is not None:
            for p, g in zip(self.params, self.grad.tolist()):
                p.grad = g
        for name, values in self.buffers.items():
            self.optimizer.state[name] = values.tolist()


def _numpy() -> Any:
    """numpy, imported by the array steps only (importing nn never imports it)."""
    import numpy

    return numpy


def dot(a: Sequence[Value], b: Sequence[Value]) -> Value:
    """Σᵢ aᵢ·bᵢ as one sum node (of the products aᵢ·bᵢ, in order)."""
    # map(operator.mul) rather than a comprehension: a dot product per row of every
    # layer makes this the hot path of the forward pass.
    return sum_values(map(operator.mul, a, b))


def linear(x: Sequence[Value], w: Matrix) -> list[Value]:
    """W·x: one dot product per row of W (no bias)."""
    return [dot(row, x) for row in w]


def rmsnorm(x: Sequence[Value], eps: float = 1e-5) -> list[Value]:
    """x / √(mean(x²) + ε): every vector scaled to a root-mean-square of about 1."""
    mean_square = dot(x, x) * (1.0 / len(x))
    scale = (mean_square + eps) ** -0.5
    return [xi * scale for xi in x]


def train(
    model: GPT,
    words: Sequence[str],
    tokenizer: Tokenizer,
    steps: int,
    lr: float = 0.01,
    seed: int = 0,
    report_every: int = 50,
    engine: str = "eager",
) -> list[float]:
    """Adam (β₁ 0.85, β₂ 0.99) on one name per step, the learning rate decaying linearly to 0; returns the losses.

    ``engine="traced"`` computes each step's loss and gradients by replaying the loss traced
    once per name length and keeps the weights and Adam's moments in arrays (`ArrayTraining`,
    needs numpy) instead of building the graph of Values: the same numbers (to 1e-12), many
    times faster. The weights, last gradients and moments are written back to the Values and
    the optimizer when `train` returns (or raises).
    """
    from .lr_scheduler import LinearLR
    from .optim import Adam

    if engine not in ("eager", "traced"):
        raise InvalidArgumentError(f"gpt.train: engine must be 'eager' or 'traced', got {engine!r}")
    params = model.parameters_list()
    optimizer = Adam(params, lr=lr, betas=(0.85, 0.99), eps=1e-8)
    schedule = LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=steps)
    arrays = ArrayTraining(model, optimizer) if engine == "traced" else None
    order = list(words)
    random.Random(seed).shuffle(order)
    losses = []
    try:
        for step in range(steps):
            tokens = tokenizer.encode(order[step % len(order)])
            if arrays is None:
                optimizer.zero_grad()
                loss = model.loss(tokens)
                loss.backward()
                losses.append(loss.data)
                optimizer.step()
            else:
                losses.append(arrays.step(tokens))
            schedule.step()
            if report_every and (step + 1) % report_every == 0:
                recent = losses[-report_every:]
                print(f"step {step + 1:5d} / {steps}: loss {sum(recent) / len(recent):.4f}", flush=True)
    finally:
        if arrays is not None:
            arrays.write_back()
    return losses


def run(steps: int = 500, lr: float = 0.01, samples: int = 20, seed: int = 1, engine: str | None = None) -> int:
    """Train the tiny GPT on the shipped names, print the loss as it goes, then sample new names.

    ``engine``: "eager", "traced", or None for traced when numpy is installed, else eager.
    """
    import importlib.util

    if engine is None:
        engine = "traced" if importlib.util.find_spec("numpy") is not None else "eager"
    names = load_names()
    tokenizer = Tokenizer(names)
    model = GPT(tokenizer.vocab_size, seed=seed)
    print(f"tiny GPT: {len(model.parameters_list())} parameters, {len(names)} names, {steps} steps", flush=True)
    how = "eager"
    if engine == "traced":
        how = "traced (the loss traced once per name length, replayed with numpy, the weights in arrays)"
    print(f"engine: {how}", flush=True)
    train(model, names, tokenizer, steps=steps, lr=lr, seed=seed, report_every=max(1, min(50, steps // 10)),
          engine=engine)  # fmt: skip
    rng = random.Random(seed)
    print("samples:", ", ".join(tokenizer.decode(model.sample(rng)) or "(empty)" for _ in range(samples)))
    return 0
