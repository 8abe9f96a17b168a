"""The package's figures show as images in Jupyter, once each, and save the same files as before.

A figure built without pyplot has no image representation of its own: a cell ending in it showed
the text "<Figure size 550x380 with 1 Axes>" in JupyterLab and in papermill-executed notebooks.
These tests run cells in a real kernel (nbclient) and call IPython's formatter directly.
"""

from __future__ import annotations

import base64

import matplotlib
import pytest
from matplotlib.figure import Figure

from alertlib.report import figures
from alertlib.report.display import NotebookFigure

# alertlib.report.figures never uses pyplot; Agg keeps the tests headless anyway.
matplotlib.use("Agg")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The cells a kernel runs, in order; each ends with, or displays, one figure of alertlib.
NOTEBOOK_CELLS = {
    "last_expression": (
        "from alertlib.report import figures\n"
        "figure, axes = figures.new_figure()\n"
        "axes[0, 0].plot([0, 1], [0, 1])\n"
        "figure"
    ),
    "display_call": "display(figure)",
    "figure_maker": (
        "import pandas as pd\n"
        "curves = pd.DataFrame({'epoch': [0, 1, 2], 'train_loss': [1.0, 0.6, 0.4], 'val_loss': [1.1, 0.8, 0.7]})\n"
        "figures.plot_training_curves(curves)"
    ),
    # Drawn with seaborn (which imports pyplot): still no pyplot figure, so one image.
    "seaborn_maker": (
        "predictions = pd.DataFrame({'label': [0, 0, 1, 1], 'score': [0.2, 0.6, 0.7, 0.9]})\n"
        "figures.plot_confusion_matrices(predictions)"
    ),
    # matplotlib's inline backend registers its own PNG formatter for every Figure: still one image.
    "inline_backend": "%matplotlib inline\nfigure",
}


def _kernel_name() -> str:
    """The project's kernel when installed, else the Python kernel of the environment running the tests."""
    from jupyter_client.kernelspec import KernelSpecManager

    return "alertlib" if "alertlib" in KernelSpecManager().find_kernel_specs() else "python3"


@pytest.fixture(scope="module")
def notebook_outputs() -> dict[str, list]:
    """The outputs of each cell of ``NOTEBOOK_CELLS``, executed in order by a Jupyter kernel."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS.values()]
    nbclient.NotebookClient(notebook, kernel_name=_kernel_name(), timeout=120).execute()
    return {name: cell.outputs for name, cell in zip(NOTEBOOK_CELLS, notebook.cells, strict=True)}


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(NOTEBOOK_CELLS))
def test_a_figure_shows_as_one_png_image_in_a_notebook(notebook_outputs, cell):
    outputs = notebook_outputs[cell]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) == 1, outputs
    assert base64.b64decode(images[0]["data"]["image/png"])[:8] == PNG_SIGNATURE
    texts = [output.get("data", {}).get("text/plain", "") + output.get("text", "") for output in outputs]
    assert not any("<Figure size" in text for text in texts), texts


def _draw_a_line(figure: Figure) -> Figure:
    axes = figure.subplots(1, 1, squeeze=False)
    axes[0, 0].plot([0, 1, 2], [0.2, 0.9, 0.4])
    axes[0, 0].set_title("a line")
    return figure


def test_ipython_formatter_gives_a_png_and_a_description():
    from IPython.core.formatters import DisplayFormatter

    figure, axes = figures.new_figure()
    axes[0, 0].plot([0, 1], [1, 0])
    axes[0, 0].set_title("a line")
    assert isinstance(figure, NotebookFigure)
    data, _metadata = DisplayFormatter().format(figure)
    assert base64.b64decode(data["image/png"])[:8] == PNG_SIGNATURE
    assert data["text/plain"] == "figure with 1 panel: a line"


def test_saved_files_are_those_of_a_plain_figure(tmp_path):
    size = {"figsize": (4.0, 3.2), "layout": "constrained"}
    plain = _draw_a_line(Figure(**size))
    shown = _draw_a_line(NotebookFigure(**size))
    plain_files = [path.read_bytes() for path in figures.save_figure(plain, "plain", out_dir=tmp_path)]
    shown_files = [path.read_bytes() for path in figures.save_figure(shown, "shown", out_dir=tmp_path)]
    assert plain_files == shown_files
    shown._repr_mimebundle_()  # drawing it for a notebook leaves the figure as it was
    again = [path.read_bytes() for path in figures.save_figure(shown, "shown_again", out_dir=tmp_path)]
    assert again == shown_files
