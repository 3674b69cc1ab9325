"""Real QGIS, offscreen, with an isolated profile; fixtures made by the engine venv's generators.

Run with Debian's Python (it has QGIS's bindings):
    QT_QPA_PLATFORM=offscreen FLAIR_ENGINE_PYTHON=.venv/bin/python \\
        /usr/bin/python3 -m pytest tests/plugin -q
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE_HOME = Path(tempfile.mkdtemp(prefix="flair_qgis_profile_"))
# Isolate QGIS settings and profiles from the user's (also inherited by qgis_process runs).
os.environ["XDG_CONFIG_HOME"] = str(PROFILE_HOME / "config")
os.environ["XDG_DATA_HOME"] = str(PROFILE_HOME / "data")
os.environ.setdefault("XDG_RUNTIME_DIR", str(PROFILE_HOME / "runtime"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The engine's converted networks (OpenVINO, engine.runtime) go to the session's folder, never
# the user's cache; a network is converted once per session for each tile size.
os.environ["FLAIR_CACHE_DIR"] = str(PROFILE_HOME / "flair-cache")
Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)

ENGINE_PYTHON = os.environ.get("FLAIR_ENGINE_PYTHON") or str(REPO / ".venv" / "bin" / "python")
QGIS_PROCESS = "/usr/bin/qgis_process.bin"

for extra in ("/usr/share/qgis/python/plugins", str(REPO)):
    if extra not in sys.path:
        sys.path.insert(0 if extra == str(REPO) else len(sys.path), extra)

try:
    from qgis.core import QgsApplication
except ImportError:  # e.g. the engine venv's pytest over tests/: these need QGIS's Python
    QgsApplication = None
    collect_ignore_glob = ["test_*.py"]
    _APP = None
else:
    _APP = QgsApplication([], False)
    _APP.initQgis()
    from tests.plugin.strict_api import remove_unscoped_enum_aliases, strict_api_requested

    # before Processing and the plugin load, as QGIS 4 would be (strict_api.py says why)
    STRICT_API_REMOVED = remove_unscoped_enum_aliases() if strict_api_requested() else []
atexit.register(shutil.rmtree, PROFILE_HOME, True)


def engine_ready() -> bool:
    """True when the engine venv runs `python -m engine predict --help`."""
    try:
        proc = subprocess.run(
            [ENGINE_PYTHON, "-m", "engine", "predict", "--help"],
            capture_output=True,
            timeout=120,
            cwd=REPO,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


ENGINE_READY = _APP is not None and engine_ready()
needs_engine = pytest.mark.skipif(not ENGINE_READY, reason="engine CLI not available")


@pytest.fixture(scope="session")
def qgis_app() -> QgsApplication:
    """QGIS with Processing and the FLAIR provider registered."""
    from processing.core.Processing import Processing

    Processing.initialize()
    import flair_qgis

    plugin = flair_qgis.classFactory(None)
    plugin.initProcessing()
    yield _APP
    QgsApplication.processingRegistry().removeProvider("flair")
    del plugin


def generate(*args: str) -> None:
    """Run the fixture generator of the engine venv (QGIS's Python has no torch)."""
    subprocess.run(
        [ENGINE_PYTHON, "-m", "tests.fixtures.generate", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("flair_fixtures")


@pytest.fixture(scope="session")
def raster5(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "ortho5.tif"
    generate("raster", str(path), "--width", "320", "--height", "256", "--bands", "5")
    return path


@pytest.fixture(scope="session")
def raster4(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "ortho4.tif"
    generate("raster", str(path), "--width", "256", "--height", "256", "--bands", "4", "--alpha")
    return path


@pytest.fixture(scope="session")
def checkpoint5(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "unet5.pth"
    generate("checkpoint", str(path), "--channels", "5", "--logits", "19", "--layout", "flair-inc")
    return path


@pytest.fixture(scope="session")
def checkpoint3(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "unet3.pth"
    generate("checkpoint", str(path), "--channels", "3", "--logits", "19")
    return path


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory) -> Path:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_plugin_zip
    finally:
        sys.path.pop(0)
    return build_plugin_zip.build_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def installed_plugins(plugin_zip: Path, tmp_path_factory) -> Path:
    """An empty plugin folder with the zip unpacked into it."""
    import zipfile

    folder = tmp_path_factory.mktemp("plugins")
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(folder)
    return folder


def qgis_process(
    plugins: Path, *args: str, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run qgis_process.bin with the unpacked plugin enabled, in the isolated profile."""
    env = dict(os.environ, QGIS_PLUGINPATH=str(plugins), FLAIR_ENGINE_PYTHON=ENGINE_PYTHON)
    subprocess.run(
        [QGIS_PROCESS, "plugins", "enable", "flair_qgis"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return subprocess.run(
        [QGIS_PROCESS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
