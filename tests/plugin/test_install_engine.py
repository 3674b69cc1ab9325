"""`flair:install_engine`: the commands it runs, a real offline install, the error paths.

A real torch install takes minutes and gigabytes, so the install here is real but small: a venv
created with Debian's Python, torch skipped, and a stand-in engine wheel installed offline
(`FIND_LINKS` makes pip use `--no-index` and ignore the machine's pip configuration). The dry run
checks the torch commands and the pinned versions from requirements/engine.txt.

PyTorch's index is asked before pip runs, in a dry run too; FLAIR_TORCH_INDEX points it at a
loopback HTTP server (reachable) or a closed loopback port (unreachable), never the internet.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import processing
import pytest
from qgis.core import QgsApplication, QgsProcessingException, QgsSettings

from flair_qgis.algorithms.install_engine import LABELS
from flair_qgis.installer import PYPI_TORCH, TORCH_CHOICES, read_pins
from flair_qgis.settings import KEY_ENGINE_PYTHON

from .conftest import REPO, qgis_process
from .helpers import RecordingFeedback
from .index_server import closed_port_url, serve_index

CPU, SKIP, PYPI = ([c.key for c in TORCH_CHOICES].index(key) for key in ("cpu", "skip", "pypi"))
FALLBACK_LABEL = LABELS["TORCH_FROM_PYPI_IF_UNREACHABLE"]


@pytest.fixture(autouse=True)
def _loopback_without_proxy(monkeypatch):
    """The loopback servers are asked directly, whatever proxy the machine's variables name."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture()
def torch_index(monkeypatch):
    """A loopback index answering 200 for torch, named by FLAIR_TORCH_INDEX."""
    with serve_index(200) as index:
        monkeypatch.setenv("FLAIR_TORCH_INDEX", index.url)
        yield index


@pytest.fixture()
def unreachable_torch_index(monkeypatch) -> str:
    """FLAIR_TORCH_INDEX naming a closed loopback port: every connection is refused."""
    url = closed_port_url()
    monkeypatch.setenv("FLAIR_TORCH_INDEX", url)
    return url


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


def test_dry_run_lists_the_commands(qgis_app, tmp_path, torch_index):
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:install_engine",
        {
            "TORCH": 1,
            "VENV_DIR": str(tmp_path / "venv"),
            "BASE_PYTHON": sys.executable,
            "DRY_RUN": True,
        },
        feedback=feedback,
    )
    assert torch_index.paths == ["/cu126/torch/"]  # asked in a dry run too
    commands = results["COMMANDS"].splitlines()
    assert commands[0] == f"{sys.executable} -m venv {tmp_path / 'venv'}"
    # in a checkout the engine source is the repository (in the zip: flair_qgis/engine_src),
    # whose pinned set gives torch's versions and the engine's
    pins = read_pins(REPO)
    torch_pins = " ".join(pins.torch)
    assert torch_pins.startswith("torch==") and " torchvision==" in torch_pins
    torch = next(c for c in commands if f" {torch_pins} " in c)
    assert f"--index-url {torch_index.url}/cu126" in torch
    engine = next(c for c in commands if "pip install" in c and f" {REPO} " in f"{c} ")
    assert f" {REPO} {' '.join(pins.engine)}" in engine
    assert any(p.startswith("numpy==") for p in pins.engine)
    assert " torch==" not in engine and " nvidia-" not in engine and " triton" not in engine
    assert "PIP_CONFIG_FILE" not in results["COMMANDS"]  # the user's pip configuration holds
    assert commands[-2].endswith(" -m engine.health")
    assert results["ENGINE_PYTHON"] == str(tmp_path / "venv" / "bin" / "python")
    assert not (tmp_path / "venv").exists()
    # QGIS prints COMMANDS with the results ("Results: {...}" here): the algorithm's own log
    # names the steps, not the commands again
    log = [line for line in feedback.commands + feedback.infos if not line.startswith("Results:")]
    assert not any(torch_pins in line for line in log)
    assert any("Install torch (NVIDIA CUDA 12.6)" in line for line in log)


def test_an_unreachable_torch_index_stops_at_once_in_one_line(
    qgis_app, tmp_path, unreachable_torch_index
):
    """Measured: 0.05 s for the whole dry run; pip would retry for minutes."""
    start = time.monotonic()
    with pytest.raises(QgsProcessingException) as failure:
        processing.run(
            "flair:install_engine",
            {"TORCH": CPU, "VENV_DIR": str(tmp_path / "venv"), "DRY_RUN": True},
        )
    assert time.monotonic() - start < 3.0
    message = str(failure.value)
    first = message.splitlines()[0]
    assert first.startswith(
        f"PyTorch's index {unreachable_torch_index}/cpu cannot be reached (connection refused): "
    )
    assert f'"{PYPI_TORCH.label}"' in first and f'"{FALLBACK_LABEL}"' in first
    assert "TORCH_FROM_PYPI_IF_UNREACHABLE" not in message and "Retrying" not in message


