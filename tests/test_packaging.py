"""pyproject.toml installs every package of the project: a subpackage left out of the list
(autograd.viz was) installs nothing, and `import autograd` fails outside the checkout."""

from __future__ import annotations

import ast
import re

import setuptools
from conftest import ROOT


def test_every_package_directory_is_installed() -> None:
    # tomllib is Python 3.11+ (the project supports 3.10): the one line is read by hand.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.setuptools\.packages\.find\]\n(.*?)(?=^\[)", text, re.M | re.S)
    assert section, "pyproject.toml: no [tool.setuptools.packages.find] section"
    line = re.search(r"^include = (\[.*\])$", section.group(1), re.M)
    assert line, "pyproject.toml: [tool.setuptools.packages.find] has no include list"
    include = ast.literal_eval(line.group(1))
    installed = set(setuptools.find_packages(where=str(ROOT), include=include))
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("autograd", "nn")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert {"autograd.viz", "autograd.trace"} <= on_disk  # the subpackages that exist today
    assert installed == on_disk  # each one, and no tests, benchmarks or notebooks
