"""`flair:install_engine`: the commands it runs, a real offline install, the error paths.

A real torch install takes minutes and gigabytes, so the install here is real but small: a venv
created with Debian's Python, torch skipped, and a stand-in engine wheel installed offline
(`FIND_LINKS` makes pip use `--no-index` and ignore the machine's pip configuration). The dry run
checks the torch commands and the pinned versions from requirements/engine.txt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException, QgsSettings

from flair_qgis.installer import read_pins
from flair_qgis.settings import KEY_ENGINE_PYTHON

from .conftest import REPO, qgis_process
from .helpers import RecordingFeedback

STUB_CLI = "def main():\n    return 0\n"
# the installer's last check runs `python -m engine.health` (every dependency imported)
STUB_HEALTH = 'print(\'{"version": "0.0.1", "packages": {}, "missing": {}, "ok": true}\')\n'


def _stub_engine_wheel(folder: Path) -> Path:
    """A minimal wheel of a package named flair-landcover providing `engine` and `engine.cli`."""
    wheel = folder / "flair_landcover-0.0.1-py3-none-any.whl"
    info = "flair_landcover-0.0.1.dist-info"
    files = {
        "engine/__init__.py": '__version__ = "0.0.1"\n',
        "engine/cli.py": STUB_CLI,
        "engine/health.py": STUB_HEALTH,
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
    results = processing.run(
        "flair:install_engine",
        {
            "TORCH": 1,
            "VENV_DIR": str(tmp_path / "venv"),
            "BASE_PYTHON": sys.executable,
            "DRY_RUN": True,
        },
    )
    commands = results["COMMANDS"].splitlines()
    assert commands[0] == f"{sys.executable} -m venv {tmp_path / 'venv'}"
    # in a checkout the engine source is the repository (in the zip: flair_qgis/engine_src),
    # whose pinned set gives torch's versions and the engine's
    pins = read_pins(REPO)
    torch_pins = " ".join(pins.torch)
    assert torch_pins.startswith("torch==") and " torchvision==" in torch_pins
    torch = next(c for c in commands if f" {torch_pins} " in c)
    assert "--index-url https://download.pytorch.org/whl/cu126" in torch
    engine = next(c for c in commands if "pip install" in c and f" {REPO} " in f"{c} ")
    assert f" {REPO} {' '.join(pins.engine)}" in engine
    assert any(p.startswith("numpy==") for p in pins.engine)
    assert " torch==" not in engine and " nvidia-" not in engine and " triton" not in engine
    assert "PIP_CONFIG_FILE" not in results["COMMANDS"]  # the user's pip configuration holds
    assert commands[-2].endswith(" -m engine.health")
    assert results["ENGINE_PYTHON"] == str(tmp_path / "venv" / "bin" / "python")
    assert not (tmp_path / "venv").exists()


def _venv_available() -> bool:
    """Debian's Python creates venvs only with python3-venv installed."""
    return (
        importlib.util.find_spec("ensurepip") is not None
        and subprocess.run(
            [sys.executable, "-m", "ensurepip", "--version"], capture_output=True, check=False
        ).returncode
        == 0
    )


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
        results = processing.run(
            "flair:install_engine",
            {
                "TORCH": 3,
                "VENV_DIR": str(venv),
                "BASE_PYTHON": sys.executable,
                "ENGINE_SOURCE": str(stub),
                "FIND_LINKS": str(wheels),
            },
            feedback=feedback,
        )
        assert (venv / "bin" / "python").exists()
        assert "flair-landcover==0.0.1" in results["INSTALLED"]
        assert settings.value(KEY_ENGINE_PYTHON, "") == str(venv / "bin" / "python")
        assert feedback.progress[-1] == 100.0
        # a second run repairs: the environment is reused, not created again
        again = processing.run(
            "flair:install_engine",
            {
                "TORCH": 3,
                "VENV_DIR": str(venv),
                "ENGINE_SOURCE": str(stub),
                "FIND_LINKS": str(wheels),
                "DRY_RUN": True,
            },
        )
        assert " -m venv " not in again["COMMANDS"]
        engine = next(c for c in again["COMMANDS"].splitlines() if str(stub) in c)
        assert engine.startswith("PIP_CONFIG_FILE=")
        assert f"--isolated --no-index --find-links {wheels}" in engine
    finally:
        if old:
            settings.setValue(KEY_ENGINE_PYTHON, old)
        else:
            settings.remove(KEY_ENGINE_PYTHON)


class ConsoleFeedback(RecordingFeedback):
    """Also keeps the console lines: the output of the steps."""

    def __init__(self) -> None:
        super().__init__()
        self.console: list[str] = []

    def pushConsoleInfo(self, info: str) -> None:  # noqa: N802
        self.console.append(info)


@needs_venv
def test_pip_failure_is_reported(qgis_app, tmp_path):
    """Offline with no torch wheel: the error names the step and carries pip's lines about
    torch, whatever pip's wording and whatever pip configuration the machine has."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    feedback = ConsoleFeedback()
    with pytest.raises(QgsProcessingException) as failure:
        processing.run(
            "flair:install_engine",
            {
                "TORCH": 0,
                "VENV_DIR": str(tmp_path / "venv"),
                "BASE_PYTHON": sys.executable,
                "ENGINE_SOURCE": str(_stub_engine_wheel(wheels)),
                "FIND_LINKS": str(wheels),
            },
            feedback=feedback,
        )
    step, failed, cause = str(failure.value).partition(" failed")
    assert failed and "Install torch" in step
    cause_lines = [line.strip() for line in cause.splitlines()[1:] if line.strip()]
    assert cause_lines
    assert all(any(line in out for out in feedback.console) for line in cause_lines)
    assert any("torch" in line for line in cause_lines)


def test_plugin_zip_carries_the_pinned_set(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as archive:
        pinned = archive.read("flair_qgis/engine_src/requirements/engine.txt").decode()
    assert pinned == (REPO / "requirements" / "engine.txt").read_text(encoding="utf-8")


def test_missing_engine_source(qgis_app, tmp_path):
    with pytest.raises(QgsProcessingException, match="engine source was not found"):
        processing.run(
            "flair:install_engine", {"ENGINE_SOURCE": str(tmp_path / "nothing"), "DRY_RUN": True}
        )


def test_qgis_creates_the_environment_with_its_own_python(installed_plugins, tmp_path, monkeypatch):
    """Embedded in QGIS, `sys.executable` is the first python3 on the PATH: a stray one there
    must not create the environment. The unpacked plugin's engine_src gives the pins."""
    stray = tmp_path / "bin" / "python3"
    stray.parent.mkdir()
    stray.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    stray.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stray.parent}{os.pathsep}{os.environ['PATH']}")
    proc = qgis_process(
        installed_plugins,
        "run",
        "flair:install_engine",
        "--",
        "TORCH=0",
        "DRY_RUN=true",
        f"VENV_DIR={tmp_path / 'venv'}",
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    python = Path(re.search(r"(\S+) -m venv ", proc.stdout).group(1))
    assert python != stray and "python" in python.name and python.is_file()
    assert Path(sys.base_exec_prefix) in python.parents  # the Python QGIS runs (Debian's)
    assert " ".join(read_pins(REPO).torch) in proc.stdout
