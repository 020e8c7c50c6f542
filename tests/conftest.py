"""Shared test switches: optional dependencies (the extras numpy, graphviz, matplotlib,
tqdm, the notebook runners; the references PyTorch and Graphviz's dot) skip with a
visible reason when absent, and fail instead when CI demands them.

CI demands them when ``CI`` is true (``CI=true``/``1``, as CI services set it) or any
``REQUIRE_*`` switch is 1 (``.ci/run`` sets REQUIRE_TORCH=1 REQUIRE_DOT=1;
REQUIRE_EXTRAS=1 asks for the extras alone). Test files import an optional module
with `require_module` (never a bare ``pytest.importorskip``); under CI a bare
``pytest.importorskip`` fails too, so a missing extra can never skip silently.
"""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def ci_demand(env_var: str = "REQUIRE_EXTRAS") -> str | None:
    """The switch that makes a missing optional dependency an error, or None (then it skips)."""
    if os.environ.get(env_var) == "1":
        return f"{env_var}=1"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        return f"CI={os.environ['CI']}"
    demanding = sorted(name for name, value in os.environ.items() if name.startswith("REQUIRE_") and value == "1")
    return f"{demanding[0]}=1" if demanding else None


def _require_or_skip(env_var: str, reason: str) -> NoReturn:
    demand = ci_demand(env_var)
    if demand is not None:
        pytest.fail(f"{reason}, but {demand} demands it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, extra: str) -> ModuleType:
    """Import an optional module, or skip the test (or the whole file, at its top) with the
    extra to install; under CI (`ci_demand`) fail instead, so nothing is skipped unseen.

    At the top of a test file: ``np = require_module("numpy", extra="fast")``.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        problem = str(exc)
    install = f"pip install 'textbook-autograd[{extra}]'"
    _require_or_skip("REQUIRE_EXTRAS", f"{name} is not importable ({problem}); {install}")


def pytest_configure(config: pytest.Config) -> None:
    """Under CI, a bare ``pytest.importorskip`` (left in a test body) fails instead of skipping."""
    demand = ci_demand()
    if demand is None:
        return
    original = pytest.importorskip

    def importorskip_or_fail(modname: str, *args: object, **kwargs: object) -> ModuleType:
        try:
            return original(modname, *args, **kwargs)  # type: ignore[arg-type]
        except pytest.skip.Exception as exc:
            problem = exc.msg
        pytest.fail(f"{modname} is not importable ({problem}), but {demand} demands it", pytrace=False)

    pytest.importorskip = importorskip_or_fail  # type: ignore[assignment]
    config.add_cleanup(lambda: setattr(pytest, "importorskip", original))


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    """PyTorch in float64, or a skip (a failure under REQUIRE_TORCH=1)."""
    try:
        module = importlib.import_module("torch")
    except ImportError:
        _require_or_skip("REQUIRE_TORCH", "PyTorch is not installed (pip install torch==2.13.0)")
    module.set_default_dtype(module.float64)
    module.set_num_threads(1)
    return module


@pytest.fixture(scope="session")
def dot_program() -> str:
    """Path of Graphviz's `dot`, or a skip (a failure under REQUIRE_DOT=1)."""
    path = shutil.which("dot")
    if path is None:
        _require_or_skip("REQUIRE_DOT", "Graphviz `dot` is not installed (apt-get install graphviz)")
    return path  # type: ignore[return-value]


@pytest.fixture
def traced_memory() -> Iterator[None]:
    """Trace Python allocations for one test, with the cyclic collector off.

    With the collector off, memory that comes back can only have been freed by
    reference counting: the graph has no reference cycles.
    """
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()
        gc.enable()


def allocated() -> int:
    """Bytes currently allocated by Python, as traced by the `traced_memory` fixture."""
    return tracemalloc.get_traced_memory()[0]


def entry(table: Any, name: str) -> Any:
    """The entry at ``name`` (e.g. "layers.0.weight[1][0]", as `Module.named_parameters` names it)
    in ``table``: a state dict, or a dict of torch tensors by key."""
    key, *index = name.replace("]", "").split("[")
    value = table[key]
    for i in index:
        value = value[int(i)]
    return value


def eager_losses_and_gradients(
    loss_of: Any, parameters: list[Any], samples: list[Any]
) -> tuple[list[float], list[float]]:
    """Each sample's output and Σ_p ∂out_p/∂w, computed one sample at a time in eager mode:
    the independent reference of the traced-replay tests (``.grad`` is left holding the sums)."""
    for p in parameters:
        p.grad = 0.0
    outputs = []
    for sample in samples:
        out = loss_of(*sample)
        out.backward()
        outputs.append(out.data)
    return outputs, [p.grad for p in parameters]
