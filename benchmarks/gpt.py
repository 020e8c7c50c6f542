"""One training step of the tiny GPT (issues 13 and 14): forward over one name, the mean
cross-entropy, backward, one Adam update (β₁ 0.85, β₂ 0.99). 1 layer, 16-dim embeddings,
4 heads, context 16, 27 tokens, float64, the same weights and names for every contestant:

- reference: a minimal scalar engine written here in the style the model was first
  published with: a `Value` with ``__slots__`` for data, grad, children and the local
  derivatives, computed during the forward pass; a recursive topological sort; sums as
  chains of ``+``;
- eager: this project's `nn.gpt.GPT` on `autograd.Value`;
- traced: the same model's loss traced once per name length (the token ids are index
  inputs, `autograd.indices`), replayed with numpy at batch size 1 (a name is one sample),
  the weights, gradients and Adam's moments kept in arrays across steps and updated by
  the same `nn.optim.Adam` formula on arrays (`nn.gpt.ArrayTraining`, as `python -m nn gpt
  --engine traced` trains).

The losses of the three agree to 1e-12 on every name (checked before timing); that check
also builds the traced contestant's trace of each length, so tracing is not in the timed
steps: its time per length is reported on its own (a new length pays it once, at its
first step). Each turn is one step on every name, contestants alternate turn by turn, and
the ratios are the median (and min–max) of the per-round ratios.

    python benchmarks/gpt.py
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import fmt_ms, fmt_ratio, round_seconds, table  # noqa: E402
from nn.gpt import GPT, ArrayTraining, Tokenizer, load_names  # noqa: E402
from nn.optim import Adam  # noqa: E402

WORDS = ["emma", "olivia", "christopher", "al", "maximilian", "zoe"]
LEARNING_RATE = 0.01
# The reference engine's recursive topological sort goes as deep as the graph (a few
# thousand frames for one name: sums are chains of +).
RECURSION_LIMIT = 20_000


class RefValue:
    """The reference engine's node: its number, its gradient, its inputs and ∂self/∂input."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data: float, children: tuple[Any, ...] = (), local_grads: tuple[float, ...] = ()) -> None:
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other: Any) -> RefValue:
        other = other if isinstance(other, RefValue) else RefValue(other)
        return RefValue(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other: Any) -> RefValue:
        other = other if isinstance(other, RefValue) else RefValue(other)
        return RefValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other: float) -> RefValue:
        return RefValue(self.data**other, (self,), (other * self.data ** (other - 1),))

    def log(self) -> RefValue:
        return RefValue(math.log(self.data), (self,), (1 / self.data,))

    def exp(self) -> RefValue:
        return RefValue(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self) -> RefValue:
        return RefValue(max(0.0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self) -> RefValue:
        return self * -1

    def __radd__(self, other: Any) -> RefValue:
        return self + other

    def __sub__(self, other: Any) -> RefValue:
        return self + (-other)

    def __rmul__(self, other: Any) -> RefValue:
        return self * other

    def __truediv__(self, other: Any) -> RefValue:
        return self * other**-1

    def backward(self) -> None:
        order: list[RefValue] = []
        visited: set[int] = set()

        def build(v: RefValue) -> None:
            if id(v) not in visited:
                visited.add(id(v))
                for child in v._children:
                    build(child)
                order.append(v)

        build(self)
        self.grad = 1.0
        for v in reversed(order):
            for child, local in zip(v._children, v._local_grads):
                child.grad += local * v.grad


def ref_linear(x: list[RefValue], w: list[list[RefValue]]) -> list[RefValue]:
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]  # type: ignore[misc]


def ref_softmax(logits: list[RefValue]) -> list[RefValue]:
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def ref_rmsnorm(x: list[RefValue]) -> list[RefValue]:
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def ref_loss(p: dict[str, list[list[RefValue]]], tokens: list[int], n_head: int, block_size: int) -> RefValue:
    """The same model as nn.gpt.GPT.loss, written for the reference engine."""
    n = min(block_size, len(tokens) - 1)
    keys: list[list[RefValue]] = []
    values: list[list[RefValue]] = []
    losses = []
    for pos in range(n):
        x = [a + b for a, b in zip(p["wte"][tokens[pos]], p["wpe"][pos])]
        x = ref_rmsnorm(x)
        residual = x
        x = ref_rmsnorm(x)
        q, k, v = ref_linear(x, p["attn.wq"]), ref_linear(x, p["attn.wk"]), ref_linear(x, p["attn.wv"])
        keys.append(k)
        values.append(v)
        hs = len(q) // n_head
        heads: list[RefValue] = []
        for h in range(n_head):
            part = slice(h * hs, (h + 1) * hs)
            scores = [sum(qi * ki for qi, ki in zip(q[part], key[part])) * (1.0 / math.sqrt(hs)) for key in keys]
            weights = ref_softmax(scores)  # type: ignore[arg-type]
            heads += [sum(w * value[part][i] for w, value in zip(weights, values)) for i in range(hs)]  # type: ignore[misc]
        x = [a + b for a, b in zip(ref_linear(heads, p["attn.wo"]), residual)]
        residual = x
        hidden = [h.relu() for h in ref_linear(ref_rmsnorm(x), p["mlp.fc1"])]
        x = [a + b for a, b in zip(ref_linear(hidden, p["mlp.fc2"]), residual)]
        probs = ref_softmax(ref_linear(x, p["lm_head"]))
        losses.append(-probs[tokens[pos + 1]].log())
    return sum(losses) * (1.0 / n)  # type: ignore[return-value]


