"""Make the pictures the README shows, from the code as it is (run after changing a view).

    python notebooks/make_figures.py

Trains the README's main job (`python -m nn train`, XOR) into a temporary folder, then
writes into notebooks/figures/: the labelled graph of one sample (graph.svg as PNG), a
still of the step-through page (backward.html after a few Next presses, in headless
Chromium), the network with weights and gradients, the loss curve and the decision
boundary. Needs the `viz` extra, Graphviz's `dot`, and for the page Debian's chromium
and chromium-driver with selenium (the `test` extra).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures"
sys.path.insert(0, str(HERE.parent))

import nn  # noqa: E402
from nn.cli import main as cli  # noqa: E402


def screenshot_walkthrough(page: Path, out: Path, presses: int) -> None:
    """The page after ``presses`` Next clicks, as a browser shows it at 100 %."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page.as_uri())
        for _ in range(presses):
            driver.find_element("id", "next").click()
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main() -> None:
    FIGURES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "xor"
        if cli(["train", "--out", str(run)]) != 0:
            raise SystemExit("the training run failed")
        for name in ("loss.png", "boundary.png"):
            shutil.copy(run / name, FIGURES / name)
        import graphviz

        svg = (run / "graph.svg").read_text(encoding="utf-8")
        import subprocess

        png = subprocess.run(["rsvg-convert", "-f", "png"], input=svg.encode(), capture_output=True, check=True).stdout
        (FIGURES / "graph.png").write_bytes(png)
        screenshot_walkthrough(run / "backward.html", FIGURES / "walkthrough.png", presses=5)
        model = nn.MLP.load(run / "model.json")
    model.zero_grad()
    nn.losses.mse(model([1.0, 0.0]), 1.0).backward()
    picture: graphviz.Digraph = nn.draw_network(model, show_grad=True)
    (FIGURES / "network.png").write_bytes(picture.pipe(format="png"))
    print("wrote", ", ".join(sorted(p.name for p in FIGURES.glob("*.png"))))


if __name__ == "__main__":
    main()
