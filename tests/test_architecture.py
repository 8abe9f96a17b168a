"""The package's architecture as checked facts: the import contract (pyproject.toml), module and
function sizes, and notebooks that hold no logic of their own."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from alertlib.core.paths import PACKAGE_DIR, REPO_ROOT

MAX_MODULE_LINES = 600  # above this a module must say, in its docstring, which one concern it holds
ONE_CONCERN_MARK = "One concern:"
MAX_FUNCTION_LINES = 80
MAX_NOTEBOOK_FUNCTION_LINES = 5


def _modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_import_contract_is_kept():
    """import-linter's contracts in pyproject.toml: layers run one way, reporting never trains."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo", "--config", str(REPO_ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout[-2000:]


def test_large_modules_say_which_one_concern_they_hold():
    too_long = []
    for path in _modules():
        lines = path.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_MODULE_LINES and ONE_CONCERN_MARK not in docstring:
            too_long.append(f"{path.relative_to(REPO_ROOT)}: {lines} lines")
    assert not too_long, (
        f"modules above {MAX_MODULE_LINES} lines without '{ONE_CONCERN_MARK}' in the docstring: {too_long}"
    )


def _long_functions(tree: ast.AST, limit: int) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append((node.name, length))
    return found


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{path.relative_to(REPO_ROOT)}:{name} ({length} lines)"
        for path in _modules()
        for name, length in _long_functions(ast.parse(path.read_text()), MAX_FUNCTION_LINES)
    ]
    assert not long, long


def test_notebooks_define_no_logic_of_their_own():
    """A notebook orchestrates and shows; functions longer than a few lines belong in alertlib."""
    long = []
    for notebook in sorted((REPO_ROOT / "notebooks").rglob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            # IPython magics and shell escapes are not Python: leave them out of the parse.
            code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for name, length in _long_functions(ast.parse(code), MAX_NOTEBOOK_FUNCTION_LINES):
                long.append(f"{notebook.name} cell {index}: def {name} ({length} lines)")
    assert not long, long
