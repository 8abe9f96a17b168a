"""Figures that show themselves as PNG images in Jupyter, without pyplot.

The package builds its figures with ``matplotlib.figure.Figure`` directly, not with pyplot, so that
they hold no global state and a cell shows each figure once. A bare ``Figure`` has no image
representation of its own, though: a cell ending in one shows the text ``<Figure size 550x380 with
1 Axes>``. ``NotebookFigure`` is a ``Figure`` that gives IPython its PNG rendering
(``_repr_mimebundle_``), so a cell ending in it, or ``display(figure)``, shows the image in
JupyterLab and in papermill-executed notebooks alike; saving it writes the same files as a plain
``Figure``.
"""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` that IPython displays as a PNG image (with a one-line text fallback)."""

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        """The figure for IPython's display: ``image/png`` (base64) and a short ``text/plain``.

        The PNG is drawn at the figure's own dpi and cropped to its content, as matplotlib's inline
        backend draws pyplot figures.
        """
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": self.description()}

    def description(self) -> str:
        """One line saying what the figure shows, for front ends that cannot show the image."""
        suptitle = self.get_suptitle()
        titles = [suptitle] if suptitle else [ax.get_title() for ax in self.axes if ax.get_title()]
        panels = sum(ax.get_visible() and ax.axison for ax in self.axes)
        named = f": {'; '.join(titles)}" if titles else ""
        return f"figure with {panels} panel{'s' if panels != 1 else ''}{named}"
