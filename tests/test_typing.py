"""The package is typed (py.typed): user code calling the public API type-checks, the
types mypy sees are the real ones (never ``Any``, which accepts everything), and misuse
is rejected.

One mypy run checks two snippets: ``user_code.py`` must pass and reveal the expected
types; every line of ``misuse.py`` marked ``# error: <code>`` must be an error with that
code (and no other line may be).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_module

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = '''
from autograd import Value, check_derivative, grad, gradcheck, no_grad, sum_values
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
reveal_type(x)  # autograd.value.Value
reveal_type(z)  # autograd.value.Value
reveal_type(2 ** x)  # autograd.value.Value
reveal_type(x.data)  # float
reveal_type(x.grad)  # float
reveal_type(x.label)  # str
reveal_type(x.parents)  # tuple[autograd.value.Value, ...]
reveal_type(grad(z, [x]))  # list[autograd.value.Value | float]
reveal_type(gradcheck(lambda a: a.exp(), [1.0]))  # bool
reveal_type(out)  # autograd.value.Value | list[autograd.value.Value]
reveal_type(model.parameters())  # list[autograd.value.Value]
reveal_type(check_derivative("sigmoid", None).ok)  # bool
'''

MISUSE = '''
from autograd import Value, gradcheck
import nn

x = Value(2.0)
s: str = x.data  # error: assignment
t: str = x.grad  # error: assignment
v: Value = x.data  # error: assignment
x.backward("1")  # error: arg-type
x.sigmoid(2)  # error: call-arg
x.leaky_relu("0.1")  # error: arg-type
u: int = gradcheck(lambda a: a, [1.0]) + "a"  # error: operator
m = nn.MLP(2, [2, 1], seed=0)
p: float = m.parameters()[0]  # error: assignment
'''

REVEALED = re.compile(r'^.*user_code\.py:(\d+): note: Revealed type is "(.*)"$')
ERROR = re.compile(r"^.*misuse\.py:(\d+): error: .*\[([\w-]+)\]$")


def commented(snippet: str, code: str, marker: str) -> dict[int, str]:
    """{line number: the text after ``# <marker>``} for the lines of ``snippet`` holding ``code``."""
    return {
        number: line.split(f"# {marker}", 1)[1].strip()
        for number, line in enumerate(snippet.splitlines(), start=1)
        if code in line and f"# {marker}" in line
    }


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    require_module("mypy", extra="test")  # run as `python -m mypy`
    directory = tmp_path_factory.mktemp("typing")
    (directory / "user_code.py").write_text(USER_CODE)
    (directory / "misuse.py").write_text(MISUSE)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--show-error-codes", "--no-error-summary",
         str(directory / "user_code.py"), str(directory / "misuse.py")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return (result.stdout + result.stderr).splitlines()


@pytest.mark.slow
def test_user_code_type_checks_with_mypy_and_sees_the_real_types(mypy_output: list[str]) -> None:
    assert not [line for line in mypy_output if "user_code.py" in line and ": error:" in line], mypy_output
    revealed = {int(m.group(1)): m.group(2) for m in map(REVEALED.match, mypy_output) if m}
    expected = commented(USER_CODE, "reveal_type(", "")
    assert len(expected) == 12
    assert revealed == expected, mypy_output
    assert not any("Any" in text for text in revealed.values())


@pytest.mark.slow
def test_mypy_rejects_misuse_of_the_api(mypy_output: list[str]) -> None:
    errors = {int(m.group(1)): m.group(2) for m in map(ERROR.match, mypy_output) if m}
    expected = commented(MISUSE, "", "error:")
    assert len(expected) == 8
    assert errors == expected, mypy_output
