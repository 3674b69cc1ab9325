"""`flair:install_engine`: create or repair the engine's own Python environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
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
from ..installer import (
    TORCH_CHOICES,
    InstallError,
    InstallPlan,
    Step,
    find_base_python,
    installed_summary,
    read_pins,
    run_step,
)
from ..settings import set_engine_python_setting
from .base import FlairAlgorithm


class InstallEngineAlgorithm(FlairAlgorithm):
    """Creates a venv (default: in the QGIS profile folder) and pip-installs torch + engine."""

    TORCH = "TORCH"
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
        return (
            "<p>Creates the FLAIR engine's own Python environment and installs torch and the "
            "engine into it with pip, at the versions pinned in the engine's "
            "requirements/engine.txt (several GB with CUDA; needs internet unless FIND_LINKS "
            "names a folder of wheels). Run it again to repair an environment: it is reused "
            "and its packages updated. QGIS's own Python is not modified.</p><ul>"
            f"<li><b>TORCH</b>: which torch build ({', '.join(c.key for c in TORCH_CHOICES)}).</li>"
            f"<li><b>VENV_DIR</b>: where (default {default_venv_dir()}).</li>"
            "<li><b>BASE_PYTHON</b>: the Python (3.10 or later) that creates the environment.</li>"
            "<li><b>ENGINE_SOURCE</b>: engine source folder or wheel (default: the copy shipped "
            "with the plugin).</li>"
            "<li><b>INDEX_URL</b>: a PyPI mirror for the engine's dependencies.</li>"
            "<li><b>FIND_LINKS</b>: a local folder of wheels; pip then works offline and "
            "ignores its own configuration.</li>"
            "<li><b>DRY_RUN</b>: only list the commands.</li></ul>"
            "<p>The plugin then uses this environment, unless the environment variable "
            "FLAIR_ENGINE_PYTHON names another Python.</p>"
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterEnum(
                self.TORCH, "Torch build", [c.label for c in TORCH_CHOICES], defaultValue=0
            )
        )
        extra = [
            QgsProcessingParameterFile(
                self.VENV_DIR, "Environment folder", FILE_FOLDER, optional=True
            ),
            QgsProcessingParameterString(
                self.BASE_PYTHON, "Base Python (executable path)", optional=True
            ),
            QgsProcessingParameterString(
                self.ENGINE_SOURCE, "Engine source (folder or wheel path)", optional=True
            ),
            QgsProcessingParameterString(self.INDEX_URL, "Package index URL", optional=True),
            QgsProcessingParameterFile(
                self.FIND_LINKS, "Local wheel folder (offline install)", FILE_FOLDER, optional=True
            ),
        ]
        for param in extra:
            param.setFlags(param.flags() | FLAG_ADVANCED)
            self.addParameter(param)
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.DRY_RUN, "Only show the commands (dry run)", defaultValue=False
            )
        )
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
        steps = plan.steps()
        commands = "\n".join(_shown(s) for s in steps)
        for step in steps:
            feedback.pushCommandInfo(f"{step.description}: {_shown(step)}")
        result = {self.ENGINE_PYTHON: str(plan.python), self.COMMANDS: commands, self.INSTALLED: ""}
        if self.parameterAsBool(parameters, self.DRY_RUN, context):
            feedback.pushInfo("Dry run: nothing was installed.")
            return result
        output: list[str] = []
        for number, step in enumerate(steps):
            feedback.setProgressText(step.description)
            feedback.pushInfo(f"[{number + 1}/{len(steps)}] {step.description}")
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
                "No Python found to create the engine environment; set BASE_PYTHON to a "
                "Python 3.10 or later executable."
            )
        engine_source = Path(source) if source else engine_source_dir()
        if engine_source is None or not engine_source.exists():
            raise QgsProcessingException(
                "The FLAIR engine source was not found (it ships in the plugin's engine_src "
                "folder); reinstall the plugin or set ENGINE_SOURCE."
            )
        try:
            pins = read_pins(engine_source)
        except (OSError, UnicodeDecodeError) as exc:
            raise QgsProcessingException(
                f"The engine's pinned requirements cannot be read ({exc}); reinstall the "
                "plugin or set ENGINE_SOURCE."
            ) from exc
        return InstallPlan(
            venv_dir=Path(venv) if venv else default_venv_dir(),
            base_python=base_python,
            engine_source=engine_source,
            torch=TORCH_CHOICES[self.parameterAsEnum(parameters, self.TORCH, context)],
            index_url=self.parameterAsString(parameters, self.INDEX_URL, context) or "",
            find_links=self.parameterAsFile(parameters, self.FIND_LINKS, context) or "",
            pins=pins,
        )


def _shown(step: Step) -> str:
    """The step's command line with the variables it sets, as a user could paste it."""
    variables = "".join(f"{key}={value} " for key, value in step.env)
    return variables + format_command(step.command)
