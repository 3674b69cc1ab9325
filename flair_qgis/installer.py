"""The steps that create or repair the engine environment: venv, torch, the engine, a check.

Plain values in, argument lists out, so a dry run shows exactly what would run. Running them
streams pip's output to the Processing log and stops on cancel; a failed step is reported with
the lines of pip's output that name the cause.

The versions come from the engine source's `requirements/engine.txt` (the pinned set `make
requirements` writes) when it has one: torch and torchvision at their pins from the chosen torch
index (a folder of PyTorch's, or PyPI), then the engine with every other pin. A source without
that file (a wheel) is installed with whatever its own dependencies allow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .engine_locator import engine_environment, start_engine_process, venv_python

TORCH_INDEX = "https://download.pytorch.org/whl"
# a base URL replacing TORCH_INDEX: a mirror of PyTorch's index, or a test's loopback server
TORCH_INDEX_VARIABLE = "FLAIR_TORCH_INDEX"


def pytorch_index() -> str:
    """PyTorch's wheel index: the URL in FLAIR_TORCH_INDEX when it is set, else TORCH_INDEX."""
    return os.environ.get(TORCH_INDEX_VARIABLE, "").strip().rstrip("/") or TORCH_INDEX


class TorchChoice(NamedTuple):
    """A torch build the user can pick.

    `folder`: the build's folder in PyTorch's index ("cpu"); "" for PyPI's build, from the plan's
    own index (INDEX_URL, else pip's default); None to install no torch.
    """

    key: str
    label: str
    folder: str | None


PYPI_TORCH = TorchChoice(
    "pypi", "PyPI's default build (CUDA on Linux: about 5 GB with its NVIDIA libraries)", ""
)
# the order is the TORCH parameter's: new builds go at the end
TORCH_CHOICES: tuple[TorchChoice, ...] = (
    TorchChoice("cpu", "CPU only (smaller download, up to 0.5 GB less memory)", "cpu"),
    TorchChoice("cu126", "NVIDIA CUDA 12.6", "cu126"),
    TorchChoice("cu128", "NVIDIA CUDA 12.8", "cu128"),
    TorchChoice("skip", "Do not install torch (keep the environment's own)", None),
    PYPI_TORCH,
)


REQUIREMENTS_FILE = Path("requirements") / "engine.txt"
# the packages of a torch build (CUDA libraries, triton): they differ between the CPU and CUDA
# indexes, so they come with the torch installed, never from the engine's pins
_TORCH_BUILD = re.compile(r"triton|nvidia-.*|cuda-.*")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Step(NamedTuple):
    """One command of the installation, with what it is for and the variables it adds."""

    description: str
    command: list[str]
    env: tuple[tuple[str, str], ...] = ()


class InstallError(Exception):
    """A step failed; the message names the step and the lines of its output that say why."""


class PinnedRequirements(NamedTuple):
    """The pinned set split for the installer: torch's own pins, then the engine's."""

    torch: tuple[str, ...] = ()
    engine: tuple[str, ...] = ()


def read_pins(engine_source: Path) -> PinnedRequirements:
    """The pins of `<engine_source>/requirements/engine.txt`; none for a wheel or a folder
    without that file. Comments, options and a torch build's own packages are left out."""
    path = engine_source / REQUIREMENTS_FILE
    if not path.is_file():
        return PinnedRequirements()
    torch: list[str] = []
    engine: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        name = _NAME.match(line)
        if not name:  # blank, comment or an option such as --index-url
            continue
        canonical = re.sub(r"[-_.]+", "-", name.group()).lower()
        if canonical in ("torch", "torchvision"):
            torch.append(line)
        elif not _TORCH_BUILD.fullmatch(canonical):
            engine.append(line)
    return PinnedRequirements(tuple(torch), tuple(engine))


