"""The layers import downward only: bundles -> factors -> algorithms -> analysis -> gapline.

Every ``import``/``from ... import`` in the package folders (at module level or inside a
function) is read with ``ast``; an import of a higher layer, or of ``tests``/``bench``, fails.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("bundles", "factors", "algorithms", "analysis", "gapline")
FORBIDDEN = ("tests", "bench", "notebooks")
MAX_LINES = 500


def _modules():
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            yield layer, path


def _imported_top_levels(path: Path, layer: str):
    """(line, top-level package) of every import in ``path``; relative imports stay in ``layer``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the same top-level package
                yield node.lineno, layer
            elif node.module:
                yield node.lineno, node.module.split(".")[0]


def upward_imports():
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for layer, path in _modules():
        for line, top in _imported_top_levels(path, layer):
            if top in FORBIDDEN or rank.get(top, -1) > rank[layer]:
                bad.append(f"{path.relative_to(REPO)}:{line} ({layer}) imports {top}")
    return bad


def test_imports_run_downward_only():
    assert upward_imports() == []


def test_the_walker_sees_an_upward_import(tmp_path, monkeypatch):
    # the check itself can fail: a data-layer module importing the CLI is caught
    fake = tmp_path / "bundles"
    fake.mkdir()
    (fake / "bad.py").write_text("def f():\n    from gapline.cli import main\n")
    for name in LAYERS[1:]:
        (tmp_path / name).mkdir()
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert upward_imports() == ["bundles/bad.py:2 (bundles) imports gapline"]


@pytest.mark.parametrize("layer", LAYERS)
def test_modules_hold_one_thing(layer):
    lines = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for name, p in _modules() if name == layer}
    long = {path: n for path, n in lines.items() if n > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
