"""The FLAIR legend on a QGIS raster layer: paletted renderer, 19 classes, no data transparent."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QColor

from .classes import FLAIR_CLASSES


def flair_palette() -> list[QgsPalettedRasterRenderer.Class]:
    """The 19 FLAIR classes as paletted-renderer classes (code, colour, name)."""
    return [QgsPalettedRasterRenderer.Class(c.code, QColor(c.colour), f"{c.code} {c.name}")
            for c in FLAIR_CLASSES]


def apply_flair_style(layer: QgsRasterLayer) -> None:
    """Style a FLAIR code raster: paletted on band 1; code 0 (no data) has no class, so it is
    not drawn."""
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, flair_palette())
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def ensure_style_file(raster_path: str | Path) -> Path:
    """Make sure a `.qml` with the FLAIR legend sits beside the raster (the engine writes one)."""
    qml = Path(raster_path).with_suffix(".qml")
    if not qml.exists():
        layer = QgsRasterLayer(str(raster_path), "flair", "gdal")
        if layer.isValid():
            apply_flair_style(layer)
            layer.saveNamedStyle(str(qml))
    return qml


class FlairStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the FLAIR legend when Processing loads the result layer."""

    _instances: list[FlairStylePostProcessor] = []

    def postProcessLayer(self, layer, context: QgsProcessingContext,  # noqa: N802
                         feedback: QgsProcessingFeedback) -> None:
        if isinstance(layer, QgsRasterLayer):
            apply_flair_style(layer)

    @classmethod
    def create(cls) -> FlairStylePostProcessor:
        """A post-processor kept alive for the session (Processing holds only a raw pointer)."""
        instance = cls()
        cls._instances.append(instance)
        return instance


__all__ = ["FlairStylePostProcessor", "apply_flair_style", "ensure_style_file",
           "flair_palette"]
