"""The package is typed (py.typed): user code calling the public API type-checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = '''
from autograd import Value, grad, gradcheck, no_grad, sum_values
import nn

x = Value(2.0, label="x")
y = (x * x + 3).sigmoid() + x.relu() + x.exp() * abs(x) - (-x) + 2 ** x + x ** 0.5
z = 1 / x + sum_values([x, 1.0, y]).tanh().log().sqrt().softplus().sin().cos().leaky_relu(0.1)
z.backward()
first: float = x.grad
(d,) = grad(x ** 3, [x], create_graph=True)
ok: bool = gradcheck(lambda a, b: a * b, [1.0, 2.0])
with no_grad():
    w = x * 2
model = nn.MLP(2, [2, 1], seed=0)
out = model([0.5, 0.1])
'''


@pytest.mark.slow
def test_user_code_type_checks_with_mypy(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists():
        pytest.skip("mypy is not installed (it comes with the test extra)")
    snippet = tmp_path / "user_code.py"
    snippet.write_text(USER_CODE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(snippet)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
