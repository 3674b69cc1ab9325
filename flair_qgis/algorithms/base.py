"""What every FLAIR algorithm shares: group, icon, translation, a fresh instance per run."""

from __future__ import annotations

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..icons import plugin_icon


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
