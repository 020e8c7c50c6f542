"""Saving, loading, pickling and copying: nothing a user saved is lost or corrupted.

`MLP.save` writes through symlinks to their target (atomically, beside the
target), refuses what is not a regular file or a new name, and never leaves a
half-written or non-finite file; models pickle; graphs of any depth deep-copy.

Every special file is made in a temporary folder (FIFOs with os.mkfifo, a Unix
socket with bind); a device node needs root, so the device refusal is checked
through the decision function on the mode of ``os.stat("/dev/null")`` (read only)
and on a block-device mode built from the `stat` constants.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

import nn
from autograd import Value, grad
from autograd.errors import ModelFileError, ModelFileNotFoundError, NonFiniteError, SavePathError
from nn.module import refuse_unless_regular_file


def saved_state(path):
    return json.loads(path.read_text())["state"]


def model(seed=0):
    return nn.MLP(2, [2, 1], seed=seed)


# -- item 11: symlinks -------------------------------------------------------------
def test_saving_through_a_symlink_replaces_the_file_it_points_to_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.json"
    model(seed=1).save(target)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    model(seed=2).save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert saved_state(target) == model(seed=2).state_dict()


def test_a_chain_of_symlinks_is_followed_to_the_end(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    (tmp_path / "b").symlink_to(target)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    model().save(tmp_path / "a")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert saved_state(target) == model().state_dict()


def test_a_dangling_symlink_creates_its_target_as_open_for_writing_would(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    model().save(link)
    assert link.is_symlink() and saved_state(tmp_path / "new.json") == model().state_dict()


def test_the_temporary_file_is_made_beside_the_target_not_beside_the_link(tmp_path, monkeypatch):
    """A rename is atomic only within one file system: the temporary file must sit in the target's folder."""
    (tmp_path / "links").mkdir()
    (tmp_path / "files").mkdir()
    target = tmp_path / "files" / "m.json"
    (tmp_path / "links" / "m.json").symlink_to(target)
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renames.append((src, dst)), real_replace(src, dst)))
    model().save(tmp_path / "links" / "m.json")
    [(source, destination)] = renames
    assert os.path.dirname(source) == str(tmp_path / "files") and str(destination) == str(target)


def test_a_symlink_loop_is_a_save_path_error(tmp_path):
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    with pytest.raises(SavePathError, match=r"loop.json: cannot save here: Too many levels of symbolic links"):
        model().save(loop)
    assert loop.is_symlink() and sorted(os.listdir(tmp_path)) == ["loop.json"]


# -- item 11: what is not a regular file is refused ---------------------------------------
def test_a_fifo_is_refused_and_left_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(SavePathError, match=r"pipe: is a FIFO \(named pipe\), not a regular file; refusing"):
        model().save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_symlink_to_a_fifo_is_refused_naming_both(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    with pytest.raises(SavePathError, match=rf"link \(-> {tmp_path / 'pipe'}\): is a FIFO"):
        model().save(tmp_path / "link")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode) and (tmp_path / "link").is_symlink()


def test_a_unix_socket_is_refused_and_left_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative name: socket paths are limited to about 100 bytes
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("sock")
        with pytest.raises(SavePathError, match=r"sock: is a socket, not a regular file; refusing to replace it"):
            model().save("sock")
        assert stat.S_ISSOCK(os.lstat("sock").st_mode)


def test_a_device_is_refused_by_the_decision_function():
    """Only the mode of /dev/null is read (os.stat); nothing is ever written there."""
    with pytest.raises(SavePathError, match=r"/dev/null: is a character device, not a regular file"):
        refuse_unless_regular_file("/dev/null", os.stat("/dev/null").st_mode)
    with pytest.raises(SavePathError, match=r"disk: is a block device"):
        refuse_unless_regular_file("disk", stat.S_IFBLK | 0o660)
    refuse_unless_regular_file("m.json", stat.S_IFREG | 0o644)  # a regular file passes


def test_a_directory_is_refused_with_a_hint(tmp_path):
    with pytest.raises(SavePathError, match=rf"is a directory; give a file name inside it, e.g. {tmp_path}/model.json"):
        model().save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_the_current_folder_and_the_empty_path_are_named_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SavePathError, match=r"^\.: is a directory"):
        model().save(".")
    with pytest.raises(SavePathError, match="cannot save to an empty path"):
        model().save("")
    assert os.listdir(tmp_path) == []


def test_a_save_path_error_is_an_os_error():
    """The command line (and any caller) handles it with every other failure to write a file."""
    assert issubclass(SavePathError, OSError)


# -- item 11: a failed save loses nothing ------------------------------------------------
@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_save_that_fails_part_way_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, step):
    path = tmp_path / "m.json"
    model(seed=1).save(path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, step, crash)
    with pytest.raises(OSError, match="No space left on device"):
        model(seed=2).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.json"]


