"""The walkthrough as one self-contained HTML page: every frame's SVG inline and a small script.

No server and no network: the file opens from disk in any browser. Previous /
Next / Play buttons, a slider and the arrow keys show one frame at a time, with
the step's text beside the picture. Each node of each frame carries its
gradient so far in ``data-grad`` (full precision) for programs and tests.
"""

from __future__ import annotations

import html
from pathlib import Path

from .frames import frame_svgs, node_id
from .walkthrough import Walkthrough, number, with_number

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #212121; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
p.help { margin: 0 0 10px 0; color: #616161; font-size: 14px; }
#controls { position: sticky; top: 0; z-index: 1; background: white; padding: 6px 0;
  display: flex; align-items: center; gap: 8px; margin-bottom: 10px; flex-wrap: wrap; }
#controls button { font-size: 15px; padding: 4px 12px; min-width: 96px; }
#slider { width: 260px; }
#counter { font-size: 15px; font-weight: bold; min-width: 120px; }
section.frame { display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap; }
section.frame[hidden] { display: none; }
.picture svg { display: block; max-width: 100%; height: auto; }
.picture g.node { scroll-margin: 70px; }
.text { position: sticky; top: 60px; width: 320px; font-size: 15px; line-height: 1.45; }
.text h2 { font-size: 16px; margin: 4px 0 8px 0; }
.text ul { padding-left: 18px; margin: 6px 0; }
.text li { margin-bottom: 8px; }
.text .number { font-family: Menlo, Consolas, monospace; }
"""

# The whole program of the page: show frame k, and the controls that change k.
SCRIPT = """
(function () {
  var frames = document.querySelectorAll("section.frame");
  var last = frames.length - 1, current = 0, timer = null;
  var prev = document.getElementById("prev"), next = document.getElementById("next");
  var play = document.getElementById("play"), slider = document.getElementById("slider");
  var counter = document.getElementById("counter");
  function show(k) {
    current = Math.max(0, Math.min(last, k));
    for (var i = 0; i <= last; i++) { frames[i].hidden = (i !== current); }
    slider.value = current;
    counter.textContent = current === 0 ? "Start" : "Step " + current + " of " + last;
    prev.disabled = current === 0;
    next.disabled = current === last;
    document.body.setAttribute("data-frame", current);
    var node = document.getElementById(frames[current].getAttribute("data-current"));
    if (node !== null) { node.scrollIntoView({block: "nearest", inline: "nearest"}); }
  }
  function stop() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    play.textContent = "\\u25B6 Play";
  }
  function start() {
    if (current === last) { show(0); }
    timer = setInterval(function () { if (current >= last) { stop(); } else { show(current + 1); } }, 1200);
    play.textContent = "\\u275A\\u275A Pause";
  }
  prev.addEventListener("click", function () { stop(); show(current - 1); });
  next.addEventListener("click", function () { stop(); show(current + 1); });
  play.addEventListener("click", function () { if (timer === null) { start(); } else { stop(); } });
  slider.addEventListener("input", function () { stop(); show(Number(slider.value)); });
  document.addEventListener("keydown", function (event) {
    if (event.target === slider) { return; }  // the slider moves itself with the arrow keys
    var moves = {ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: last};
    if (event.key in moves) { event.preventDefault(); stop(); show(moves[event.key]); }
  });
  show(0);
})();
"""


def page(walk: Walkthrough) -> str:
    """The HTML text of the page."""
    out = html.escape(walk.output_name)
    svgs = frame_svgs(walk)
    index = {node: i for i, node in enumerate(walk.order)}
    count = len(walk.steps)
    sections = []
    for k, svg in enumerate(svgs):
        hidden = "" if k == 0 else " hidden"
        # The node of this step (the output at the start), kept in view by the script.
        current = node_id(k, index[walk.steps[k - 1].node if k else walk.output])
        sections.append(
            f'<section class="frame" id="frame-{k}" data-frame="{k}" data-current="{current}"{hidden}>\n'
            f'<div class="picture">{svg}</div>\n<div class="text">{step_text(walk, k)}</div>\n</section>'
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Backward pass of {out}, step by step</title>
<style>{STYLE}</style>
</head>
<body data-frame="0">
<h1>Backward pass of {out}, step by step</h1>
<p class="help">Each step takes one node's gradient ∂{out}/∂node and sends it back to the node's inputs
by the chain rule: contribution = upstream × local derivative. Next / Previous, or the ← → keys.</p>
<div id="controls">
<button id="prev" type="button">◀ Previous</button>
<button id="play" type="button">▶ Play</button>
<button id="next" type="button">Next ▶</button>
<input id="slider" type="range" min="0" max="{count}" value="0" aria-label="step">
<span id="counter">Start</span>
</div>
{chr(10).join(sections)}
<script>{SCRIPT}</script>
</body>
</html>
"""


def step_text(walk: Walkthrough, k: int) -> str:
    """The text beside frame ``k``, as HTML (every name and formula escaped)."""
    out = html.escape(walk.output_name)
    if k == 0:
        return (
            f"<h2>Start</h2><p>The pass begins at the output: ∂{out}/∂{out} = "
            '<span class="number">1</span>.</p><p>Then each node, from the output back, passes its gradient '
            "to its inputs once all of its own uses have sent theirs.</p>"
        )
    step = walk.steps[k - 1]
    name = html.escape(step.name)
    items = []
    for c in step.parents:
        parent = html.escape(c.parent_name)
        items.append(
            f"<li><b>{parent}</b>: local {html.escape(with_number(c.formula, c.local))}<br>"
            f'contribution <span class="number">{number(step.upstream)} × {number(c.local)} = '
            f"{number(c.contribution)}</span><br>"
            f'∂{out}/∂{parent} so far: <span class="number">{number(c.total)}</span></li>'
        )
    if step.constants:
        items.append(f"<li>{html.escape(', '.join(step.constants))}: constant, needs no gradient</li>")
    return (
        f"<h2>Step {k} of {len(walk.steps)}: {html.escape(step.equation)}</h2>"
        f'<p>Upstream gradient ∂{out}/∂{name} = <span class="number">{number(step.upstream)}</span> '
        f"(complete: every use of {name} has sent its share).</p><ul>{''.join(items)}</ul>"
    )


def save_html(walk: Walkthrough, path: Path) -> Path:
    path.write_text(page(walk), encoding="utf-8")
    return path
