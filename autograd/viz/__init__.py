"""Views that show backpropagation happening: the step-through backward pass.

`walkthrough` records the steps (plain data); `frames`, `html` and `widget`
render them with Graphviz, as one HTML page, and as a Jupyter widget.
"""

from __future__ import annotations

from .walkthrough import Contribution, Step, Walkthrough, walkthrough

__all__ = ["walkthrough", "Walkthrough", "Step", "Contribution"]
