"""Shared test switches: optional references (PyTorch, Graphviz's dot) skip with a
visible reason when absent, and fail instead when CI demands them
(REQUIRE_TORCH=1, REQUIRE_DOT=1)."""

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

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _require_or_skip(env_var: str, reason: str) -> None:
    if os.environ.get(env_var) == "1":
        pytest.fail(f"{reason}, but {env_var}=1 demands it")
    pytest.skip(reason)


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
