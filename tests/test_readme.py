"""The README's examples are checked, not only run, so the documentation cannot rot.

The convention (keep it when rewriting the README; a fence it does not name fails):

- Every fenced block has a language, and the language says how it is checked:
  ``python``, ``bash`` or ``console``. Any other fence (or none) fails
  `test_every_readme_block_is_checked`: a block nobody checks is not allowed.
- ```python block that starts with ``>>>``: a doctest. Each ``>>>`` line (with its
  ``...`` continuation lines) runs, and the lines after it up to the next ``>>>`` are its
  output, compared exactly; ``...`` inside an output line matches any text (doctest's
  ELLIPSIS). No output lines means the statement must print nothing. An error is shown
  as Python prints it (``Traceback (most recent call last):`` then the exception line)
  or by its exception line alone (``autograd.errors.DomainError: log(-1.0): ...``); in
  both forms the exception's type and message are compared word for word. Every line of
  the block must belong to an example (no stray line a doctest would skip silently).
- ```python block without ``>>>``: run with exec; it must not raise. It shows no
  results (an error or value written in a comment, e.g. ``# NonFiniteError: ...``, is
  refused: a block that shows an output must be a doctest).
- ```bash block: commands only, no output. Each command (lines joined at a trailing
  backslash, split at ``&&``, comments dropped) must be one the checker knows:
  ``python -m nn ...`` (parsed by the CLI's own parser, presets applied: every option
  must exist and be valid), ``python <script>`` / ``bash <script>`` (the script must exist),
  ``python -m pytest ...``, ``python -m venv``, ``pip install ...`` (each extra in
  ``'.[a,b]'`` must be declared in pyproject.toml), ``jupyter lab|notebook <path>``
  (``jupyter``, like ``pip``, may be spelled ``.venv/bin/jupyter``)
  (the path must exist). ``python`` may be spelled ``python3`` or ``.venv/bin/python``.
- ```console block: ``$ command`` lines, each followed by its output. The command runs
  in a fresh temporary directory with this repository on PYTHONPATH, and its output
  (stdout and stderr) must match, ``...`` matching any text.
- Every block stands alone: a fresh namespace and a fresh temporary working directory
  (examples may write files). A block that imports torch takes the `torch` fixture, one
  that renders with Graphviz the `dot_program` fixture (skipped when missing, failing
  under CI); a block that trains (``.fit(``) is marked slow.
"""

from __future__ import annotations

import doctest
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # line of the README where the block's code starts

    @property
    def id(self) -> str:
        first = next((line for line in self.text.splitlines() if line.strip()), "")
        return f"L{self.line}-{self.language}-{first[:50]}"


def fenced_blocks(markdown: str) -> list[Block]:
    """Every fenced block, with its language ("" when the fence names none)."""
    blocks, lines = [], markdown.splitlines()
    opening: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.lstrip().startswith("```"):
            if opening is not None:
                body.append(line)
            continue
        if opening is None:
            opening = (line.lstrip()[3:].strip(), number + 1)
            body = []
        else:
            blocks.append(Block(opening[0], "\n".join(body) + "\n", opening[1]))
            opening = None
    if opening is not None:
        blocks.append(Block("unclosed fence", "\n".join(body), opening[1]))
    return blocks


BLOCKS = fenced_blocks(README.read_text(encoding="utf-8"))


# -- python ----------------------------------------------------------------------------

# The exception line shown without its traceback header: "autograd.errors.DomainError: ...".
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning)(?::|$)")


def is_doctest(block: Block) -> bool:
    return any(line.lstrip().startswith(">>>") for line in block.text.splitlines())


def run_doctest(block: Block) -> None:
    """Run a ``>>>`` block as a doctest; fail with doctest's report on any difference."""
    lines = [line for line in block.text.splitlines() if line.strip()]
    if not lines[0].startswith(">>>"):
        pytest.fail(f"README line {block.line}: a doctest block must start with '>>>', not {lines[0]!r}")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, {"__name__": "readme_example"}, block.id, str(README), block.line - 1)
    covered = sum(1 for line in lines if re.fullmatch(r"\s*>>>\s*(#.*)?", line))  # doctest skips comment lines
    for example in test.examples:
        if example.exc_msg is None and EXCEPTION_LINE.match(example.want):
            example.exc_msg = example.want  # the short form: the exception line alone
        covered += len(example.source.splitlines()) + len(example.want.splitlines())
    if covered != len(lines):
        pytest.fail(
            f"README line {block.line}: {len(lines) - covered} line(s) of this doctest belong to no example "
            "(a blank line ends an output; code after it is skipped by doctest)"
        )
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.append)
    if result.failed:
        pytest.fail("README example differs from what it shows:\n" + "".join(report), pytrace=False)


