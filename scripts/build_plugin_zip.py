#!/usr/bin/env python3
"""Build dist/flair_qgis-<version>.zip, installable with QGIS's "Install from ZIP".

The zip holds one folder, `flair_qgis/`: the plugin code, `metadata.txt` and `LICENSE` from the
repository root (their single source), `resources/`, and `engine_src/` (the engine package with
`pyproject.toml` and the pinned `requirements/engine.txt`) that "Install or repair the FLAIR
engine" pip-installs. The plugin also reads `engine_src/engine/models/cards/registry.json` for
its model list, so the dialog offers exactly the models of the engine it ships. Stdlib only.

    python3 scripts/build_plugin_zip.py [--out-dir dist]
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "flair_qgis"
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
README_STUB = "# flair-landcover\n\nFLAIR land-cover engine (shipped inside the QGIS plugin).\n"


def plugin_version(root: Path = ROOT) -> str:
    """The version in metadata.txt."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(root / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"].strip()


def _tree(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if (
            path.is_file()
            and not SKIP_PARTS.intersection(path.parts)
            and path.suffix not in SKIP_SUFFIXES
        ):
            yield path


def plugin_entries(root: Path = ROOT) -> Iterator[tuple[str, Path | str]]:
    """(name inside the zip, file path or text) for every member."""
    for path in _tree(root / PLUGIN):
        yield f"{PLUGIN}/{path.relative_to(root / PLUGIN).as_posix()}", path
    for name in ("metadata.txt", "LICENSE"):
        yield f"{PLUGIN}/{name}", root / name
    for path in _tree(root / "resources"):
        yield f"{PLUGIN}/resources/{path.relative_to(root / 'resources').as_posix()}", path
    src = f"{PLUGIN}/engine_src"
    yield f"{src}/pyproject.toml", root / "pyproject.toml"
    yield f"{src}/requirements/engine.txt", root / "requirements" / "engine.txt"
    yield f"{src}/LICENSE", root / "LICENSE"
    readme = root / "README.md"
    yield f"{src}/README.md", readme if readme.exists() else README_STUB
    for path in _tree(root / "engine"):
        yield f"{src}/engine/{path.relative_to(root / 'engine').as_posix()}", path


def build_zip(out_dir: Path, root: Path = ROOT) -> Path:
    """Write the zip and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{plugin_version(root)}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in plugin_entries(root):
            if isinstance(source, Path):
                archive.write(source, name)
            else:
                archive.writestr(name, source)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    print(build_zip(args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
