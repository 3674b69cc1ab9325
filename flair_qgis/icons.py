"""Paths of the plugin's icons (inside the plugin folder, or the repository's resources/)."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtGui import QIcon

PLUGIN_DIR = Path(__file__).resolve().parent


def icon_path(name: str = "flair.svg") -> Path:
    """The icon file: `<plugin>/resources/<name>` when installed, else `<repo>/resources/`."""
    for folder in (PLUGIN_DIR / "resources", PLUGIN_DIR.parent / "resources"):
        if (folder / name).exists():
            return folder / name
    return PLUGIN_DIR / "resources" / name


def plugin_icon() -> QIcon:
    """The FLAIR icon (an empty icon if the file is missing)."""
    path = icon_path()
    return QIcon(str(path)) if path.exists() else QIcon()
