"""Processing > Options > Providers > FLAIR: engine Python, weights folder, default device.

The provider registers them with Processing's own ProcessingConfig; the plugin reads them from
QgsSettings; the environment variables of the same names win for headless runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from processing.core.ProcessingConfig import ProcessingConfig
from qgis.core import QgsApplication, QgsSettings

from flair_qgis import settings
from flair_qgis.engine_locator import EngineLocation, engine_environment, locate_engine


@pytest.fixture()
def saved_settings(monkeypatch):
    """Each FLAIR setting restored afterwards; the variables removed for the test."""
    store = QgsSettings()
    keys = [
        f"{settings.PROCESSING_PREFIX}/{name}"
        for name in (
            settings.SETTING_ENGINE_PYTHON,
            settings.SETTING_WEIGHTS_DIR,
            settings.SETTING_DEVICE,
        )
    ]
    old = {key: store.value(key) for key in keys}
    for variable in (settings.ENV_ENGINE_PYTHON, settings.ENV_WEIGHTS_DIR, settings.ENV_DEVICE):
        monkeypatch.delenv(variable, raising=False)
    yield store
    for key, value in old.items():
        if value is None:
            store.remove(key)
        else:
            store.setValue(key, value)


def test_provider_registers_its_settings_page(qgis_app):
    assert QgsApplication.processingRegistry().providerById("flair") is not None
    page = ProcessingConfig.getSettings().get("FLAIR", [])
    assert {s.name for s in page} == {"FLAIR_ENGINE_PYTHON", "FLAIR_WEIGHTS_DIR", "FLAIR_DEVICE"}
    device = next(s for s in page if s.name == "FLAIR_DEVICE")
    assert device.options == ["auto", "cpu", "cuda"]


def test_settings_from_the_options_dialog_are_used(qgis_app, saved_settings, tmp_path):
    python = tmp_path / "python"
    python.write_text("")  # the dialog accepts existing files only
    # what the options dialog does when the user saves the page
    ProcessingConfig.setSettingValue("FLAIR_ENGINE_PYTHON", str(python))
    ProcessingConfig.setSettingValue("FLAIR_WEIGHTS_DIR", str(tmp_path))
    ProcessingConfig.setSettingValue("FLAIR_DEVICE", 1)  # a selection is stored by index
    assert locate_engine() == EngineLocation(python, "setting")
    assert engine_environment()["FLAIR_WEIGHTS_DIR"] == str(tmp_path)
    assert settings.default_device() == "cpu"


def test_environment_variables_win(qgis_app, saved_settings, tmp_path, monkeypatch):
    (tmp_path / "from_setting").write_text("")
    ProcessingConfig.setSettingValue("FLAIR_ENGINE_PYTHON", str(tmp_path / "from_setting"))
    ProcessingConfig.setSettingValue("FLAIR_WEIGHTS_DIR", str(tmp_path))
    ProcessingConfig.setSettingValue("FLAIR_DEVICE", 1)
    monkeypatch.setenv("FLAIR_ENGINE_PYTHON", "/from/env/python")
    monkeypatch.setenv("FLAIR_WEIGHTS_DIR", "/from/env/weights")
    monkeypatch.setenv("FLAIR_DEVICE", "cuda")
    assert locate_engine() == EngineLocation(Path("/from/env/python"), "environment")
    assert engine_environment()["FLAIR_WEIGHTS_DIR"] == "/from/env/weights"
    assert settings.default_device() == "cuda"
