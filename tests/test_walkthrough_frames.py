"""The walkthrough's pictures (`w.frames()`) and its HTML page (`w.save_html`), read as text.

The numbers expected on the pictures are derived by hand in `test_walkthrough.hand_example`'s docstring.
The page is also driven in a real browser in test_walkthrough_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

pytest.importorskip("graphviz", reason="the frames need the graphviz package (pip install graphviz)")

from autograd import Value, sum_values, topological_order, walkthrough  # noqa: E402
from autograd.errors import InvalidArgumentError  # noqa: E402
from tests.test_walkthrough import hand_example, two_two_one_network  # noqa: E402


def node_text(source: str, name: str) -> str:
    """The label of the node named ``name`` (its <B>name</B> title) in a frame's DOT source."""
    for line in source.splitlines():
        if f"<B>{name}</B>" in line:
            return re.sub(r"<[^>]+>", " ", line)
    raise AssertionError(f"no node {name} in the frame")


def test_one_frame_before_the_first_step_and_one_after_each():
    w = walkthrough(hand_example())
    frames = w.frames()
    assert len(frames) == len(w.steps) + 1 == 4


def test_frame_zero_shows_only_the_seed_gradient():
    source = walkthrough(hand_example()).frames()[0].source
    assert "grad 1" in node_text(source, "out")
    for name in ("a", "b", "c", "d"):
        assert "grad ?" in node_text(source, name)
    assert "Start" in source and "∂out/∂out = 1" in source


def test_the_edges_of_a_step_are_labelled_upstream_times_local_equals_contribution():
    frames = walkthrough(hand_example()).frames()
    step3 = frames[3].source
    labels = re.findall(r"xlabel=<<TABLE[^>]*><TR><TD><B>([^<]*)</B>", step3)
    assert labels == ["-8 × -3 = 24", "-8 × 2 = -16"]
    assert "grad 16" in node_text(step3, "a") and "grad -16" in node_text(step3, "b")
    # Step 1: out = d·d sends -4 twice along the two edges from d.
    assert re.findall(r"<B>([^<]*= -4)</B>", frames[1].source) == ["1 × -4 = -4", "1 × -4 = -4"]


def test_a_fanned_out_node_shows_its_running_sum_until_its_last_contribution():
    frames = walkthrough(hand_example()).frames()
    assert re.search(r"grad -8\s+\(so far\)", node_text(frames[2].source, "a"))
    assert "so far" not in node_text(frames[3].source, "a")


def test_the_current_node_is_highlighted_and_unreached_nodes_are_grey():
    from autograd.viz import frames as style

    source = walkthrough(hand_example()).frames()[2].source  # step 2: d = c + a
    line_of = {name: next(line for line in source.splitlines() if f"<B>{name}</B>" in line) for name in "abcd"}
    assert f"color=\"{style.CURRENT}\"" in line_of["d"] and "penwidth=3" in line_of["d"]
    assert f"fillcolor=\"{style.GREY_FILL}\"" in line_of["b"]  # b gets its gradient in step 3


def test_negative_zero_and_tiny_numbers_print_as_a_person_writes_them():
    """relu'(x) at x = -1 is 0; times upstream -1 the engine's product is -0.0, shown as 0."""
    x = Value(-1.0, label="x")
    y = -(x.relu())
    y.label = "y"
    frames = walkthrough(y).frames()
    text = frames[-1].source
    assert "grad 0" in node_text(text, "x") and "-0" not in text


def test_every_frame_has_the_same_layout(dot_program):
    """Stepping moves no node relative to the others (edge labels are placed after layout;
    one sticking out may shift the whole picture, which the page undoes)."""
    layouts = []
    for frame in walkthrough(two_two_one_network()).frames():
        plain = frame.pipe(format="plain").decode()
        nodes = {line.split()[1]: line.split()[2:6] for line in plain.splitlines() if line.startswith("node ")}
        x0, y0 = float(nodes["n0"][0]), float(nodes["n0"][1])
        layouts.append({name: (float(x) - x0, float(y) - y0, float(w), float(h))
                        for name, (x, y, w, h) in nodes.items()})  # fmt: skip
    for layout in layouts:  # `plain` prints inches with 4 or 5 digits
        assert layout.keys() == layouts[0].keys()
        assert all(layout[name] == pytest.approx(layouts[0][name], abs=2e-3) for name in layout)


