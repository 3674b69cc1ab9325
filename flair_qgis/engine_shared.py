"""The engine's plain-Python tables, read by the plugin from the engine's own source.

Some engine modules are contracts between the two processes: the JSON-lines protocol, the
output table, the region products. They import nothing but the standard library, so the plugin
loads them by file path from the engine source it ships (`engine_src/` in the zip, else the
repository's `engine/`), without importing the `engine` package (whose other modules need torch)
and without copying them by hand.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

PLUGIN_DIR = Path(__file__).resolve().parent


def engine_root() -> Path | None:
    """The folder holding the engine package: `engine_src/` in the zip, else the repository."""
    for root in (PLUGIN_DIR / "engine_src", PLUGIN_DIR.parent):
        if (root / "engine" / "__init__.py").is_file():
            return root
    return None


@cache
def engine_module(relative: str) -> ModuleType:
    """The engine module at `relative` (a dotted name under `engine`, e.g. "protocol"), loaded
    from its file under a private name so it never shadows or half-imports the engine package.

    Raises ImportError when the plugin ships no engine source (a broken installation)."""
    root = engine_root()
    if root is None:
        raise ImportError("the plugin's engine source (engine_src/) is missing; reinstall it")
    path = root / "engine" / Path(*relative.split(".")).with_suffix(".py")
    name = f"_flair_engine_shared.{relative}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"the engine source has no {path.name}; reinstall the plugin")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and enums look their module up while being built
    spec.loader.exec_module(module)
    return module
