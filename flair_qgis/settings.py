"""The plugin's settings: Processing > Options > Providers > FLAIR, environment variables win.

The settings live where QGIS keeps provider settings (`Processing/Configuration/<NAME>` in
QgsSettings, shown by the Processing options dialog once the provider registers them), so they
are read here without the Processing plugin's Python. Each has the name of the environment
variable that overrides it, because headless runs (qgis_process, CI, servers) are configured
through the environment, not through a profile.
"""

from __future__ import annotations

import os

from qgis.core import QgsSettings

SETTINGS_PREFIX = "flair_qgis"
PROCESSING_PREFIX = "Processing/Configuration"
KEY_EXPORT_PIXEL_LIMIT = f"{SETTINGS_PREFIX}/export_pixel_limit"
LEGACY_ENGINE_PYTHON = f"{SETTINGS_PREFIX}/engine_python"  # before the provider settings

ENV_ENGINE_PYTHON = "FLAIR_ENGINE_PYTHON"
ENV_WEIGHTS_DIR = "FLAIR_WEIGHTS_DIR"
ENV_DEVICE = "FLAIR_DEVICE"
# provider settings carry the names of the variables that override them
SETTING_ENGINE_PYTHON = ENV_ENGINE_PYTHON
SETTING_WEIGHTS_DIR = ENV_WEIGHTS_DIR
SETTING_DEVICE = ENV_DEVICE
KEY_ENGINE_PYTHON = f"{PROCESSING_PREFIX}/{SETTING_ENGINE_PYTHON}"
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")

DEFAULT_EXPORT_PIXEL_LIMIT = 250_000_000  # 10 km2 at 0.2 m


def provider_setting(name: str) -> str:
    """A provider setting as text ('' when unset); selections come back as their option."""
    value = QgsSettings().value(f"{PROCESSING_PREFIX}/{name}", "")
    if name == SETTING_DEVICE:
        try:
            return DEVICE_CHOICES[int(value)]
        except (TypeError, ValueError, IndexError):
            return DEVICE_CHOICES[0]
    return str(value or "").strip()


def engine_python_setting() -> str:
    """The engine's Python from the provider settings (or the older plugin key), or ''."""
    value = provider_setting(SETTING_ENGINE_PYTHON)
    if value:
        return value
    return str(QgsSettings().value(LEGACY_ENGINE_PYTHON, "", type=str) or "").strip()


def set_engine_python_setting(path: str) -> None:
    """Remember the engine's Python (install_engine calls this after a successful install)."""
    QgsSettings().setValue(KEY_ENGINE_PYTHON, path)
    try:  # the options dialog shows ProcessingConfig's copy: keep it in step when loaded
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return
    if SETTING_ENGINE_PYTHON in ProcessingConfig.settings:
        ProcessingConfig.settings[SETTING_ENGINE_PYTHON].value = path


def weights_dir() -> str:
    """The folder of downloaded weights: FLAIR_WEIGHTS_DIR, else the provider setting, or ''."""
    return os.environ.get(ENV_WEIGHTS_DIR, "").strip() or provider_setting(SETTING_WEIGHTS_DIR)


def default_device() -> str:
    """auto, cpu or cuda: FLAIR_DEVICE when valid, else the provider setting."""
    from_env = os.environ.get(ENV_DEVICE, "").strip().lower()
    return from_env if from_env in DEVICE_CHOICES else provider_setting(SETTING_DEVICE)


def export_pixel_limit() -> int:
    """Largest temporary export (pixels) the plugin writes for a non-file layer."""
    value = QgsSettings().value(KEY_EXPORT_PIXEL_LIMIT, DEFAULT_EXPORT_PIXEL_LIMIT, type=int)
    return int(value or DEFAULT_EXPORT_PIXEL_LIMIT)