def test_every_frame_of_the_page_puts_each_node_at_the_same_place(dot_program):
    from autograd.viz.frames import frame_svgs

    svgs = frame_svgs(walkthrough(two_two_one_network()))
    boxes = {re.search(r'<svg width="[^"]*" height="[^"]*"', svg).group(0) for svg in svgs}
    assert len(boxes) == 1  # one canvas size
    first_text = [re.search(rf'id="f{k}_n3".*?<text[^>]* x="([-\d.]+)" y="([-\d.]+)"', svg, re.S).groups()
                  for k, svg in enumerate(svgs)]  # fmt: skip
    view_x = [float(re.search(r'viewBox="([-\d.]+)', svg).group(1)) for svg in svgs]
    translate_x = [float(re.search(r"translate\(([-\d.]+)", svg).group(1)) for svg in svgs]
    on_screen = {round(float(x) + t - v, 2) for (x, _), t, v in zip(first_text, translate_x, view_x)}
    assert len(on_screen) == 1


def test_a_two_two_one_network_frame_fits_a_notebook_cell(dot_program):
    """At 100 % a browser draws 1 pt as 4/3 px; a notebook cell is about 1,000 px wide."""
    svg = walkthrough(two_two_one_network()).frames()[-1].pipe(format="svg").decode()
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))
    assert width_pt * 4 / 3 <= 1000


def test_frames_of_a_large_graph_are_refused_with_the_reason_but_steps_remain():
    xs = [Value(float(k)) for k in range(150)]
    out = sum_values([x * x for x in xs])
    w = walkthrough(out)
    assert len(w.steps) == 151
    with pytest.raises(InvalidArgumentError, match=r"the graph has 301 Values; pictures are drawn for at most 200"):
        w.frames()


# -- the HTML page, read as text ---------------------------------------------------


class PageReader(HTMLParser):
    """Collects the frames, the data-grad of every node per frame, and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[dict[str, str]] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and "data-frame" in attributes:
            self.frames.append({})
        if "data-grad" in attributes:
            self.frames[-1][attributes["data-name"]] = attributes["data-grad"]
        if tag == "script":
            self.scripts += 1
            if "src" in attributes:
                self.external.append(attributes["src"])
        for key in ("src", "href", "xlink:href"):
            if key in attributes and tag != "script":
                self.external.append(attributes[key])
        if tag == "link":
            self.external.append(str(attributes))


def read_page(path) -> PageReader:
    reader = PageReader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader


def test_the_page_is_one_file_with_every_frame_and_no_outside_reference(tmp_path, dot_program):
    error = two_two_one_network()
    w = walkthrough(error)
    page = read_page(w.save_html(tmp_path / "backward.html"))
    assert len(page.frames) == len(w.steps) + 1
    assert page.external == [] and page.scripts == 1


def test_the_last_frame_of_the_page_holds_every_engine_gradient(tmp_path, dot_program):
    error = two_two_one_network()
    w = walkthrough(error)
    page = read_page(w.save_html(tmp_path / "backward.html"))
    error.backward()
    engine = {w.names[node]: node.grad for node in topological_order(error) if node.requires_grad}
    assert {name: float(grad) for name, grad in page.frames[-1].items() if grad} == engine
    # Frame 0: only the output has a gradient yet.
    assert {name for name, grad in page.frames[0].items() if grad} == {"E"}


def test_labels_are_escaped_in_pictures_and_page(tmp_path, dot_program):
    """A label may hold markup, quotes and backslashes: it shows as written and breaks nothing."""
    tricky = '</script><b>x</b> & "q" \'s\' \\n'
    x = Value(1.5, label=tricky)
    y = x * x
    y.label = "y<1>"
    path = walkthrough(y).save_html(tmp_path / "page.html")
    text = path.read_text(encoding="utf-8")
    assert "</script><b>" not in text and "<1>" not in text
    page = read_page(path)
    assert page.scripts == 1 and len(page.frames) == 2
    assert page.frames[-1][tricky] == "3.0"  # d(x²)/dx = 2x = 3 at x = 1.5
    svg = walkthrough(y).frames()[1].pipe(format="svg").decode()
    # shown as written: markup escaped, and the backslash kept (not read as a Graphviz escape)
    assert ">&lt;/script&gt;&lt;b&gt;x&lt;/b&gt; &amp; &quot;q&quot; &#39;s&#39; \\n</text>" in svg
