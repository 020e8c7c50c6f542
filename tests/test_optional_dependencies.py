"""A missing optional dependency skips the tests that need it on a developer's machine,
and fails the run under CI (CI=true, or any REQUIRE_*=1 as `.ci/run` sets).

Each test runs pytest in a subprocess with a module made unimportable: a plugin loaded
with ``-p`` puts ``None`` in ``sys.modules[name]`` before any test file is imported, so
``import name`` raises ImportError exactly as when the package is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_pytest(tmp_path: Path, blocked: str, switches: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    plugin = tmp_path / "block_optional_module.py"
    plugin.write_text(f"import sys\nsys.modules[{blocked!r}] = None  # import {blocked} now raises ImportError\n")
    # The child starts from none of the CI switches of this run, then gets `switches`.
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("REQUIRE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env.update(switches)
    command = [sys.executable, "-m", "pytest", "-p", "block_optional_module", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # each subprocess takes seconds; CI runs the slow tests too
def test_a_file_needing_a_missing_extra_is_skipped_with_the_extra_named_outside_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "graphviz", {}, "-rs", "tests/test_draw_network.py")
    output = result.stdout + result.stderr
    assert result.returncode in (0, 5), output  # 5: no test ran
    assert "SKIPPED" in output and "graphviz is not importable" in output, output
    assert "textbook-autograd[viz]" in output, output


@pytest.mark.parametrize(
    "switch",
    [
        {"CI": "true"},
        pytest.param({"REQUIRE_TORCH": "1"}, marks=pytest.mark.slow),  # what .ci/run sets
        pytest.param({"REQUIRE_EXTRAS": "1"}, marks=pytest.mark.slow),
    ],
    ids=str,
)
def test_a_file_needing_a_missing_extra_fails_the_run_under_ci(tmp_path: Path, switch: dict[str, str]) -> None:
    result = run_pytest(tmp_path, "graphviz", switch, "tests/test_draw_network.py")
    output = result.stdout + result.stderr
    assert result.returncode not in (0, 5), output
    assert "skipped" not in output.lower(), output
    name, value = next(iter(switch.items()))
    assert "graphviz is not importable" in output and f"{name}={value} demands it" in output, output


@pytest.mark.slow
def test_a_bare_importorskip_in_a_test_body_fails_under_ci(tmp_path: Path) -> None:
    """test_trainer's progress-bar test calls pytest.importorskip("tqdm") in its body."""
    test = "tests/test_trainer.py::test_progress_bar_shows_the_loss_only_on_a_terminal"
    outside = run_pytest(tmp_path, "tqdm", {}, test)
    assert outside.returncode == 0 and "1 skipped" in outside.stdout, outside.stdout + outside.stderr
    under_ci = run_pytest(tmp_path, "tqdm", {"CI": "true"}, test)
    assert under_ci.returncode == 1 and "1 failed" in under_ci.stdout, under_ci.stdout + under_ci.stderr
    assert "tqdm is not importable" in under_ci.stdout and "CI=true demands it" in under_ci.stdout