def test_a_failed_save_through_a_symlink_keeps_target_and_link(tmp_path, monkeypatch):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    model(seed=1).save(target)
    link.symlink_to(target)
    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        model(seed=2).save(link)
    assert target.read_bytes() == before and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_model_with_a_non_finite_parameter_is_not_saved(tmp_path, bad):
    path = tmp_path / "m.json"
    model(seed=1).save(path)
    before = path.read_bytes()
    diverged = model(seed=2)
    diverged.layers[1].neurons[0].w[1].data = bad
    with pytest.raises(NonFiniteError, match=rf"MLP.save: parameter L2.N0.w2 is {bad}; a diverged model"):
        diverged.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.json"]


def test_non_finite_json_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(NonFiniteError, match=r"history.json: not written: it would hold NaN or infinity"):
        nn.module.write_json_atomically(tmp_path / "history.json", {"loss": [0.5, math.inf]})
    assert os.listdir(tmp_path) == []


def test_replacing_a_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.json"
    model(seed=1).save(path)
    path.chmod(0o600)
    model(seed=2).save(path)
    assert path.stat().st_mode & 0o777 == 0o600 and saved_state(path) == model(seed=2).state_dict()


# -- item 29: loading a missing file ----------------------------------------------------
def test_loading_a_missing_file_is_a_file_not_found_error_and_a_model_file_error(tmp_path):
    path = tmp_path / "absent.json"
    for kind in (FileNotFoundError, ModelFileError, ModelFileNotFoundError):
        with pytest.raises(kind, match=r"absent.json: cannot read: No such file or directory"):
            nn.MLP.load(path)