SHOWN_IN_A_COMMENT = re.compile(r"#\s*(?:[A-Za-z_]\w*\.)*[A-Z]\w*Error:")


def run_python(block: Block) -> None:
    if SHOWN_IN_A_COMMENT.search(block.text):
        pytest.fail(f"README line {block.line}: an error shown in a comment is not checked; write a doctest")
    exec(compile(block.text, f"{README}:{block.line}", "exec"), {"__name__": "readme_example"})


# -- bash ------------------------------------------------------------------------------

PYTHON = re.compile(r"^(?:\S*/)?python3?$")


def commands(text: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, split at &&, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                if command:
                    found.append(command)
                command = []
            else:
                command.append(word)
    return found


def declared_extras() -> set[str]:
    """The names of ``[project.optional-dependencies]`` (read by hand: tomllib needs Python 3.11)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, flags=re.M))


def check_nn_command(arguments: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse ``python -m nn <arguments>`` with the CLI's own parser and presets; train nothing."""
    from nn import cli

    monkeypatch.setattr(cli, "train", lambda args: 0)
    try:
        code = cli.main(arguments)
    except SystemExit as exc:  # argparse: 2 for a bad option, 0 for --help
        code = exc.code
    assert code in (0, None), f"python -m nn {shlex.join(arguments)}: refused by the CLI (exit {code})"


def check_command(words: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    program, *arguments = words
    where = f"README command {shlex.join(words)!r}"
    if PYTHON.match(program) and arguments[:2] == ["-m", "nn"]:
        check_nn_command(arguments[2:], monkeypatch)
    elif PYTHON.match(program) and arguments[:1] == ["-m"] and arguments[1:2] in (["pytest"], ["venv"]):
        pass
    elif PYTHON.match(program) or program == "bash":
        assert arguments and (ROOT / arguments[0]).is_file(), f"{where}: no script {arguments[:1]} in the repository"
    elif re.match(r"^(?:\S*/)?pip3?$", program) and arguments[:1] == ["install"]:
        for extras in re.findall(r"^\.\[(.*)\]$", " ".join(a for a in arguments if a.startswith(".["))):
            unknown = set(extras.split(",")) - declared_extras()
            assert not unknown, f"{where}: extras {sorted(unknown)} are not in pyproject.toml"
    elif re.match(r"^(?:\S*/)?jupyter$", program) and arguments[:1] in (["lab"], ["notebook"]):
        assert all((ROOT / a).exists() for a in arguments[1:] if not a.startswith("-")), f"{where}: no such path"
    else:
        pytest.fail(f"{where}: the README checker does not know this command; add it to check_command")


def run_bash(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    found = commands(block.text)
    assert found, f"README line {block.line}: an empty bash block"
    for words in found:
        check_command(words, monkeypatch)


# -- console ---------------------------------------------------------------------------


def run_console(block: Block, tmp_path: Path) -> None:
    """``$ command`` lines run in ``tmp_path``; the lines after each are its expected output."""
    sessions: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        elif sessions:
            sessions[-1][1].append(line)
        elif line.strip():
            pytest.fail(f"README line {block.line}: a console block must start with '$ command'")
    checker = doctest.OutputChecker()
    env = {"PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    for command, shown in sessions:
        result = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        want = "\n".join(shown).strip() + "\n"
        got = (result.stdout + result.stderr).strip() + "\n"
        if not checker.check_output(want, got, doctest.ELLIPSIS):
            pytest.fail(f"README line {block.line}: $ {command}\nshown:\n{want}got:\n{got}", pytrace=False)


# -- the tests ---------------------------------------------------------------------------


def test_the_readme_has_examples() -> None:
    python = [b for b in BLOCKS if b.language == "python"]
    assert len(python) >= 8 and sum(map(is_doctest, python)) >= 6


def needs_marks(block: Block) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if ".fit(" in block.text else []


@pytest.mark.parametrize("block", [pytest.param(b, marks=needs_marks(b), id=b.id) for b in BLOCKS])
def test_every_readme_block_is_checked(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if "import torch" in block.text or "import nn, torch" in block.text:
        request.getfixturevalue("torch")
    if ".render(" in block.text:
        request.getfixturevalue("dot_program")
    monkeypatch.chdir(tmp_path)  # examples may write files (models, drawings)
    if block.language == "python":
        run_doctest(block) if is_doctest(block) else run_python(block)
    elif block.language == "bash":
        run_bash(block, monkeypatch)
    elif block.language == "console":
        run_console(block, tmp_path)
    else:
        pytest.fail(
            f"README line {block.line}: a ```{block.language} block is checked by nothing; "
            "use python (doctest or exec), bash or console (see tests/test_readme.py)"
        )


# -- the checker itself can fail ---------------------------------------------------------


def block(text: str, language: str = "python") -> Block:
    return Block(language, text, 1)


def test_a_wrong_output_fails_the_doctest() -> None:
    with pytest.raises(pytest.fail.Exception, match="Expected:\n    3\nGot:\n    2"):
        run_doctest(block(">>> 1 + 1\n3\n"))


def test_an_output_the_readme_does_not_show_fails_the_doctest() -> None:
    with pytest.raises(pytest.fail.Exception, match="Expected nothing"):
        run_doctest(block(">>> print('surprise')\n"))


def test_an_error_message_is_compared_word_for_word() -> None:
    run_doctest(block(">>> 1 / 0\nZeroDivisionError: division by zero\n"))
    run_doctest(block(">>> 1 / 0\nTraceback (most recent call last):\nZeroDivisionError: division by zero\n"))
    with pytest.raises(pytest.fail.Exception, match="Expected:\n    ZeroDivisionError: division by 0"):
        run_doctest(block(">>> 1 / 0\nZeroDivisionError: division by 0\n"))
    with pytest.raises(pytest.fail.Exception, match="ZeroDivisionError"):
        run_doctest(block(">>> 1 / 1\nZeroDivisionError: division by zero\n"))


def test_an_ellipsis_in_an_output_matches_any_text() -> None:
    run_doctest(block(">>> {'loss': 0.25, 'accuracy': 1.0}\n{'loss': ..., 'accuracy': ...}\n"))
    with pytest.raises(pytest.fail.Exception):
        run_doctest(block(">>> {'loss': 0.25}\n{'loss': ..., 'accuracy': ...}\n"))


def test_code_a_doctest_would_skip_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="belong to no example"):
        run_doctest(block(">>> x = 1\n\nassert x == 2\n"))


def test_an_error_shown_in_a_comment_of_a_plain_block_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="write a doctest"):
        run_python(block("x = 1\n# NonFiniteError: anomaly in backward\n"))


def test_a_bash_command_with_a_bad_option_or_an_unknown_extra_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    good = "python -m nn train --dataset moons --hidden 16 16 \\\n  --epochs 50  # a comment\n"
    run_bash(block(good, "bash"), monkeypatch)
    with pytest.raises(AssertionError, match="refused by the CLI"):
        run_bash(block("python -m nn train --no-such-option\n", "bash"), monkeypatch)
    with pytest.raises(AssertionError, match=r"extras \['gpu'\]"):
        run_bash(block("pip install -e '.[viz,gpu]'\n", "bash"), monkeypatch)
    with pytest.raises(AssertionError, match="no script"):
        run_bash(block("python benchmarks/no_such_script.py\n", "bash"), monkeypatch)
    with pytest.raises(pytest.fail.Exception, match="does not know this command"):
        run_bash(block("curl https://example.com | sh\n", "bash"), monkeypatch)


def test_a_console_block_checks_the_output_of_its_commands(tmp_path: Path) -> None:
    run_console(block("$ echo hello\nhello\n", "console"), tmp_path)
    with pytest.raises(pytest.fail.Exception, match="shown:\nbye\ngot:\nhello"):
        run_console(block("$ echo hello\nbye\n", "console"), tmp_path)


def test_an_unknown_or_missing_fence_language_is_refused() -> None:
    blocks = fenced_blocks("text\n```\nplain\n```\n```text\nx\n```\n```python\nopen\n")
    assert [b.language for b in blocks] == ["", "text", "unclosed fence"]
    assert not {b.language for b in BLOCKS} - {"python", "bash", "console"}


def test_every_picture_and_link_the_readme_shows_exists() -> None:
    """The README's images (made by notebooks/make_figures.py) and its relative links point at files."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    local = [t for t in targets if "://" not in t]
    assert any(t.endswith(".png") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == [], f"README links to files that do not exist: {missing}"
