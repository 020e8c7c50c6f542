"""The walkthrough's HTML page in a real browser: Debian's chromium, driven by selenium.

The page is opened from disk (file://, no server); the test presses Next (the
button and the → key) and reads what the page shows. Skipped with the reason
when chromium, chromedriver or selenium is missing; under REQUIRE_CHROMIUM=1
(as in .ci/run) that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autograd import topological_order, walkthrough
from tests.test_walkthrough import hand_example, two_two_one_network

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = os.environ.get("WALKTHROUGH_SCREENSHOT")  # keep a screenshot there, to look at


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path) and shutil.which(Path(path).name) is None:
            return f"{path} is missing (apt-get install {package})"
    if shutil.which("dot") is None:
        return "Graphviz `dot` is not installed (apt-get install graphviz)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason}, but REQUIRE_CHROMIUM=1 demands the browser test")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--window-size=1300,1000",
    ):  # fmt: skip
        options.add_argument(argument)
    driver_path = CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else str(shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def frame(driver: Any) -> int:
    return int(driver.find_element("tag name", "body").get_attribute("data-frame"))


def shown_node(driver: Any, name: str) -> Any:
    """The node called ``name`` in the frame on screen."""
    k = frame(driver)
    (node,) = [
        element
        for element in driver.find_elements("css selector", f"#frame-{k} g.node")
        if element.get_attribute("data-name") == name
    ]
    assert node.is_displayed()
    return node


def press_right_arrow(driver: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()


def test_next_and_the_arrow_key_step_through_the_hand_example(browser, tmp_path):
    """out = (a·b + a)² at a = 2, b = -3 (derived in `hand_example`): after step 2
    a has received -8 of its gradient; after step 3 its gradient is 16 and b's -16."""
    w = walkthrough(hand_example())
    page = w.save_html(tmp_path / "hand.html")
    browser.get(page.resolve().as_uri())
    assert frame(browser) == 0 and shown_node(browser, "out").get_attribute("data-grad") == "1.0"
    assert "grad ?" in shown_node(browser, "a").text
    for _ in range(2):
        browser.find_element("id", "next").click()
    assert frame(browser) == 2
    a = shown_node(browser, "a")
    assert float(a.get_attribute("data-grad")) == w.steps[1].parents[1].total == -8.0
    assert "grad -8 (so far)" in a.text.replace("\n", " ")
    press_right_arrow(browser)
    assert frame(browser) == 3
    assert float(shown_node(browser, "a").get_attribute("data-grad")) == w.gradients[w.steps[2].parents[0].parent]
    assert "grad 16" in shown_node(browser, "a").text and "grad -16" in shown_node(browser, "b").text
    assert browser.find_element("id", "next").get_attribute("disabled") is not None  # the last frame
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(browser).send_keys(Keys.ARROW_LEFT).perform()
    assert frame(browser) == 2 and "Step 2 of 3" in browser.find_element("id", "counter").text


def test_the_last_frame_shows_every_engine_gradient(browser, tmp_path):
    error = two_two_one_network()
    w = walkthrough(error)
    page = w.save_html(tmp_path / "backward.html")
    browser.get(page.resolve().as_uri())
    place_of_e = shown_node(browser, "E").rect
    next_button = browser.find_element("id", "next")
    for k in range(len(w.steps)):
        if k % 2:
            next_button.click()
        else:
            press_right_arrow(browser)
    assert frame(browser) == len(w.steps)
    if SCREENSHOT:
        browser.save_screenshot(SCREENSHOT)
    assert browser.save_screenshot(str(tmp_path / "last_frame.png"))
    error.backward()
    for node in topological_order(error):
        if node.requires_grad:
            shown = shown_node(browser, w.names[node])
            assert float(shown.get_attribute("data-grad")) == node.grad
    place = shown_node(browser, "E").rect  # stepping moved nothing (to a hundredth of a pixel)
    assert all(place[key] == pytest.approx(place_of_e[key], abs=0.01) for key in ("x", "y", "width", "height"))


def test_play_advances_by_itself_and_pause_stops_it(browser, tmp_path):
    page = walkthrough(two_two_one_network()).save_html(tmp_path / "play.html")
    browser.get(page.resolve().as_uri())
    browser.find_element("id", "play").click()
    deadline = time.monotonic() + 10
    while frame(browser) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert frame(browser) >= 2
    browser.find_element("id", "play").click()
    stopped_at = frame(browser)
    time.sleep(1.5)
    assert frame(browser) == stopped_at
