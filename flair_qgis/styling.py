"""The FLAIR legend on a QGIS raster layer: paletted renderer, 19 classes, no data transparent."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from .classes import FLAIR_CLASSES
from .compat import RAMP_LINEAR

# the engine writes confidence in percent (0-100); viridis stops
CONFIDENCE_STOPS: tuple[tuple[int, str], ...] = (
    (0, "#440154"),
    (25, "#3b528b"),
    (50, "#21918c"),
    (75, "#5ec962"),
    (100, "#fde725"),
)


def flair_palette() -> list[QgsPalettedRasterRenderer.Class]:
    """The 19 FLAIR classes as paletted-renderer classes (code, colour, name)."""
    return [
        QgsPalettedRasterRenderer.Class(c.code, QColor(c.colour), f"{c.code} {c.name}")
        for c in FLAIR_CLASSES
    ]


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


def confidence_renderer(layer: QgsRasterLayer) -> QgsSingleBandPseudoColorRenderer:
    """A colour ramp over the engine's 0-100 % confidence, its legend 0 % to 100 %."""
    items = [
        QgsColorRampShader.ColorRampItem(value, QColor(colour), f"{value} %")
        for value, colour in CONFIDENCE_STOPS
    ]
    ramp = QgsColorRampShader(0.0, 100.0)
    ramp.setColorRampType(RAMP_LINEAR)
    ramp.setColorRampItemList(items)
    legend = ramp.legendSettings()
    legend.setUseContinuousLegend(False)  # the legend lists the items: 0 % ... 100 %
    ramp.setLegendSettings(legend)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(100.0)
    return renderer


def apply_confidence_style(layer: QgsRasterLayer) -> None:
    """Style a confidence raster: percentage ramp, no data transparent."""
    layer.setRenderer(confidence_renderer(layer))
    layer.triggerRepaint()


def ensure_confidence_style(raster_path: str | Path) -> Path:
    """A `.qml` with the percentage ramp beside the confidence raster, so it opens styled."""
    qml = Path(raster_path).with_suffix(".qml")
    layer = QgsRasterLayer(str(raster_path), "confidence", "gdal")
    if layer.isValid():
        apply_confidence_style(layer)
        layer.saveNamedStyle(str(qml))
    return qml


class FlairStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the FLAIR legend (or the confidence ramp) when Processing loads a result."""

    _instances: list[FlairStylePostProcessor] = []

    def __init__(self, confidence: bool = False) -> None:
        super().__init__()
        self.confidence = confidence

    def postProcessLayer(
        self,
        layer,
        context: QgsProcessingContext,  # noqa: N802
        feedback: QgsProcessingFeedback,
    ) -> None:
        if not isinstance(layer, QgsRasterLayer):
            return
        if self.confidence:
            apply_confidence_style(layer)
        else:
            apply_flair_style(layer)

    @classmethod
    def create(cls, confidence: bool = False) -> FlairStylePostProcessor:
        """A post-processor kept alive for the session (Processing holds only a raw pointer)."""
        instance = cls(confidence)
        cls._instances.append(instance)
        return instance


def name_results(context: QgsProcessingContext, output: str, confidence: str, name: str) -> None:
    """Name and style the layers Processing loads when the run ends: "<input> - <model>" with
    the FLAIR legend, and its confidence with the percentage ramp."""
    for path, is_confidence in ((output, False), (confidence, True)):
        if not path:
            continue
        if is_confidence:
            ensure_confidence_style(path)
        if context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.name = f"{name} - confidence" if is_confidence else name
            details.forceName = True
            details.setPostProcessor(FlairStylePostProcessor.create(is_confidence))


__all__ = [
    "FlairStylePostProcessor",
    "apply_confidence_style",
    "apply_flair_style",
    "ensure_confidence_style",
    "ensure_style_file",
    "flair_palette",
    "name_results",
]
