"""The steps that create or repair the engine environment: venv, torch, the engine, a check.

Plain values in, argument lists out, so a dry run shows exactly what would run. Running them
streams pip's output to the Processing log and stops on cancel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .engine_locator import (
    engine_environment,
    neutral_cwd,
    subprocess_flags,
    venv_python,
)

TORCH_INDEX = "https://download.pytorch.org/whl"


class TorchChoice(NamedTuple):
    """A torch build the user can pick."""

    key: str
    label: str
    index_url: str | None  # None: do not install torch


TORCH_CHOICES: tuple[TorchChoice, ...] = (
    TorchChoice("cpu", "CPU only (smaller download)", f"{TORCH_INDEX}/cpu"),
    TorchChoice("cu126", "NVIDIA CUDA 12.6", f"{TORCH_INDEX}/cu126"),
    TorchChoice("cu128", "NVIDIA CUDA 12.8", f"{TORCH_INDEX}/cu128"),
    TorchChoice("skip", "Do not install torch (keep the environment's own)", None),
)


class Step(NamedTuple):
    """One command of the installation, with what it is for."""

    description: str
    command: list[str]


class InstallError(Exception):
    """A step failed; the message names the step and pip's last line."""


def find_base_python() -> Path | None:
    """A Python that can create the venv: QGIS's own interpreter, not the QGIS executable."""
    candidates = [getattr(sys, "_base_executable", ""), sys.executable]
    if os.name == "nt":
        candidates += [str(Path(sys.exec_prefix) / n) for n in ("python.exe", "python3.exe")]
    candidates += [shutil.which("python3") or "", shutil.which("python") or ""]
    for candidate in candidates:
        if candidate and "python" in Path(candidate).name.lower() and Path(candidate).is_file():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class InstallPlan:
    """Where to install, from where, and which torch."""

    venv_dir: Path
    base_python: Path
    engine_source: Path
    torch: TorchChoice
    index_url: str = ""
    find_links: str = ""

    @property
    def python(self) -> Path:
        return venv_python(self.venv_dir)

    def _pip(self, *packages: str, index_url: str | None = None) -> list[str]:
        command = [str(self.python), "-m", "pip", "install", "--upgrade",
                   "--disable-pip-version-check", *packages]
        if self.find_links:
            return command + ["--no-index", "--find-links", self.find_links]
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
            steps.append(Step(f"Create the environment {self.venv_dir}",
                              [str(self.base_python), "-m", "venv", str(self.venv_dir)]))
        if not self.find_links:
            steps.append(Step("Update pip", self._pip("pip")))
        if self.torch.index_url is not None:
            steps.append(Step(f"Install torch ({self.torch.label})",
                              self._pip("torch", "torchvision", index_url=self.torch.index_url)))
        steps.append(Step("Install the FLAIR engine and its dependencies",
                          self._pip(str(self.engine_source))))
        steps.append(Step("Check the engine", [
            str(self.python), "-c",
            "import engine, engine.cli; print('flair engine', engine.__version__)"]))
        steps.append(Step("List installed packages", [
            str(self.python), "-m", "pip", "list", "--disable-pip-version-check",
            "--format=freeze"]))
        return steps


def run_step(step: Step, on_line: Callable[[str], None], is_cancelled: Callable[[], bool],
             poll_s: float = 0.2) -> list[str]:
    """Run one step, passing each output line to `on_line`; returns the output lines."""
    proc = subprocess.Popen(
        step.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, encoding="utf-8", errors="replace", env=engine_environment(),
        cwd=neutral_cwd(), creationflags=subprocess_flags(),
    )
    lines: deque = deque()
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    output: list[str] = []
    while True:
        while lines:
            line = lines.popleft().rstrip()
            output.append(line)
            on_line(line)
        if proc.poll() is not None and not reader.is_alive() and not lines:
            break
        if is_cancelled():
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise InstallError(f"cancelled during: {step.description}")
        reader.join(timeout=poll_s)
    if proc.wait() != 0:
        last = next((ln for ln in reversed(output) if ln.strip()), f"exit code {proc.returncode}")
        raise InstallError(f"{step.description} failed: {last}")
    return output


def installed_summary(freeze_lines: Sequence[str]) -> str:
    """The packages that matter to the user, from `pip list --format=freeze`."""
    wanted = ("flair-landcover", "flair_landcover", "torch", "torchvision",
              "segmentation-models-pytorch", "segmentation_models_pytorch", "rasterio", "numpy")
    keep = [ln for ln in freeze_lines if ln.split("==")[0].lower() in wanted]
    return ", ".join(keep) if keep else "(no key packages listed)"
