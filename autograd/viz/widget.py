"""The walkthrough in Jupyter: an ipywidgets stepper, and how a walkthrough displays itself.

The stepper shows one frame at a time (the picture of `frames` and the text of
`html`), moved by Previous / Next, a Play control and a slider. A notebook cell
ending in ``walkthrough(y)`` shows the stepper where widgets run, and the last
frame as plain HTML where they do not (a notebook browsed on a website).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..draw import INSTALL_DOT, GraphvizNotFoundError
from ..errors import InvalidArgumentError
from .html import step_text
from .walkthrough import Walkthrough

INSTALL_WIDGETS = "pip install 'textbook-autograd[notebooks]'"
PLAY_INTERVAL_MS = 1200
TEXT_STYLE = "line-height: 1.4; font-size: 14px; padding-left: 8px"


def stepper(walk: Walkthrough) -> Any:
    """A `WalkthroughStepper` (an ``ipywidgets.VBox``) for ``walk``."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"the walkthrough widget needs ipywidgets: {INSTALL_WIDGETS}") from exc
    return stepper_class()(walk)


def pictures(walk: Walkthrough) -> list[str]:
    """Every frame's SVG, or, when they cannot be drawn, one message per frame saying why."""
    from .frames import frame_svgs

    try:
        return frame_svgs(walk)
    except ImportError as exc:  # the graphviz package
        reason = str(exc)
    except GraphvizNotFoundError:
        reason = INSTALL_DOT
    except InvalidArgumentError as exc:  # too many nodes to draw
        reason = str(exc)
    import html

    return [f"<p><i>No picture: {html.escape(reason)}</i></p>"] * (len(walk.steps) + 1)


@lru_cache(maxsize=1)
def stepper_class() -> type:
    """The stepper's class, made on first use (ipywidgets is optional)."""
    import ipywidgets as widgets

    class WalkthroughStepper(widgets.VBox):  # type: ignore[misc]
        """Previous / Play / Next and a slider over the frames; the picture and the step's text below."""

        def __init__(self, walk: Walkthrough) -> None:
            self.walk = walk
            self.pictures = pictures(walk)
            last = len(walk.steps)
            self.previous = widgets.Button(description="◀ Previous", tooltip="previous step")
            self.next = widgets.Button(description="Next ▶", tooltip="next step")
            self.play = widgets.Play(min=0, max=last, interval=PLAY_INTERVAL_MS, description="Play")
            self.slider = widgets.IntSlider(min=0, max=last, description="step", readout=False)
            self.counter = widgets.Label()
            self.picture = widgets.HTML()
            self.text = widgets.HTML(layout=widgets.Layout(width="340px"))
            widgets.link((self.play, "value"), (self.slider, "value"))
            self.previous.on_click(lambda _: self.go(self.slider.value - 1))
            self.next.on_click(lambda _: self.go(self.slider.value + 1))
            self.slider.observe(lambda _: self.show(), names="value")
            controls = widgets.HBox([self.previous, self.play, self.next, self.slider, self.counter])
            # The text beside the picture where the cell is wide enough, under it where not.
            body = widgets.HBox(
                [self.picture, self.text], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")
            )
            super().__init__([controls, body])
            self.show()

        @property
        def step(self) -> int:
            """The frame shown: 0 before the first step, k after step k."""
            return int(self.slider.value)

        def go(self, k: int) -> None:
            self.slider.value = max(0, min(len(self.walk.steps), k))

        def show(self) -> None:
            k = self.step
            last = len(self.walk.steps)
            self.picture.value = self.pictures[k]
            self.text.value = f'<div style="{TEXT_STYLE}">{step_text(self.walk, k)}</div>'
            self.counter.value = "Start" if k == 0 else f"Step {k} of {last}"
            self.previous.disabled = k == 0
            self.next.disabled = k == last

    return WalkthroughStepper


def static_html(walk: Walkthrough, picture: str) -> str:
    """The last frame's ``picture`` and its text: what a page without widgets shows."""
    return (
        f'<div style="display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap">'
        f'<div>{picture}</div><div style="max-width:340px">{step_text(walk, len(walk.steps))}'
        "<p><i>The last step of the pass; run the notebook to step through it.</i></p></div></div>"
    )


def mimebundle(walk: Walkthrough) -> dict[str, Any]:
    """The stepper where widgets run, with the last frame as HTML and the steps as text beside it."""
    try:
        box = stepper(walk)
    except ImportError:  # no ipywidgets: the last frame only
        return {"text/plain": str(walk), "text/html": static_html(walk, pictures(walk)[-1])}
    bundle = {"text/plain": str(walk), "text/html": static_html(walk, box.pictures[-1])}
    widget_bundle = box._repr_mimebundle_() or {}
    return {**bundle, **{key: value for key, value in widget_bundle.items() if key != "text/plain"}}


def display_walkthrough(walk: Walkthrough) -> None:
    from IPython.display import display

    display(mimebundle(walk), raw=True)
