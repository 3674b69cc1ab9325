"""`flair:install_engine`: create or repair the engine's own Python environment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)

from ..compat import FILE_FOLDER, FLAG_ADVANCED
from ..engine_locator import default_venv_dir, engine_source_dir
from ..engine_runner import format_command
from ..index_probe import PROBE_TIMEOUT_S, probe_index
from ..installer import (
    PYPI_TORCH,
    TORCH_CHOICES,
    TORCH_INDEX,
    TORCH_INDEX_VARIABLE,
    InstallError,
    InstallPlan,
    Step,
    find_base_python,
    installed_summary,
    pytorch_index,
    read_pins,
    run_step,
)
from ..settings import set_engine_python_setting
from .base import FlairAlgorithm

# the form's labels: the help and the messages name parameters by them, as the user sees them
LABELS = {
    "TORCH": "Torch build",
    "TORCH_FROM_PYPI_IF_UNREACHABLE": (
        "If PyTorch's index cannot be reached, install PyPI's torch instead (larger download)"
    ),
    "VENV_DIR": "Environment folder",
    "BASE_PYTHON": "Base Python (executable path)",
    "ENGINE_SOURCE": "Engine source (folder or wheel path)",
    "INDEX_URL": "Package index URL",
    "FIND_LINKS": "Local wheel folder (offline install)",
    "DRY_RUN": "Only show the commands (dry run)",
}


def _help(venv_default: Path) -> dict[str, str]:
    """Each parameter's help, by its name: the dialog's tooltips, qgis_process's help."""
    return {
        "TORCH": "CPU only, a CUDA build matching your NVIDIA driver, none, or PyPI's default "
        f"build. The CPU and CUDA builds come from PyTorch's index ({TORCH_INDEX}, or the URL "
        f"in the environment variable {TORCH_INDEX_VARIABLE}), which is asked first: when it "
        f"cannot be reached the run stops within {PROBE_TIMEOUT_S:g} seconds and says why.",
        "TORCH_FROM_PYPI_IF_UNREACHABLE": "Go on with PyPI's torch rather than stop (on Linux "
        "its CUDA build, about 5 GB).",
        "VENV_DIR": f"Where (default {venv_default}); an existing environment is reused.",
        "BASE_PYTHON": "The Python (3.10 or later) that creates the environment (default: "
        "QGIS's own).",
        "ENGINE_SOURCE": "Engine source folder or wheel (default: the copy shipped with the "
        "plugin).",
        "INDEX_URL": "A PyPI mirror for the engine's dependencies (and for PyPI's torch).",
        "FIND_LINKS": "A folder of wheels: pip then works offline and ignores its own "
        "configuration, and PyTorch's index is not asked.",
        "DRY_RUN": "Only list the commands. PyTorch's index is still asked, so they are the "
        "ones a real run would run.",
    }


