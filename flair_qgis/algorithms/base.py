"""What every FLAIR algorithm shares: group, icon, translation, a fresh instance per run."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..icons import plugin_icon


def engine_path(path: str) -> str:
    """A path handed to the engine, made absolute: the engine runs in another working
    directory than QGIS (`qgis_process` with relative paths). Every algorithm uses this one."""
    return os.path.abspath(path) if path else ""


class FlairAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define name, displayName, initAlgorithm and processAlgorithm."""

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("FlairAlgorithm", text)

    def createInstance(self) -> FlairAlgorithm:  # noqa: N802
        return type(self)()

    def icon(self) -> QIcon:
        return plugin_icon()

    def helpUrl(self) -> str:  # noqa: N802
        return ""  # help lives in shortHelpString; docs/plugin.md in the repository