def find_base_python() -> Path | None:
    """A Python that can create the venv: QGIS's own interpreter, as docs/plugin.md says.

    In order: the interpreter the running Python reports (`sys._base_executable`, then
    `sys.executable`) when it is a Python inside the running installation
    (`sys.base_exec_prefix`); the interpreter in that installation's folder; and only then
    `pythonX.Y`, `python3` and `python` on the PATH. Embedded in QGIS, `sys.executable` is
    the QGIS executable or merely the first `python3` on the PATH, hence the folder check.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    home = Path(sys.base_exec_prefix)
    reported = [Path(p) for p in (getattr(sys, "_base_executable", ""), sys.executable) if p]
    candidates = [p for p in reported if home in p.parents]
    if os.name == "nt":
        candidates += [home / n for n in ("python.exe", "python3.exe")]
    else:
        candidates += [home / "bin" / n for n in (version, "python3")]
    on_path = (shutil.which(n) for n in (version, "python3", "python"))
    candidates += [Path(p) for p in on_path if p]
    for candidate in candidates:
        if "python" in candidate.name.lower() and candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class InstallPlan:
    """Where to install, from where, which torch and which pinned versions.

    pip honours the user's own configuration (proxy, mirror, certificates), except with
    `find_links`: the plan then means these wheels and nothing else, so pip runs with
    `--isolated --no-index` and `PIP_CONFIG_FILE` set to the null device, which ignore the PIP_*
    variables and every pip configuration file (a machine's own find-links, extra indexes or
    constraints would otherwise change what gets installed).
    """

    venv_dir: Path
    base_python: Path
    engine_source: Path
    torch: TorchChoice
    index_url: str = ""
    find_links: str = ""
    pins: PinnedRequirements = PinnedRequirements()
    torch_index: str = TORCH_INDEX

    @property
    def python(self) -> Path:
        return venv_python(self.venv_dir)

    @property
    def pytorch_index_url(self) -> str:
        """The folder of PyTorch's index that torch comes from; '' when torch comes from
        elsewhere (PyPI, the local wheels) or is not installed."""
        if self.find_links or not self.torch.folder:
            return ""
        return f"{self.torch_index}/{self.torch.folder}"

    @property
    def _pip_env(self) -> tuple[tuple[str, str], ...]:
        return (("PIP_CONFIG_FILE", os.devnull),) if self.find_links else ()

    def _pip(self, *packages: str, index_url: str | None = None) -> list[str]:
        command = [
            str(self.python),
            "-m",
            "pip",
            "install",
            "--upgrade",
            "--disable-pip-version-check",
            *packages,
        ]
        if self.find_links:
            return command + ["--isolated", "--no-index", "--find-links", self.find_links]
        if index_url:
            command += ["--index-url", index_url]
            if self.index_url:
                command += ["--extra-index-url", self.index_url]
        elif self.index_url:
            command += ["--index-url", self.index_url]
        return command

    def steps(self) -> list[Step]:
        """The commands in order; creating the venv is skipped when it exists (repair)."""
        steps: list[Step] = []
        if not self.python.exists():
            steps.append(
                Step(
                    f"Create the environment {self.venv_dir}",
                    [str(self.base_python), "-m", "venv", str(self.venv_dir)],
                )
            )
        if not self.find_links:
            steps.append(Step("Update pip", self._pip("pip")))
        if self.torch.folder is not None:
            torch = self.pins.torch or ("torch", "torchvision")
            steps.append(
                Step(
                    f"Install torch ({self.torch.label})",
                    self._pip(*torch, index_url=self.pytorch_index_url),
                    self._pip_env,
                )
            )
        steps.append(
            Step(
                "Install the FLAIR engine and its dependencies",
                self._pip(str(self.engine_source), *self.pins.engine),
                self._pip_env,
            )
        )
        # imports every dependency and prints the version: a half-done install fails here
        steps.append(Step("Check the engine", [str(self.python), "-m", "engine.health"]))
        steps.append(
            Step(
                "List installed packages",
                [
                    str(self.python),
                    "-m",
                    "pip",
                    "list",
                    "--disable-pip-version-check",
                    "--format=freeze",
                ],
            )
        )
        return steps


def run_step(
    step: Step,
    on_line: Callable[[str], None],
    is_cancelled: Callable[[], bool],
    poll_s: float = 0.2,
) -> list[str]:
    """Run one step, passing each output line to `on_line`; returns the output lines."""
    proc = start_engine_process(
        step.command, {**engine_environment(), **dict(step.env)}, merge_stderr=True
    )
    with proc:  # closes the pipe, whatever happens (no ResourceWarning)
        output = _follow(proc, step, on_line, is_cancelled, poll_s)
    if proc.wait() != 0:
        cause = pip_failure_cause(output) or "(no output)"
        raise InstallError(
            f"{step.description} failed (exit code {proc.returncode}):\n"
            + "\n".join(f"    {line}" for line in cause.splitlines())
        )
    return output


def _follow(
    proc: subprocess.Popen,
    step: Step,
    on_line: Callable[[str], None],
    is_cancelled: Callable[[], bool],
    poll_s: float,
) -> list[str]:
    """The step's output lines as they come, until it ends; terminates it on cancel."""
    lines: deque = deque()
    reader = threading.Thread(
        target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True
    )
    reader.start()
    output: list[str] = []
    while True:
        while lines:
            line = lines.popleft().rstrip()
            output.append(line)
            on_line(line)
        if proc.poll() is not None and not reader.is_alive() and not lines:
            return output
        if is_cancelled():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise InstallError(f"cancelled during: {step.description}")
        reader.join(timeout=poll_s)


