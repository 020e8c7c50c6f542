"""The walkthrough's Jupyter stepper, driven through the widgets' own API (no browser).

The numbers come from `hand_example` (derived in its docstring): after step 2,
a has received -8 of its gradient; after step 3, a's gradient is 16.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("ipywidgets", reason="the stepper needs ipywidgets (pip install 'textbook-autograd[notebooks]')")

from autograd import Value, sum_values, walkthrough  # noqa: E402
from autograd.viz.widget import mimebundle  # noqa: E402
from tests.test_walkthrough_frames import hand_example  # noqa: E402


@pytest.fixture
def stepper(dot_program):
    return walkthrough(hand_example()).widget()


def test_the_stepper_starts_before_the_first_step(stepper):
    assert stepper.step == 0 and stepper.counter.value == "Start"
    assert stepper.previous.disabled and not stepper.next.disabled
    assert 'data-name="out" data-grad="1.0"' in stepper.picture.value
    assert 'data-name="a" data-grad=""' in stepper.picture.value
    assert "∂out/∂out" in stepper.text.value


def test_next_and_previous_move_one_step_and_redraw(stepper):
    stepper.next.click()
    stepper.next.click()
    assert stepper.step == 2 and stepper.counter.value == "Step 2 of 3"
    assert 'data-name="a" data-grad="-8.0"' in stepper.picture.value
    assert "Step 2 of 3: d = c + a" in stepper.text.value
    stepper.previous.click()
    assert stepper.step == 1 and "Step 1 of 3: out = d·d" in stepper.text.value


def test_the_stepper_stops_at_both_ends(stepper):
    stepper.previous.click()
    assert stepper.step == 0
    for _ in range(5):
        stepper.next.click()
    assert stepper.step == 3 and stepper.next.disabled
    assert 'data-name="a" data-grad="16.0"' in stepper.picture.value


def test_the_slider_and_the_play_control_move_together(stepper):
    stepper.slider.value = 3
    assert stepper.play.value == 3 and stepper.counter.value == "Step 3 of 3"
    stepper.play.value = 1  # what Play does on each tick
    assert stepper.step == 1 and "Step 1 of 3" in stepper.text.value


def test_a_graph_too_large_to_draw_still_steps_through_its_text():
    out = sum_values([Value(float(k)) * Value(1.0) for k in range(100)])  # 301 Values
    stepper = walkthrough(out).widget()
    assert "No picture" in stepper.picture.value and "at most 200" in stepper.picture.value
    stepper.next.click()
    assert "Step 1 of 101" in stepper.text.value


def test_without_ipywidgets_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now fails
    with pytest.raises(ImportError, match=r"ipywidgets: pip install 'textbook-autograd\[notebooks\]'"):
        walkthrough(Value(1.0) * 2).widget()


def test_a_notebook_shows_the_stepper_and_pages_without_widgets_the_last_frame(dot_program):
    bundle = mimebundle(walkthrough(hand_example()))
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert 'data-name="a" data-grad="16.0"' in bundle["text/html"] and "<svg" in bundle["text/html"]
    assert bundle["text/plain"].startswith("Start: ∂out/∂out = 1")
