"""The FLAIR legend on a run's layers: the map's paletted renderer (19 classes, no data
transparent), the confidence ramp (0-100 %), the polygons' categories on `code`."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsLayerTreeLayer,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
    QgsSymbol,
    QgsVectorLayer,
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


def polygons_renderer(layer: QgsVectorLayer) -> QgsCategorizedSymbolRenderer:
    """Categories on the polygons' `code` field, one per FLAIR class: the map's colours, the
    class names as labels (the legend reads like the map's)."""
    categories = []
    for c in FLAIR_CLASSES:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(c.colour))
        categories.append(QgsRendererCategory(c.code, symbol, c.name))
    return QgsCategorizedSymbolRenderer("code", categories)


def apply_polygons_style(layer: QgsVectorLayer) -> None:
    """Style land-cover polygons with the FLAIR palette."""
    layer.setRenderer(polygons_renderer(layer))
    layer.triggerRepaint()


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


# what a result layer is: the map, or a companion that joins the map's group
MAP, CONFIDENCE, POLYGONS = "map", "confidence", "polygons"


def _same_file(source: str, path: str) -> bool:
    return bool(path) and Path(source.split("|", 1)[0]).resolve() == Path(path).resolve()


def gather_with_map(project: QgsProject, map_path: str, companions: list[str]) -> None:
    """Move the companions' layers (confidence, polygons) into the layer-tree group of the
    run's map, just below it, wherever Processing put them. Safe to call again: each result
    layer's post-processor calls it, since the order they load in is not the dialog's."""
    root = project.layerTreeRoot()
    nodes = root.findLayers()
    found = [n for n in nodes if n.layer() is not None and _same_file(n.layer().source(), map_path)]
    if not found:
        return
    anchor = found[-1]
    group = anchor.parent()
    for path in companions:
        for node in [n for n in root.findLayers() if n.layer() is not None]:
            if node is anchor or not _same_file(node.layer().source(), path):
                continue
            if node.parent() is group:
                continue
            layer = node.layer()
            index = group.children().index(anchor) + 1
            group.insertChildNode(index, QgsLayerTreeLayer(layer))
            node.parent().removeChildNode(node)


class FlairStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the FLAIR legend (the map's palette, the confidence ramp, the polygons'
    categories) when Processing loads a result, and keeps a run's layers in one group."""

    _instances: list[FlairStylePostProcessor] = []

    def __init__(
        self, kind: str = MAP, map_path: str = "", companions: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.kind = kind
        self.map_path = map_path
        self.companions = list(companions)

    def postProcessLayer(  # noqa: N802
        self,
        layer: QgsMapLayer,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> None:
        if self.kind == POLYGONS and isinstance(layer, QgsVectorLayer):
            apply_polygons_style(layer)
        elif self.kind == CONFIDENCE and isinstance(layer, QgsRasterLayer):
            apply_confidence_style(layer)
        elif self.kind == MAP and isinstance(layer, QgsRasterLayer):
            apply_flair_style(layer)
        if self.map_path and context.project() is not None:
            gather_with_map(context.project(), self.map_path, self.companions)

    @classmethod
    def create(
        cls, kind: str = MAP, map_path: str = "", companions: tuple[str, ...] = ()
    ) -> FlairStylePostProcessor:
        """A post-processor kept alive for the session (Processing holds only a raw pointer)."""
        instance = cls(kind, map_path, companions)
        cls._instances.append(instance)
        return instance


def name_results(
    context: QgsProcessingContext,
    output: str,
    confidence: str,
    name: str,
    polygons: str = "",
) -> None:
    """Name and style the layers Processing loads when the run ends: "<input> - <model>" with
    the FLAIR legend, "... - confidence" with the percentage ramp and "... - polygons" with
    the FLAIR categories, the companions in the map's group."""
    companions = tuple(p for p in (confidence, polygons) if p)
    if confidence:
        ensure_confidence_style(confidence)
    for path, kind, suffix in (
        (output, MAP, ""),
        (confidence, CONFIDENCE, " - confidence"),
        (polygons, POLYGONS, " - polygons"),
    ):
        if not path or not context.willLoadLayerOnCompletion(path):
            continue
        details = context.layerToLoadOnCompletionDetails(path)
        details.name = name + suffix
        details.forceName = True
        details.setPostProcessor(FlairStylePostProcessor.create(kind, output, companions))


__all__ = [
    "FlairStylePostProcessor",
    "apply_confidence_style",
    "apply_flair_style",
    "apply_polygons_style",
    "ensure_confidence_style",
    "ensure_style_file",
    "flair_palette",
    "name_results",
    "polygons_renderer",
]
