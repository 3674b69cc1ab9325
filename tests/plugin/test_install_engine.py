"""`flair:install_engine`: the commands it runs, a real offline install, the error paths.

A real torch install takes minutes and gigabytes, so the install here is real but small: a venv
created with Debian's Python, torch skipped, and a stand-in engine wheel installed offline
(`FIND_LINKS` makes pip use `--no-index`). The dry run checks the torch commands.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException, QgsSettings

from flair_qgis.settings import KEY_ENGINE_PYTHON

from .conftest import REPO
from .helpers import RecordingFeedback

STUB_CLI = "def main():\n    return 0\n"


def _stub_engine_wheel(folder: Path) -> Path:
    """A minimal wheel of a package named flair-landcover providing `engine` and `engine.cli`."""
    wheel = folder / "flair_landcover-0.0.1-py3-none-any.whl"
    info = "flair_landcover-0.0.1.dist-info"
    files = {
        "engine/__init__.py": '__version__ = "0.0.1"\n',
        "engine/cli.py": STUB_CLI,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: flair-landcover\nVersion: 0.0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def test_dry_run_lists_the_commands(qgis_app, tmp_path):
    results = processing.run("flair:install_engine", {
        "TORCH": 1, "VENV_DIR": str(tmp_path / "venv"), "BASE_PYTHON": sys.executable,
        "DRY_RUN": True})
    commands = results["COMMANDS"].splitlines()
    assert commands[0] == f"{sys.executable} -m venv {tmp_path / 'venv'}"
    torch = next(c for c in commands if " torch torchvision" in c)
    assert "--index-url https://download.pytorch.org/whl/cu126" in torch
    # in a checkout the engine source is the repository (in the zip: flair_qgis/engine_src)
    assert any("pip install" in c and f" {REPO} " in f"{c} " for c in commands)
    assert commands[-2].endswith("print('flair engine', engine.__version__)\"")
    assert results["ENGINE_PYTHON"] == str(tmp_path / "venv" / "bin" / "python")
    assert not (tmp_path / "venv").exists()


def _venv_available() -> bool:
    """Debian's Python creates venvs only with python3-venv installed."""
    return importlib.util.find_spec("ensurepip") is not None and subprocess.run(
        [sys.executable, "-m", "ensurepip", "--version"], capture_output=True, check=False
    ).returncode == 0


needs_venv = pytest.mark.skipif(not _venv_available(), reason="python3-venv not installed")


@needs_venv
def test_offline_install_into_a_new_environment(qgis_app, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    stub = _stub_engine_wheel(wheels)
    venv = tmp_path / "venv"
    feedback = RecordingFeedback()
    settings = QgsSettings()
    old = settings.value(KEY_ENGINE_PYTHON, "")
    try:
        results = processing.run("flair:install_engine", {
            "TORCH": 3, "VENV_DIR": str(venv), "BASE_PYTHON": sys.executable,
            "ENGINE_SOURCE": str(stub), "FIND_LINKS": str(wheels)}, feedback=feedback)
        assert (venv / "bin" / "python").exists()
        assert "flair-landcover==0.0.1" in results["INSTALLED"]
        assert settings.value(KEY_ENGINE_PYTHON, "") == str(venv / "bin" / "python")
        assert feedback.progress[-1] == 100.0
        # a second run repairs: the environment is reused, not created again
        again = processing.run("flair:install_engine", {
            "TORCH": 3, "VENV_DIR": str(venv), "ENGINE_SOURCE": str(stub),
            "FIND_LINKS": str(wheels), "DRY_RUN": True})
        assert " -m venv " not in again["COMMANDS"]
    finally:
        if old:
            settings.setValue(KEY_ENGINE_PYTHON, old)
        else:
            settings.remove(KEY_ENGINE_PYTHON)


@needs_venv
def test_pip_failure_is_reported(qgis_app, tmp_path):
    """Offline with no torch wheel: pip's own last line reaches the user."""
    wheels = tmp_path / "empty"
    wheels.mkdir()
    with pytest.raises(QgsProcessingException, match="Install torch.*failed:.*torch"):
        processing.run("flair:install_engine", {
            "TORCH": 0, "VENV_DIR": str(tmp_path / "venv"), "BASE_PYTHON": sys.executable,
            "ENGINE_SOURCE": str(_stub_engine_wheel(wheels)), "FIND_LINKS": str(wheels)})


def test_missing_engine_source(qgis_app, tmp_path):
    with pytest.raises(QgsProcessingException, match="engine source was not found"):
        processing.run("flair:install_engine", {
            "ENGINE_SOURCE": str(tmp_path / "nothing"), "DRY_RUN": True})