def test_an_unreachable_torch_index_falls_back_to_pypi_when_allowed(
    qgis_app, tmp_path, unreachable_torch_index
):
    feedback = RecordingFeedback()
    results = processing.run(
        "flair:install_engine",
        {
            "TORCH": CPU,
            "TORCH_FROM_PYPI_IF_UNREACHABLE": True,
            "VENV_DIR": str(tmp_path / "venv"),
            "DRY_RUN": True,
        },
        feedback=feedback,
    )
    torch_pins = " ".join(read_pins(REPO).torch)
    (torch,) = (c for c in results["COMMANDS"].splitlines() if f" {torch_pins}" in c)
    assert unreachable_torch_index not in results["COMMANDS"]
    assert "--index-url" not in torch  # pip's own default index: PyPI
    said = [line for line in feedback.infos if unreachable_torch_index in line]
    assert said == [
        f"PyTorch's index {unreachable_torch_index}/cpu cannot be reached (connection refused): "
        "installing PyPI's torch instead (a larger download)."
    ]


@pytest.mark.parametrize(
    "choice", [pytest.param(PYPI, id="pypi"), pytest.param(SKIP, id="skip"), "wheels"]
)
def test_torch_not_from_pytorchs_index_does_not_ask_it(
    qgis_app, tmp_path, unreachable_torch_index, choice
):
    """PyPI's build, no torch, or local wheels: the unreachable index is never asked."""
    parameters = {"TORCH": choice, "VENV_DIR": str(tmp_path / "venv"), "DRY_RUN": True}
    if choice == "wheels":
        parameters.update(TORCH=CPU, FIND_LINKS=str(tmp_path))
    results = processing.run("flair:install_engine", parameters)
    assert unreachable_torch_index not in results["COMMANDS"]
    if choice == PYPI:
        mirror = "https://mirror.example.org/simple"
        results = processing.run("flair:install_engine", {**parameters, "INDEX_URL": mirror})
        torch = next(c for c in results["COMMANDS"].splitlines() if " torch" in c)
        assert torch.endswith(f"--index-url {mirror}")


def test_help_names_the_parameters_by_their_labels(qgis_app):
    alg = QgsApplication.processingRegistry().algorithmById("flair:install_engine")
    help_text = alg.shortHelpString()
    for param in alg.parameterDefinitions():
        assert f"<b>{param.description()}</b>: " in help_text
        assert not re.search(rf"\b{param.name()}\b", help_text), param.name()
        assert param.help(), f"{param.name()} has no help text"
    assert alg.parameterDefinition("TORCH").options()[PYPI] == PYPI_TORCH.label
    assert alg.parameterDefinition("TORCH_FROM_PYPI_IF_UNREACHABLE").defaultValue() is False


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


def test_qgis_creates_the_environment_with_its_own_python(
    installed_plugins, tmp_path, monkeypatch, torch_index
):
    """Embedded in QGIS, `sys.executable` is the first python3 on the PATH: a stray one there
    must not create the environment. The unpacked plugin's engine_src gives the pins, printed
    once (in the results)."""
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
    pins = read_pins(REPO)
    assert proc.stdout.count(" ".join(pins.torch)) == 1
    assert proc.stdout.count(" ".join(pins.engine)) == 1
    assert torch_index.paths == ["/cpu/torch/"]


def test_qgis_process_stops_on_an_unreachable_torch_index_unless_told(
    installed_plugins, tmp_path, unreachable_torch_index
):
    """Headless, the fallback is the parameter TORCH_FROM_PYPI_IF_UNREACHABLE."""
    run = ("run", "flair:install_engine", "--", "TORCH=0", "DRY_RUN=true")
    venv = f"VENV_DIR={tmp_path / 'venv'}"
    proc = qgis_process(installed_plugins, *run, venv, timeout=180)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"PyTorch's index {unreachable_torch_index}/cpu cannot be reached" in output
    assert "Retrying" not in output
    proc = qgis_process(
        installed_plugins, *run, venv, "TORCH_FROM_PYPI_IF_UNREACHABLE=true", timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installing PyPI's torch instead" in proc.stdout
    assert f"{unreachable_torch_index}/cpu --" not in proc.stdout
