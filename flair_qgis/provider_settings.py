"""The FLAIR page of Processing > Options > Providers: engine Python, weights folder, device.

Registered by the provider's `load()` through Processing's own ProcessingConfig, which shows
them in the options dialog and stores them under `Processing/Configuration/<NAME>`, where
`settings.py` reads them (the environment variables of the same names win).
"""

from __future__ import annotations

from .icons import plugin_icon
from .settings import DEVICE_CHOICES, SETTING_DEVICE, SETTING_ENGINE_PYTHON, SETTING_WEIGHTS_DIR

GROUP = "FLAIR"


def _config():
    """Processing's ProcessingConfig and Setting, or None outside the Processing plugin."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None
    return ProcessingConfig, Setting


def register_settings() -> bool:
    """Add the FLAIR settings to the Processing options; False when Processing is absent."""
    found = _config()
    if found is None:
        return False
    config, setting = found
    config.setGroupIcon(GROUP, plugin_icon())
    for item in (
        setting(
            GROUP,
            SETTING_ENGINE_PYTHON,
            "Engine Python (empty: the environment 'Install or repair the FLAIR engine' "
            "created; the variable FLAIR_ENGINE_PYTHON wins)",
            "",
            valuetype=setting.FILE,
        ),
        setting(
            GROUP,
            SETTING_WEIGHTS_DIR,
            "Folder of downloaded model weights: model checkpoints (.pth/.ckpt/.safetensors) "
            "under their official file names (the variable FLAIR_WEIGHTS_DIR wins)",
            "",
            valuetype=setting.FOLDER,
        ),
        setting(
            GROUP,
            SETTING_DEVICE,
            "Default device (auto: CUDA when available, else the CPU; FLAIR_DEVICE wins)",
            DEVICE_CHOICES[0],
            valuetype=setting.SELECTION,
            options=list(DEVICE_CHOICES),
        ),
    ):
        config.addSetting(item)
    config.readSettings()
    return True


def unregister_settings() -> None:
    """Remove the FLAIR settings from the Processing options (the stored values stay)."""
    found = _config()
    if found is None:
        return
    config = found[0]
    for name in (SETTING_ENGINE_PYTHON, SETTING_WEIGHTS_DIR, SETTING_DEVICE):
        if name in config.settings:
            config.removeSetting(name)
