"""Finding the engine, and the messages when it is missing or broken."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException, QgsSettings

from flair_qgis import engine_locator
from flair_qgis.engine_locator import EngineLocation, check_engine, locate_engine
from flair_qgis.settings import KEY_ENGINE_PYTHON

from .conftest import ENGINE_PYTHON, REPO


@pytest.fixture()
def no_setting():
    settings = QgsSettings()
    old = settings.value(KEY_ENGINE_PYTHON, "")
    settings.remove(KEY_ENGINE_PYTHON)
    yield settings
    if old:
        settings.setValue(KEY_ENGINE_PYTHON, old)
    else:
        settings.remove(KEY_ENGINE_PYTHON)


def test_environment_variable_wins(qgis_app, monkeypatch, no_setting):
    no_setting.setValue(KEY_ENGINE_PYTHON, "/from/setting/python")
    monkeypatch.setenv("FLAIR_ENGINE_PYTHON", "/from/env/python")
    assert locate_engine() == EngineLocation(Path("/from/env/python"), "environment")
    monkeypatch.delenv("FLAIR_ENGINE_PYTHON")
    assert locate_engine() == EngineLocation(Path("/from/setting/python"), "setting")


def test_plugin_environment_last(qgis_app, monkeypatch, no_setting, tmp_path):
    monkeypatch.delenv("FLAIR_ENGINE_PYTHON", raising=False)
    monkeypatch.setattr(engine_locator, "default_venv_dir", lambda: tmp_path / "venv")
    assert locate_engine() is None
    python = engine_locator.venv_python(tmp_path / "venv")
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert locate_engine() == EngineLocation(python, "plugin environment")


def test_missing_engine_fails_at_once_with_what_to_do(
    qgis_app, monkeypatch, no_setting, tmp_path, raster5
):
    monkeypatch.delenv("FLAIR_ENGINE_PYTHON", raising=False)
    monkeypatch.setattr(engine_locator, "default_venv_dir", lambda: tmp_path / "none")
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover", {"INPUT": str(raster5), "OUTPUT": str(tmp_path / "out.tif")}
        )
    message = str(err.value)
    assert "not installed" in message
    assert "Install or repair the FLAIR engine" in message and "FLAIR_ENGINE_PYTHON" in message
    assert not (tmp_path / "out.tif").exists()


def test_engine_python_that_does_not_exist(qgis_app, monkeypatch, tmp_path, raster5):
    monkeypatch.setenv("FLAIR_ENGINE_PYTHON", str(tmp_path / "nowhere" / "python"))
    with pytest.raises(QgsProcessingException, match="does not exist.*flair:install_engine"):
        processing.run(
            "flair:landcover", {"INPUT": str(raster5), "OUTPUT": str(tmp_path / "out.tif")}
        )


def test_broken_engine_says_why(qgis_app, tmp_path):
    """A Python where `import engine` fails for another reason than a missing package."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import torch_is_not_here' \"$@\"\n")
    fake.chmod(0o755)
    with pytest.raises(QgsProcessingException) as err:
        check_engine(EngineLocation(fake, "environment"))
    assert "missing or broken" in str(err.value) and "torch_is_not_here" in str(err.value)
    assert "Install or repair the FLAIR engine" in str(err.value)


def test_engine_source_is_used_when_the_package_is_not_installed(qgis_app):
    """The dev venv has the dependencies; the engine package comes from the plugin's copy."""
    checked = check_engine(EngineLocation(Path(ENGINE_PYTHON), "environment"))
    assert checked.python == Path(ENGINE_PYTHON)
    if checked.pythonpath:
        assert (Path(checked.pythonpath) / "engine" / "__init__.py").exists()


def _bare_venv(folder: Path) -> Path:
    """A real venv of Debian's Python without any package (an install that stopped after
    creating the environment): no numpy, no rasterio, no torch, no engine."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder / "bin" / "python"


def test_half_installed_engine_asks_for_a_repair(qgis_app, monkeypatch, tmp_path, raster5):
    """The engine source is found (the plugin's copy) but its libraries are not: the message
    names them and the fix, instead of an "unexpected ModuleNotFoundError, report it"."""
    python = _bare_venv(tmp_path / "half")
    monkeypatch.setenv("FLAIR_ENGINE_PYTHON", str(python))
    with pytest.raises(QgsProcessingException) as err:
        processing.run(
            "flair:landcover", {"INPUT": str(raster5), "OUTPUT": str(tmp_path / "out.tif")}
        )
    message = str(err.value)
    assert "incompletely installed" in message
    assert "numpy" in message and "rasterio" in message and "torch" in message
    assert "run Install or repair the FLAIR engine" in message
    assert "report it" not in message
    assert not (tmp_path / "out.tif").exists()


def test_engine_health_reports_version_and_packages(qgis_app):
    """The probe of a complete engine: its version is the plugin's, every dependency imports."""
    proc = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine.health"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] and not report["missing"]
    assert report["version"] == engine_locator.plugin_version()
    assert {"numpy", "rasterio", "torch", "segmentation-models-pytorch"} <= set(report["packages"])


def test_the_quick_probe_finds_the_same_packages_without_importing_them(qgis_app):
    """`--quick` (before a session's first run): the same versions as the full check, in a
    fraction of its time, torch never imported."""
    code = (
        "import json, sys; from engine import health; q = health.check_quick(); "
        "print(json.dumps([q.packages, q.missing, 'torch' in sys.modules]))"
    )
    quick = subprocess.run(
        [ENGINE_PYTHON, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    packages, missing, imported_torch = json.loads(quick.stdout)
    full = subprocess.run(
        [ENGINE_PYTHON, "-m", "engine.health"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    imported = json.loads(full.stdout)["packages"]  # __version__ may add a local tag (+cu130)
    assert set(packages) == set(imported) and not missing
    assert all(imported[name].startswith(version) for name, version in packages.items())
    assert not imported_torch


def test_a_missing_package_is_found_by_the_quick_probe(qgis_app):
    code = (
        "import json; from engine import health; "
        "q = health.check_quick((('numpy', 'numpy'), ('not_a_module_x', 'not-a-dist-x'))); "
        "print(json.dumps(q.missing))"
    )
    proc = subprocess.run(
        [ENGINE_PYTHON, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert list(json.loads(proc.stdout)) == ["not-a-dist-x"]


def _probe_result(stdout: str, stderr: str = "", code: int = 0):
    return subprocess.CompletedProcess(["python"], code, stdout, stderr)


def test_engine_of_another_version_asks_for_a_repair():
    report = {"version": "0.0.1", "packages": {}, "missing": {}, "ok": True}
    message = engine_locator.diagnose(
        Path("/env/python"), _probe_result(json.dumps(report)), bundled=False
    )
    assert "version 0.0.1" in message and engine_locator.plugin_version() in message
    assert "run Install or repair the FLAIR engine" in message
    # the plugin's own engine source: same version by construction
    assert (
        engine_locator.diagnose(
            Path("/env/python"), _probe_result(json.dumps(report)), bundled=True
        )
        is None
    )


def test_engine_without_the_probe_is_older_than_the_plugin():
    proc = _probe_result("", "/env/python: No module named engine.health\n", 1)
    message = engine_locator.diagnose(Path("/env/python"), proc, bundled=False)
    assert "older than the plugin" in message and "Install or repair" in message
