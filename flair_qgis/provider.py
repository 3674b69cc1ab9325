"""The "FLAIR" Processing provider (id `flair`)."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.change import ChangeAlgorithm
from .algorithms.evaluate import EvaluateAlgorithm
from .algorithms.install_engine import InstallEngineAlgorithm
from .algorithms.landcover import LandcoverAlgorithm
from .algorithms.landcover_region import LandcoverRegionAlgorithm
from .algorithms.zones import ZonesAlgorithm
from .icons import plugin_icon
from .provider_settings import register_settings, unregister_settings


class FlairProvider(QgsProcessingProvider):
    """Registers the FLAIR algorithms; loads whether or not the engine is installed."""

    def id(self) -> str:
        return "flair"

    def name(self) -> str:
        return "FLAIR"

    def longName(self) -> str:  # noqa: N802
        return "FLAIR land cover (IGN FLAIR models)"

    def icon(self) -> QIcon:
        return plugin_icon()

    def load(self) -> bool:
        """Adds the FLAIR page of Processing > Options > Providers, then the algorithms."""
        register_settings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        unregister_settings()

    def loadAlgorithms(self) -> None:  # noqa: N802
        for algorithm in (
            LandcoverAlgorithm(),
            LandcoverRegionAlgorithm(),
            EvaluateAlgorithm(),
            ZonesAlgorithm(),
            ChangeAlgorithm(),
            InstallEngineAlgorithm(),
        ):
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:  # noqa: N802
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N802, N803
        return "gpkg"

    def defaultRasterFileExtension(self) -> str:  # noqa: N802
        return "tif"
