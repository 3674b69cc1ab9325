"""The plugin's settings keys (QgsSettings) and the environment variables that override them."""

from __future__ import annotations

from qgis.core import QgsSettings

SETTINGS_PREFIX = "flair_qgis"
KEY_ENGINE_PYTHON = f"{SETTINGS_PREFIX}/engine_python"
KEY_EXPORT_PIXEL_LIMIT = f"{SETTINGS_PREFIX}/export_pixel_limit"

ENV_ENGINE_PYTHON = "FLAIR_ENGINE_PYTHON"

DEFAULT_EXPORT_PIXEL_LIMIT = 250_000_000  # 10 km2 at 0.2 m


def engine_python_setting() -> str:
    """The engine's Python as set in the plugin settings, or ''."""
    return str(QgsSettings().value(KEY_ENGINE_PYTHON, "", type=str) or "")


def set_engine_python_setting(path: str) -> None:
    """Remember the engine's Python (install_engine calls this after a successful install)."""
    QgsSettings().setValue(KEY_ENGINE_PYTHON, path)


def export_pixel_limit() -> int:
    """Largest temporary export (pixels) the plugin writes for a non-file layer."""
    value = QgsSettings().value(KEY_EXPORT_PIXEL_LIMIT, DEFAULT_EXPORT_PIXEL_LIMIT, type=int)
    return int(value or DEFAULT_EXPORT_PIXEL_LIMIT)