class InstallEngineAlgorithm(FlairAlgorithm):
    """Creates a venv (default: in the QGIS profile folder) and pip-installs torch + engine."""

    TORCH = "TORCH"
    TORCH_FROM_PYPI_IF_UNREACHABLE = "TORCH_FROM_PYPI_IF_UNREACHABLE"
    VENV_DIR = "VENV_DIR"
    BASE_PYTHON = "BASE_PYTHON"
    ENGINE_SOURCE = "ENGINE_SOURCE"
    INDEX_URL = "INDEX_URL"
    FIND_LINKS = "FIND_LINKS"
    DRY_RUN = "DRY_RUN"
    ENGINE_PYTHON = "ENGINE_PYTHON"
    INSTALLED = "INSTALLED"
    COMMANDS = "COMMANDS"

    def name(self) -> str:
        return "install_engine"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Install or repair the FLAIR engine")

    def shortHelpString(self) -> str:  # noqa: N802
        intro = (
            "Creates the FLAIR engine's own Python environment and installs torch and the "
            "engine into it with pip, at the versions pinned in the engine's "
            "requirements/engine.txt (several GB with CUDA; needs internet unless a local "
            "wheel folder is given). Run it again to repair an environment: it is reused and "
            "its packages updated. QGIS's own Python is not modified."
        )
        outro = (
            "The plugin then uses this environment, unless the environment variable "
            "FLAIR_ENGINE_PYTHON names another Python."
        )
        # qgis_process prints the help as it is and lists the parameters itself
        if QgsApplication.platform() == "qgis_process":
            return f"{intro}\n\n{outro}"
        params = "".join(
            f"<li><b>{LABELS[name]}</b>: {text}</li>"
            for name, text in _help(default_venv_dir()).items()
        )
        return f"<p>{intro}</p><ul>{params}</ul><p>{outro}</p>"

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        torch = QgsProcessingParameterEnum(
            self.TORCH, LABELS[self.TORCH], [c.label for c in TORCH_CHOICES], defaultValue=0
        )
        fallback = QgsProcessingParameterBoolean(
            self.TORCH_FROM_PYPI_IF_UNREACHABLE,
            LABELS[self.TORCH_FROM_PYPI_IF_UNREACHABLE],
            defaultValue=False,
        )
        advanced = [
            QgsProcessingParameterFile(
                self.VENV_DIR, LABELS[self.VENV_DIR], FILE_FOLDER, optional=True
            ),
            QgsProcessingParameterString(self.BASE_PYTHON, LABELS[self.BASE_PYTHON], optional=True),
            QgsProcessingParameterString(
                self.ENGINE_SOURCE, LABELS[self.ENGINE_SOURCE], optional=True
            ),
            QgsProcessingParameterString(self.INDEX_URL, LABELS[self.INDEX_URL], optional=True),
            QgsProcessingParameterFile(
                self.FIND_LINKS, LABELS[self.FIND_LINKS], FILE_FOLDER, optional=True
            ),
        ]
        for param in advanced:
            param.setFlags(param.flags() | FLAG_ADVANCED)
        dry_run = QgsProcessingParameterBoolean(
            self.DRY_RUN, LABELS[self.DRY_RUN], defaultValue=False
        )
        texts = _help(default_venv_dir())
        for param in (torch, fallback, *advanced, dry_run):
            param.setHelp(texts[param.name()])
            self.addParameter(param)
        self.addOutput(QgsProcessingOutputString(self.ENGINE_PYTHON, "Engine Python"))
        self.addOutput(QgsProcessingOutputString(self.INSTALLED, "Installed packages"))
        self.addOutput(QgsProcessingOutputString(self.COMMANDS, "Commands"))

    def processAlgorithm(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,  # noqa: N802
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        plan = self._plan(parameters, context)
        plan = self._reachable_torch(plan, parameters, context, feedback)
        steps = plan.steps()
        commands = "\n".join(_shown(s) for s in steps)
        result = {self.ENGINE_PYTHON: str(plan.python), self.COMMANDS: commands, self.INSTALLED: ""}
        if self.parameterAsBool(parameters, self.DRY_RUN, context):
            # QGIS prints the COMMANDS output with the results: the log names the steps only,
            # so each command line (the engine's pins among them) appears once
            feedback.pushInfo(
                "Dry run, nothing installed. The steps (their commands are the COMMANDS output, "
                "printed with the results):\n"
                + "\n".join(f"{n}. {s.description}" for n, s in enumerate(steps, 1))
            )
            return result
        output: list[str] = []
        for number, step in enumerate(steps):
            feedback.setProgressText(step.description)
            feedback.pushInfo(f"[{number + 1}/{len(steps)}] {step.description}")
            feedback.pushCommandInfo(_shown(step))
            feedback.setProgress(100.0 * number / len(steps))
            try:
                output = run_step(step, feedback.pushConsoleInfo, feedback.isCanceled)
            except (InstallError, OSError) as exc:
                raise QgsProcessingException(f"Installing the FLAIR engine: {exc}") from exc
        feedback.setProgress(100.0)
        result[self.INSTALLED] = installed_summary(output)
        set_engine_python_setting(str(plan.python))
        feedback.pushInfo(f"FLAIR engine ready: {plan.python}\nInstalled: {result[self.INSTALLED]}")
        return result

    def _plan(self, parameters: dict[str, Any], context: QgsProcessingContext) -> InstallPlan:
        venv = self.parameterAsFile(parameters, self.VENV_DIR, context)
        base = self.parameterAsString(parameters, self.BASE_PYTHON, context)
        source = self.parameterAsString(parameters, self.ENGINE_SOURCE, context)
        base_python = Path(base) if base else find_base_python()
        if base_python is None or not base_python.is_file():
            raise QgsProcessingException(
                "No Python found to create the engine environment; set "
                f'"{LABELS[self.BASE_PYTHON]}" to a Python 3.10 or later executable.'
            )
        engine_source = Path(source) if source else engine_source_dir()
        if engine_source is None or not engine_source.exists():
            raise QgsProcessingException(
                "The FLAIR engine source was not found (it ships in the plugin's engine_src "
                f'folder); reinstall the plugin or set "{LABELS[self.ENGINE_SOURCE]}".'
            )
        try:
            pins = read_pins(engine_source)
        except (OSError, UnicodeDecodeError) as exc:
            raise QgsProcessingException(
                f"The engine's pinned requirements cannot be read ({exc}); reinstall the "
                f'plugin or set "{LABELS[self.ENGINE_SOURCE]}".'
            ) from exc
        return InstallPlan(
            venv_dir=Path(venv) if venv else default_venv_dir(),
            base_python=base_python,
            engine_source=engine_source,
            torch=TORCH_CHOICES[self.parameterAsEnum(parameters, self.TORCH, context)],
            index_url=self.parameterAsString(parameters, self.INDEX_URL, context) or "",
            find_links=self.parameterAsFile(parameters, self.FIND_LINKS, context) or "",
            pins=pins,
            torch_index=pytorch_index(),
        )

    def _reachable_torch(
        self,
        plan: InstallPlan,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> InstallPlan:
        """The plan, once PyTorch's index it names has answered; when it cannot be reached,
        the plan with PyPI's torch if the user allowed that, else a one-line error. Asked
        before pip, which would retry for minutes before failing."""
        url = plan.pytorch_index_url
        if not url:
            return plan
        feedback.setProgressText(f"Asking PyTorch's index {url}")
        probe = probe_index(url)
        if probe.reachable:
            return plan
        unreachable = f"PyTorch's index {url} cannot be reached ({probe.cause})"
        if not self.parameterAsBool(parameters, self.TORCH_FROM_PYPI_IF_UNREACHABLE, context):
            raise QgsProcessingException(
                f'{unreachable}: choose the torch build "{PYPI_TORCH.label}" or tick '
                f'"{LABELS[self.TORCH_FROM_PYPI_IF_UNREACHABLE]}" to install torch from PyPI '
                "instead, a larger download.\n"
                "pip would fail the same way after minutes of retries. Behind a proxy, set the "
                f'https_proxy variable; offline, "{LABELS[self.FIND_LINKS]}" installs wheels '
                "copied beforehand."
            )
        feedback.pushInfo(f"{unreachable}: installing PyPI's torch instead (a larger download).")
        return replace(plan, torch=PYPI_TORCH)


def _shown(step: Step) -> str:
    """The step's command line with the variables it sets, as a user could paste it."""
    variables = "".join(f"{key}={value} " for key, value in step.env)
    return variables + format_command(step.command)
