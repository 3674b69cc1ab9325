"""Finding the engine's Python: environment variable, then plugin setting, then our own venv.

The engine runs in its own environment (see DESIGN.md), so the plugin only ever needs the path
of that environment's Python. A missing or broken engine never stops the provider from loading;
`require_engine` raises with a message that says exactly what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from qgis.core import QgsApplication, QgsProcessingException

from .settings import ENV_ENGINE_PYTHON, ENV_WEIGHTS_DIR, engine_python_setting, weights_dir

REPAIR = "run Install or repair the FLAIR engine"
# the progress text while the engine is found and checked (seconds on a session's first run)
CHECKING_TEXT = "Checking the FLAIR engine\u2026"
INSTALL_HINT = (
    "Run 'Install or repair the FLAIR engine' (flair:install_engine; Plugins > FLAIR menu or the "
    "Processing toolbox), or set the engine Python in Processing > Options > Providers > FLAIR "
    f"(the environment variable {ENV_ENGINE_PYTHON} wins) to the Python of an environment where "
    "the FLAIR engine is installed."
)


PLUGIN_DIR = Path(__file__).resolve().parent


class EngineLocation(NamedTuple):
    """Where the engine's Python was found and which rule found it.

    `pythonpath` is set when that Python has the engine's dependencies but not the engine
    package itself: the plugin's own copy of the engine source is then put on PYTHONPATH.
    """

    python: Path
    origin: str  # "environment", "setting" or "plugin environment"
    pythonpath: str = ""


def engine_source_dir() -> Path | None:
    """The engine source shipped with the plugin (`engine_src/` in the zip) or, in a
    development checkout, the repository root."""
    for candidate in (PLUGIN_DIR / "engine_src", PLUGIN_DIR.parent):
        if (candidate / "pyproject.toml").is_file() and (candidate / "engine").is_dir():
            return candidate
    return None


def default_venv_dir() -> Path:
    """The environment install_engine creates, inside the QGIS profile folder."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "flair_engine" / "venv"


def venv_python(venv: Path) -> Path:
    """The Python executable of a virtual environment on this platform."""
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def locate_engine() -> EngineLocation | None:
    """The engine's Python by precedence, or None when nothing is configured or installed."""
    from_env = os.environ.get(ENV_ENGINE_PYTHON, "").strip()
    if from_env:
        return EngineLocation(Path(from_env), "environment")
    from_setting = engine_python_setting().strip()
    if from_setting:
        return EngineLocation(Path(from_setting), "setting")
    own = venv_python(default_venv_dir())
    if own.exists():
        return EngineLocation(own, "plugin environment")
    return None


def engine_environment(pythonpath: str = "") -> dict[str, str]:
    """The environment for engine subprocesses.

    QGIS exports variables meant for its own Python and GDAL (PYTHONHOME on Windows, GDAL_DATA,
    PROJ_LIB); the engine's venv carries its own GDAL and PROJ in rasterio/pyproj wheels, so
    those variables are removed to keep the two stacks apart.
    """
    env = dict(os.environ)
    for key in (
        "PYTHONHOME",
        "PYTHONPATH",
        "GDAL_DATA",
        "GDAL_DRIVER_PATH",
        "PROJ_LIB",
        "PROJ_DATA",
        "PYTHONSTARTUP",
        "VIRTUAL_ENV",
    ):
        env.pop(key, None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    weights = weights_dir()
    if weights:  # the provider setting, unless the variable already says it
        env[ENV_WEIGHTS_DIR] = weights
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def neutral_cwd() -> str:
    """A working directory for subprocesses where no stray `engine` package can be imported."""
    return tempfile.gettempdir()


def subprocess_flags() -> int:
    """No console window for engine subprocesses on Windows."""
    return getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0


def start_engine_process(
    command: list[str], env: dict[str, str], merge_stderr: bool = False
) -> subprocess.Popen:
    """An engine (or pip) subprocess as the plugin runs them all: text lines in UTF-8, no
    stdin, a neutral working folder, no console window; stderr apart or merged into stdout."""
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
        env=env,
        cwd=neutral_cwd(),
        creationflags=subprocess_flags(),
    )


_checked: dict[tuple[str, float], EngineLocation] = {}
PROBE_MODULE = "engine.health"


def plugin_version() -> str:
    """The plugin's version from its metadata.txt (beside the package in the zip, else the
    repository root), or '' when it cannot be read."""
    for path in (PLUGIN_DIR / "metadata.txt", PLUGIN_DIR.parent / "metadata.txt"):
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "version":
                    return value.strip()
        except OSError:
            continue
    return ""


