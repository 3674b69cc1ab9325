"""House rules that code can check: the engine runs without QGIS, files stay small."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import engine

ENGINE_DIR = Path(engine.__file__).parent


def test_every_engine_module_imports_without_qgis() -> None:
    for info in pkgutil.walk_packages([str(ENGINE_DIR)], prefix="engine."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    assert not [m for m in sys.modules if m.split(".")[0] in ("qgis", "PyQt5", "PyQt6")]


def test_no_engine_source_mentions_qgis_imports() -> None:
    for path in ENGINE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("qgis", "PyQt5", "PyQt6") for n in names), path
