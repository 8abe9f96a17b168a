"""JupyterLab in a real browser: `make lab`'s server, headless Chromium, "Run All Cells" on a notebook.

The server is :class:`alertlib.study.lab.LabServer` (the settings of `make lab`: the ``alertlib``
kernel by default) on a free port of 127.0.0.1; the browser is Debian's Chromium driven by Playwright,
which downloads nothing (``executable_path``). Generated data and figures go to a temporary folder;
autosave is off, so the repository's notebooks are never written. A clean run of ``00_data.ipynb`` saves a
screenshot of the notebook with a rendered figure to ``figures/jupyterlab_00_data.png`` (shown by
figures/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from alertlib.core.paths import REPO_ROOT
from alertlib.study.lab import NOTEBOOK_DIR, LabServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = REPO_ROOT / "figures" / "jupyterlab_00_data.png"
KERNEL_DISPLAY_NAME = "Python (alertlib)"
# 2 shared cores: JupyterLab's first load and a notebook's run can each take minutes
PAGE_TIMEOUT_S = 180
RUN_TIMEOUT_S = float(os.environ.get("ALERTLIB_BROWSER_RUN_TIMEOUT", 1800))
POLL_S = 2.0
KERNEL_DIED = ("dead", "autorestarting", "restarting")  # JupyterLab's kernel status once a kernel has died
# Chromium as root in a closed network (machine notes): no sandbox, no GPU, no calls home
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JupyterLab user settings for the test only: never save the notebook (autosave would write outputs
# into notebooks/), keep every cell in the DOM, start the notebook's kernel without asking, no news.
LAB_TEST_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# Reads the open notebook as JupyterLab holds it: the model for execution counts and error outputs
# (the DOM renders an error exactly like stderr text), the DOM for what the user sees.
NOTEBOOK_STATE_JS = """
(path) => {
    if (!window.jupyterapp) return null;
    const panel = window.jupyterapp.shell.currentWidget;
    if (!panel || !panel.context || panel.context.path !== path || !panel.sessionContext) {
        return null;
    }
    const cells = [];
    panel.content.widgets.forEach((cell, index) => {
        if (cell.model.type !== "code") return;
        const outputs = cell.model.outputs.toJSON();
        cells.push({
            index: index,
            source: cell.model.sharedModel.getSource(),
            count: cell.model.executionCount,
            prompt: (cell.node.querySelector(".jp-InputPrompt") || {}).innerText || "",
            errors: outputs.filter((o) => o.output_type === "error")
                           .map((o) => `${o.ename}: ${o.evalue}`),
            text: Array.from(cell.node.querySelectorAll(".jp-OutputArea-output"))
                       .map((o) => o.innerText).join("\\n"),
            images: Array.from(cell.node.querySelectorAll(".jp-RenderedImage img"))
                         .filter((img) => img.complete && img.naturalWidth > 0).length,
        });
    });
    return {
        kernel: panel.sessionContext.kernelDisplayName,
        status: panel.sessionContext.kernelDisplayStatus,
        dialog: (document.querySelector(".jp-Dialog") || {}).innerText || null,
        cells: cells,
    };
}
"""


@dataclass
class NotebookRun:
    """What JupyterLab shows once "Run All Cells" has finished (or stopped at an error)."""

    name: str
    kernel: str
    status: str
    cells: list[dict]
    seconds: float
    page_errors: list[str] = field(default_factory=list)

    @property
    def failed_cells(self) -> list[dict]:
        return [c for c in self.cells if c["errors"]]

    @property
    def images(self) -> int:
        return sum(c["images"] for c in self.cells)

    def unexecuted_cells(self) -> list[dict]:
        return [c for c in self.cells if c["source"].strip() and c["count"] is None]

    def failure_report(self) -> str:
        """Which cells failed, with their first source line and error, for an assertion message."""
        lines = [f"{self.name}: kernel {self.kernel!r} ({self.status}), {self.seconds:.0f} s"]
        for cell in self.failed_cells:
            first_line = cell["source"].strip().splitlines()[0] if cell["source"].strip() else ""
            lines.append(f"  cell {cell['index']} [{first_line[:80]}]: {'; '.join(cell['errors'])}")
        lines += [f"  browser error: {e}" for e in self.page_errors]
        return "\n".join(lines)


def _chromium() -> str:
    explicit = os.environ.get("ALERTLIB_CHROMIUM")
    found = explicit or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.skip(
            "Chromium not found: install Debian's chromium (`apt-get install chromium`, as .ci/run does) "
            "or set ALERTLIB_CHROMIUM to a Chromium executable"
        )
    return found


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (the system's, nothing downloaded), driven by Playwright."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (it is in the dev extras: make setup)"
    )
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _lab_environment(root: Path) -> dict[str, str]:
    """The server's (and so its kernels') environment: generated files and Jupyter state under ``root``."""
    settings = root / "lab-settings"
    for plugin, values in LAB_TEST_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return dict(
        os.environ,
        ALERTLIB_DATA=str(root / "data"),
        ALERTLIB_FIGURES=str(root / "figures"),
        HF_HUB_OFFLINE="1",
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
    )


def _lab_server(notebook_dir: Path, root: Path) -> LabServer:
    """`make lab`'s server on ``notebook_dir`` with the test's settings; started by ``with``."""
    test_arguments = [
        "--LabApp.expose_app_in_browser=True",  # the test's page reads the notebook model through it
        f"--FileCheckpoints.checkpoint_dir={root / 'checkpoints'}",  # not .ipynb_checkpoints in notebooks/
    ]
    return LabServer(notebook_dir, root / "jupyterlab.log", _lab_environment(root), test_arguments)


def _finished(state: dict) -> bool:
    """All code cells ran, or one failed and Run All dropped the rest; and the kernel is idle."""
    cells = state["cells"]
    running = any("*" in c["prompt"] for c in cells)
    complete = all(c["count"] is not None for c in cells if c["source"].strip())
    failed = any(c["errors"] for c in cells)
    return state["status"] == "idle" and not running and (complete or failed)


def run_all_cells(page, server: LabServer, name: str) -> NotebookRun:
    """Open ``name`` in JupyterLab, choose Run > Run All Cells, wait until it has finished.

    Raises ``AssertionError`` with the notebook's state when the kernel dies, a dialog blocks the page
    or the run outlasts ``RUN_TIMEOUT_S``.
    """
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(server.url(f"lab/tree/{name}"), timeout=PAGE_TIMEOUT_S * 1000)
    state_of_notebook = f"(({NOTEBOOK_STATE_JS})({json.dumps(name)}) || {{}})"
    page.wait_for_function(f"{state_of_notebook}.status === 'idle'", timeout=PAGE_TIMEOUT_S * 1000, polling=500)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    start = time.monotonic()
    settled = 0
    while True:
        state = page.evaluate(state_of_notebook)
        elapsed = time.monotonic() - start
        if not state:  # the notebook is not the current tab (yet)
            state = {"dialog": None, "status": "", "cells": []}
        if state["dialog"]:
            raise AssertionError(f"{name}: a dialog blocks JupyterLab: {state['dialog']!r}")
        if state["status"] in KERNEL_DIED:
            raise AssertionError(f"{name}: the kernel is {state['status']} after {elapsed:.0f} s\n{server.log_tail()}")
        settled = settled + 1 if _finished(state) else 0
        if settled >= 2:  # two polls in a row: not the idle moment between two cells
            return NotebookRun(name, state["kernel"], state["status"], state["cells"], elapsed, page_errors)
        if elapsed > RUN_TIMEOUT_S:
            unfinished = [c["index"] for c in state["cells"] if c["count"] is None]
            raise AssertionError(f"{name}: not finished after {elapsed:.0f} s; cells not run: {unfinished}")
        time.sleep(POLL_S)


def screenshot_first_figure(page, path: Path) -> None:
    """Scroll the notebook to the first code cell with a rendered figure and capture the window."""
    page.evaluate(
        """() => {
            const image = document.querySelector(".jp-NotebookPanel .jp-RenderedImage img");
            const cell = image && image.closest(".jp-Cell");
            if (cell) cell.scrollIntoView({block: "start"});
        }"""
    )
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))


def _assert_clean(run: NotebookRun, min_images: int) -> None:
    assert run.kernel == KERNEL_DISPLAY_NAME, run.failure_report()
    assert not run.failed_cells, run.failure_report()
    assert not run.unexecuted_cells(), f"cells not run: {[c['index'] for c in run.unexecuted_cells()]}"
    shown_as_text = [c["index"] for c in run.cells if "<Figure size" in c["text"]]
    assert not shown_as_text, f"{run.name}: figures printed as text instead of rendered, cells {shown_as_text}"
    assert run.images >= min_images, f"{run.name}: {run.images} rendered images, expected >= {min_images}"


def _write_notebook(path: Path, sources: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "alertlib", "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)


def test_lab_server_starts_once_and_stops(tmp_path):
    server = _lab_server(tmp_path, tmp_path).start()
    started = server.process
    with server:  # entering a started server must not start a second one beside it
        assert server.process is started
    assert started.poll() is not None
    assert "Shutting down" in server.log_tail()


def test_harness_sees_figures_and_reports_the_failing_cell(tmp_path, browser):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    figure_cell = (
        "from alertlib.report.figures import new_figure\n"
        "figure, axes = new_figure()\naxes[0, 0].plot([1, 3, 2])\nfigure"
    )
    _write_notebook(notebooks / "clean.ipynb", ["import warnings\nwarnings.warn('only a warning')", figure_cell])
    _write_notebook(notebooks / "failing.ipynb", ["x = 1", "x / 0", "print('never runs')"])
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        with _lab_server(notebooks, tmp_path) as server:
            clean = run_all_cells(page, server, "clean.ipynb")
            failing = run_all_cells(page, server, "failing.ipynb")
    finally:
        page.close()
    _assert_clean(clean, min_images=1)  # a warning on stderr is not an error
    assert [c["index"] for c in failing.failed_cells] == [1]
    assert "ZeroDivisionError: division by zero" in failing.failure_report()
    assert [c["index"] for c in failing.unexecuted_cells()] == [2]


def test_00_data_runs_in_jupyterlab(tmp_path, browser):
    screenshot = tmp_path / SCREENSHOT.name
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        with _lab_server(NOTEBOOK_DIR, tmp_path) as server:
            run = run_all_cells(page, server, "00_data.ipynb")
            screenshot_first_figure(page, screenshot)
        log = (tmp_path / "jupyterlab.log").read_text(errors="replace")
    finally:
        page.close()
    assert "Saving file at" not in log, "the server saved a notebook into notebooks/"
    assert not run.failed_cells, f"{run.failure_report()}\n  screenshot: {screenshot}"
    _assert_clean(run, min_images=2)  # the galaxy grid and the alert triplets at least
    shutil.copyfile(screenshot, SCREENSHOT)  # only a clean run replaces the picture the README shows