def _probe(
    python: Path, pythonpath: str, timeout_s: float, quick: bool = True
) -> subprocess.CompletedProcess:
    """`engine.health`: `quick` finds the packages without importing them (a fraction of a
    second; an engine older than the option runs the full check, slower but the same answer)."""
    try:
        return subprocess.run(
            [str(python), "-m", PROBE_MODULE, *(["--quick"] if quick else [])],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=engine_environment(pythonpath),
            cwd=neutral_cwd(),
            creationflags=subprocess_flags(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QgsProcessingException(
            f"The FLAIR engine Python {python} cannot be started ({exc}): {REPAIR}. {INSTALL_HINT}"
        ) from exc


def _health(proc: subprocess.CompletedProcess) -> dict | None:
    """The JSON object `engine.health` printed, or None when it printed none."""
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and "version" in report:
            return report
    return None


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {proc.returncode}"


def diagnose(python: Path, proc: subprocess.CompletedProcess, bundled: bool) -> str | None:
    """What is wrong with the engine behind a probe, as a message ending in what to do, or None
    when it is ready. `bundled`: the engine source is the plugin's own copy."""
    report = _health(proc)
    if report is None:
        if "No module named engine.health" in proc.stderr:
            return (
                f"The FLAIR engine at {python} is older than the plugin (it has no "
                f"engine.health): {REPAIR} to update it."
            )
        return (
            f"The FLAIR engine at {python} is missing or broken ({_last_line(proc)}): "
            f"{REPAIR}. {INSTALL_HINT}"
        )
    missing = report.get("missing") or {}
    if missing:
        names = ", ".join(sorted(missing))
        return (
            f"The FLAIR engine at {python} is incompletely installed: {names} cannot be "
            f"imported ({next(iter(missing.values()))}). An installation probably stopped "
            f"half way: {REPAIR} (Plugins > FLAIR land cover, or flair:install_engine)."
        )
    wanted = plugin_version()
    found = str(report.get("version", ""))
    if not bundled and wanted and found != wanted:
        return (
            f"The FLAIR engine at {python} is version {found}, the plugin {wanted}: "
            f"{REPAIR} to install the engine that matches the plugin."
        )
    return None


def check_engine(location: EngineLocation, timeout_s: float = 120.0) -> EngineLocation:
    """The location, checked (with `pythonpath` set when the bundled engine source is needed);
    raises QgsProcessingException saying what to do when the engine cannot be used.

    The probe (`python -m engine.health --quick`) finds the engine's dependencies and reads its
    version without importing them, so a half-installed environment is reported before any
    run, within a second; a broken wheel that only importing shows is diagnosed when a run
    fails unexpectedly (`diagnose_failure`)."""
    python = location.python
    if not python.is_file():
        raise QgsProcessingException(
            f"The FLAIR engine Python {python} (from {location.origin}) does not exist: "
            f"{REPAIR}. {INSTALL_HINT}"
        )
    key = (str(python), python.stat().st_mtime)
    if key in _checked:
        return _checked[key]
    proc = _probe(python, "", timeout_s)
    pythonpath = ""
    source = engine_source_dir()
    if proc.returncode != 0 and "No module named 'engine'" in proc.stderr and source:
        pythonpath = str(source)
        proc = _probe(python, pythonpath, timeout_s)
    problem = diagnose(python, proc, bundled=bool(pythonpath))
    if problem:
        raise QgsProcessingException(problem)
    checked = location._replace(pythonpath=pythonpath)
    _checked[key] = checked
    return checked


def diagnose_failure(python: str | Path, pythonpath: str = "") -> str | None:
    """After a run failed in a way the engine did not foresee (no structured error, or an
    internal one): the full check, every dependency imported, and what is wrong with the engine
    as a message ending in what to do; None when the engine itself is sound."""
    try:
        proc = _probe(Path(python), pythonpath, 120.0, quick=False)
    except QgsProcessingException as exc:
        return str(exc)
    return diagnose(Path(python), proc, bundled=bool(pythonpath))


def require_engine(feedback: Any = None) -> EngineLocation:
    """The engine's location, checked; raises with what to do when there is none.

    `feedback`: the run's, which says at once what the first seconds are spent on (the first
    check of a session starts the engine's Python, several seconds)."""
    if feedback is not None:
        feedback.setProgressText(CHECKING_TEXT)
    location = locate_engine()
    if location is None:
        raise QgsProcessingException(f"The FLAIR engine is not installed. {INSTALL_HINT}")
    return check_engine(location)