def test_a_file_that_exists_but_is_malformed_is_not_a_file_not_found_error(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{")
    with pytest.raises(ModelFileError) as info:
        nn.MLP.load(path)
    assert not isinstance(info.value, FileNotFoundError)


# -- item 29: zero_grad on every level ----------------------------------------------------
@pytest.mark.parametrize("part", ["neuron", "layer"])
def test_neurons_and_layers_reset_their_gradients(part):
    mlp = model()
    module = mlp.layers[0].neurons[1] if part == "neuron" else mlp.layers[0]
    for p in mlp.parameters():
        p.grad = 2.5
    module.zero_grad()
    assert all(p.grad == 0.0 for p in module.parameters())
    others = [p for p in mlp.parameters() if all(p is not q for q in module.parameters())]
    assert others and all(p.grad == 2.5 for p in others)


# -- item 13: pickle ------------------------------------------------------------------
@pytest.mark.parametrize("activation", sorted(nn.module.ACTIVATIONS))
def test_a_pickled_model_has_the_same_config_parameters_and_predictions(activation):
    original = nn.MLP(2, [3, 2], activation=activation, output_activation="linear", seed=5)
    twin = pickle.loads(pickle.dumps(original))
    assert twin.config() == original.config() and twin.state_dict() == original.state_dict()
    assert [p.label for p in twin.parameters()] == [p.label for p in original.parameters()]
    for x in ([0.3, -0.2], [-1.5, 2.0]):
        assert [o.data for o in twin(x)] == [o.data for o in original(x)]
    assert all(p is not q for p, q in zip(twin.parameters(), original.parameters()))


def test_a_pickled_model_trains_on_independently():
    original = model(seed=3)
    twin = pickle.loads(pickle.dumps(original))
    loss = (twin([1.0, 0.0]) - 1.0) ** 2
    loss.backward()
    assert any(p.grad != 0.0 for p in twin.parameters())
    assert all(p.grad == 0.0 for p in original.parameters())


def test_neurons_and_layers_pickle_too():
    layer = nn.Layer(2, 2, activation="linear", seed=0)
    neuron = nn.Neuron(2, activation="tanh", seed=0)
    for part in (layer, neuron):
        twin = pickle.loads(pickle.dumps(part))
        assert [p.data for p in twin.parameters()] == [p.data for p in part.parameters()]
    # tanh(w1·0.5 + w2·(-1) + b), written out
    w1, w2, b = (p.data for p in neuron.parameters())
    assert pickle.loads(pickle.dumps(neuron))([0.5, -1.0]).data == math.tanh(w1 * 0.5 + w2 * -1.0 + b)


# -- item 13: deepcopy of deep graphs ------------------------------------------------------
@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deepcopy_of_a_deep_chain_needs_no_recursion_and_backpropagates(depth):
    """y_0 = x, y_k = y_(k-1) + x: y_n = (n + 1)·x, so dy_n/dx = n + 1 (by induction)."""
    x = Value(0.5, label="x")
    y = x
    for _ in range(depth):
        y = y + x
    y_copy, x_copy = copy.deepcopy((y, x))
    assert y_copy is not y and x_copy is not x and x_copy.label == "x"
    assert y_copy.data == (depth + 1) * 0.5
    y_copy.backward()
    assert x_copy.grad == depth + 1
    assert x.grad == 0.0  # the original graph is untouched


def test_deepcopy_keeps_shared_nodes_shared_and_backprops_like_the_formula():
    """f = x·x·y: ∂f/∂x = 2xy = 12, ∂f/∂y = x² = 9 at x = 3, y = 2."""
    x, y = Value(3.0, label="x"), Value(2.0, label="y")
    square = x * x
    f = square * y
    f_copy, x_copy, y_copy = copy.deepcopy((f, x, y))
    square_copy = f_copy.parents[0]
    assert square_copy.parents[0] is square_copy.parents[1] is x_copy
    assert f_copy.rule is f.rule
    f_copy.backward()
    assert (x_copy.grad, y_copy.grad) == (12.0, 9.0)
    assert (x.grad, y.grad) == (0.0, 0.0)


def test_deepcopy_of_a_model_and_its_loss_shares_the_copied_parameters():
    mlp = model(seed=7)
    loss = (mlp([0.2, 0.4]) - 1.0) ** 2
    mlp_copy, loss_copy = copy.deepcopy((mlp, loss))
    loss_copy.backward()
    loss.backward()
    assert [p.grad for p in mlp_copy.parameters()] == [p.grad for p in mlp.parameters()]
    assert any(p.grad != 0.0 for p in mlp_copy.parameters())


def test_deepcopy_of_an_n_ary_sum_keeps_every_parent():
    """s = a + b + c + d as one Σ node: ∂s/∂each = 1."""
    leaves = [Value(float(i)) for i in range(4)]
    s = nn.module.sum_values(leaves)
    s_copy, *copies = copy.deepcopy((s, *leaves))
    assert list(s_copy.parents) == copies and s_copy.data == 6.0
    s_copy.backward()
    assert [c.grad for c in copies] == [1.0] * 4


def test_deepcopy_of_a_gradient_graph_differentiates_again():
    """dy = d(x³)/dx = 3x², recorded; its copy differentiates to 6x = 18 at x = 3."""
    x = Value(3.0)
    (dy,) = grad(x**3, [x], create_graph=True)
    dy_copy, x_copy = copy.deepcopy((dy, x))
    assert dy_copy.data == 27.0
    assert grad(dy_copy, [x_copy]) == [18.0]


# -- item 30: .ci/run -----------------------------------------------------------------------
# .ci/run is run here against stand-in programs (a fake python3 whose "virtual environment"
# holds fake python, ruff and mypy; fake dot, chromium and chromedriver so nothing is
# installed): what is checked is the script's own logic, in a second, not pip or pytest.
FAKE_PYTHON3 = """#!/bin/sh
# python3 -m venv DIR: a directory with bin/activate and stand-ins for python, ruff, mypy
mkdir -p "$3/bin"
printf 'PATH="%s/bin:$PATH"\\n' "$3" > "$3/bin/activate"
printf '#!/bin/sh\\n[ "$2" = pytest ] && exit "${FAKE_PYTEST_STATUS:-0}"\\nexit 0\\n' > "$3/bin/python"
printf '#!/bin/sh\\nexit 0\\n' > "$3/bin/ruff"
cp "$3/bin/ruff" "$3/bin/mypy"
chmod +x "$3/bin/python" "$3/bin/ruff" "$3/bin/mypy"
"""


CI_SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "run"


def run_ci(tmp_path, pytest_status, venv=None):
    fake_bin, scratch = tmp_path / "bin", tmp_path / "tmp"
    fake_bin.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    (fake_bin / "python3").write_text(FAKE_PYTHON3)
    for program in ("python3", "dot", "chromium", "chromedriver"):
        if program != "python3":
            (fake_bin / program).write_text("#!/bin/sh\nexit 0\n")
        (fake_bin / program).chmod(0o755)
    environment = {"PATH": f"{fake_bin}:{os.environ['PATH']}", "TMPDIR": str(scratch),
                   "FAKE_PYTEST_STATUS": str(pytest_status), "HOME": str(tmp_path)}  # fmt: skip
    if venv is not None:
        environment["VENV"] = str(venv)
    result = subprocess.run(
        [shutil.which("bash") or "bash", str(CI_SCRIPT)],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return result, scratch


def test_ci_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(CI_SCRIPT)], capture_output=True).returncode == 0


@pytest.mark.parametrize("pytest_status", [0, 1, 3])
def test_ci_prints_each_stage_returns_pytests_status_and_removes_its_environment(tmp_path, pytest_status):
    result, scratch = run_ci(tmp_path, pytest_status)
    assert result.returncode == pytest_status, result.stderr
    stages = [line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[.ci/run ")]
    assert stages[0].startswith("virtual environment in " + str(scratch))
    assert stages[1:] == ["pip install --upgrade pip", "pip install -e '.[test,bench]'", "pip install torch==2.13.0",
                          "ruff check .", "mypy autograd nn", "python -m pytest -q",
                          f"pytest exit status {pytest_status}"]  # fmt: skip
    assert os.listdir(scratch) == []  # the temporary environment was removed at exit


def test_ci_keeps_the_environment_named_by_venv(tmp_path):
    result, _ = run_ci(tmp_path, 0, venv=tmp_path / "kept")
    assert result.returncode == 0 and (tmp_path / "kept" / "bin" / "activate").exists()