# what pip says when it cannot install: the requirement nobody offers, a conflict, an error
_CAUSE = re.compile(
    r"^(error|fatal)\b|no matching distribution found|could not find a version that satisfies"
    r"|conflicting dependencies",
    re.IGNORECASE,
)
_CONFLICT = re.compile(r"^the conflict is caused by|^additionally, some packages", re.IGNORECASE)
# how pip says it cannot reach an index (repeated at every retry)
_NETWORK = re.compile(
    r"max retries exceeded|failed to establish a new connection|name or service not known"
    r"|temporary failure in name resolution|nodename nor servname|getaddrinfo failed"
    r"|network is unreachable|connection refused|timed out|could not fetch url|proxyerror"
    r"|certificate verify failed|sslerror",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"no matching distribution|could not find a version", re.IGNORECASE)
_WHERE = re.compile(r"^looking in (indexes|links):", re.IGNORECASE)
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*")
MAX_CAUSE_LINES = 12
MAX_CAUSE_LINE_CHARS = 300


def pip_failure_cause(lines: Sequence[str]) -> str:
    """The lines of a failed pip run that name the cause, one per line, in pip's order.

    Kept: `ERROR:` lines, "no matching distribution" and "could not find a version", a conflict
    and the lines that explain it, the first line saying an index could not be reached (pip
    repeats it at every retry) and, when pip found nothing or could not connect, where it looked.
    The last non-empty line always ends the list (the exception of a traceback). Deduplicated, at
    most MAX_CAUSE_LINES lines of MAX_CAUSE_LINE_CHARS characters; '' for empty output.
    """
    picked: list[str] = []
    where = ""
    network = in_conflict = False
    for raw in lines:
        line = _OBJECT_REPR.sub("", raw.strip())
        if in_conflict and line and raw[:1].isspace():
            picked.append(line)
            continue
        in_conflict = bool(_CONFLICT.search(line))
        if _WHERE.search(line):
            where = line
        elif _NETWORK.search(line):
            if not network or _CAUSE.search(line):
                picked.append(line)
            network = True
        elif in_conflict or _CAUSE.search(line):
            picked.append(line)
    if where and (network or any(_NOT_FOUND.search(line) for line in picked)):
        picked.insert(0, where)
    last = next((raw.strip() for raw in reversed(lines) if raw.strip()), "")
    if last:
        picked.append(_OBJECT_REPR.sub("", last))
    unique = [_shorten(line) for line in dict.fromkeys(picked)]
    if len(unique) > MAX_CAUSE_LINES:
        unique = unique[: MAX_CAUSE_LINES - 1] + unique[-1:]
    return "\n".join(unique)


def _shorten(line: str) -> str:
    if len(line) <= MAX_CAUSE_LINE_CHARS:
        return line
    return line[: MAX_CAUSE_LINE_CHARS - 1] + "…"


def installed_summary(freeze_lines: Sequence[str]) -> str:
    """The packages that matter to the user, from `pip list --format=freeze`."""
    wanted = (
        "flair-landcover",
        "flair_landcover",
        "torch",
        "torchvision",
        "segmentation-models-pytorch",
        "segmentation_models_pytorch",
        "rasterio",
        "numpy",
    )
    keep = [ln for ln in freeze_lines if ln.split("==")[0].lower() in wanted]
    return ", ".join(keep) if keep else "(no key packages listed)"