class RefAdam:
    """Adam as in the reference: m, v per parameter, bias-corrected."""

    def __init__(self, params: list[RefValue], lr: float, betas: tuple[float, float], eps: float) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [0.0] * len(params)
        self.v = [0.0] * len(params)
        self.t = 0

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            self.m[i] = b1 * self.m[i] + (1 - b1) * p.grad
            self.v[i] = b2 * self.v[i] + (1 - b2) * p.grad**2
            m_hat = self.m[i] / (1 - b1**self.t)
            v_hat = self.v[i] / (1 - b2**self.t)
            p.data -= self.lr * m_hat / (v_hat**0.5 + self.eps)
            p.grad = 0.0


class Contestants:
    """The three steppers on the same starting weights, and the tokenised words they step through.

    ``steps[name]()`` runs one training step on every word in turn and returns the losses;
    ``trace_seconds[length]`` is the time the traced contestant took to trace (and replay
    once) its loss at each name length, measured while checking the losses. ``models`` and
    ``optimizers`` hold the eager and the traced contestant's; the traced one's weights live
    in the arrays of ``traced`` (an `ArrayTraining`) until ``traced.write_back()``.
    """

    def __init__(self) -> None:
        tokenizer = Tokenizer(load_names())
        self.words = [tokenizer.encode(w) for w in WORDS]
        eager_model = GPT(tokenizer.vocab_size, n_embd=16, n_head=4, block_size=16, seed=0)
        traced_model = GPT(tokenizer.vocab_size, n_embd=16, n_head=4, block_size=16, seed=0)
        ref_params = {
            name: [[RefValue(w.data) for w in row] for row in rows] for name, rows in eager_model.parameters.items()
        }
        eager_optimizer = Adam(eager_model.parameters_list(), lr=LEARNING_RATE, betas=(0.85, 0.99), eps=1e-8)
        traced_optimizer = Adam(traced_model.parameters_list(), lr=LEARNING_RATE, betas=(0.85, 0.99), eps=1e-8)
        traced = ArrayTraining(traced_model, traced_optimizer)
        self.trace_seconds: dict[int, float] = {}
        for tokens in self.words:  # same weights, same losses, before anything is timed
            start = time.perf_counter()
            replayed = traced.loss(tokens)
            self.trace_seconds[len(tokens)] = time.perf_counter() - start
            eager, reference = eager_model.loss(tokens).data, ref_loss(ref_params, tokens, 4, 16).data
            for name, loss in (("eager", eager), ("traced", replayed)):
                if abs(loss - reference) > 1e-12 * max(1.0, abs(reference)):
                    raise AssertionError(f"losses differ: {name} {loss!r} vs reference {reference!r}")

        ref_flat = [w for rows in ref_params.values() for row in rows for w in row]
        ref_optimizer = RefAdam(ref_flat, LEARNING_RATE, (0.85, 0.99), 1e-8)

        def reference_step(tokens: list[int]) -> float:
            loss = ref_loss(ref_params, tokens, 4, 16)
            loss.backward()
            ref_optimizer.step()
            return loss.data

        def eager_step(tokens: list[int]) -> float:
            loss = eager_model.loss(tokens)
            eager_optimizer.zero_grad()
            loss.backward()
            eager_optimizer.step()
            return loss.data

        def every_word(step: Callable[[list[int]], float]) -> Callable[[], list[float]]:
            return lambda: [step(tokens) for tokens in self.words]

        self.steps = {
            "reference": every_word(reference_step),
            "eager": every_word(eager_step),
            "traced": every_word(traced.step),
        }
        self.models = {"eager": eager_model, "traced": traced_model}
        self.optimizers = {"eager": eager_optimizer, "traced": traced_optimizer}
        self.traced = traced


def spread(ratios: list[float]) -> dict[str, float]:
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main(repeats: int = 7) -> dict[str, Any]:
    sys.setrecursionlimit(RECURSION_LIMIT)
    runs = Contestants()
    turns = round_seconds({name: (step, 1) for name, step in runs.steps.items()}, repeats)
    per_step = {name: [t / len(runs.words) for t in times] for name, times in turns.items()}
    reference = per_step["reference"]
    result = {
        "words": WORDS,
        "rounds": repeats,
        **{f"{name}_s": statistics.median(times) for name, times in per_step.items()},
        "eager_speedup_vs_reference": spread([r / t for r, t in zip(reference, per_step["eager"])]),
        "traced_speedup_vs_reference": spread([r / t for r, t in zip(reference, per_step["traced"])]),
        "trace_build_s_by_length": runs.trace_seconds,
    }

    def speedup(r: dict[str, float]) -> str:
        return f"{fmt_ratio(r['median'])} ({fmt_ratio(r['min'])}–{fmt_ratio(r['max'])})"

    builds = sorted(runs.trace_seconds.values())
    print(table(
        ["workload", "reference scalar engine", "this engine (eager)", "this engine (traced)",
         "reference / eager", "reference / traced"],
        [["tiny GPT, one Adam step on one name", fmt_ms(result["reference_s"]), fmt_ms(result["eager_s"]),
          fmt_ms(result["traced_s"]), speedup(result["eager_speedup_vs_reference"]),
          speedup(result["traced_speedup_vs_reference"])]],
    ))  # fmt: skip
    print(
        f"\nMedians over {repeats} rounds (each turn: one step on each of {len(WORDS)} names); ratios: median of the"
        " per-round ratios (min–max). Tracing is not in the traced steps: the first step at a new name length"
        f" traces it once, {fmt_ms(statistics.median(builds))} ({fmt_ms(builds[0])}–{fmt_ms(builds[-1])}) for the"
        f" {len(builds)} lengths here (trace and one replay)."
    )
    return result


if __name__ == "__main__":
    main()
