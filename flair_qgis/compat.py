"""Names that moved between QGIS 3.22 and QGIS 4 (Qt 6), looked up once.

QGIS 4 keeps only the scoped enums (`Qgis.ProcessingSourceType.Raster`); QGIS 3.x also has the
unscoped aliases (`QgsProcessing.TypeRaster`), and 3.22 has only those. Each value here is the
scoped name where the running QGIS has it, else the 3.22 alias, so the plugin never names an
alias that QGIS 4 removed. Under Qt 6, `QAction` moved from QtWidgets to QtGui.
"""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingUtils,
    QgsRasterFileWriter,
)

try:  # Qt 6
    from qgis.PyQt.QtGui import QAction
except ImportError:  # Qt 5
    from qgis.PyQt.QtWidgets import QAction

__all__ = ["QAction"]


def scoped_or_alias(scoped: tuple[object, str], alias: tuple[object, str]) -> object:
    """`owner.Enum.Member` written as (owner, "Enum.Member") when it exists, else the alias."""
    for owner, path in (scoped, alias):
        value: object = owner
        try:
            for part in path.split("."):
                value = getattr(value, part)
        except AttributeError:
            continue
        return value
    raise AttributeError(f"neither {scoped[1]} nor {alias[1]} exists in this QGIS")


FLAG_ADVANCED = scoped_or_alias(
    (Qgis, "ProcessingParameterFlag.Advanced"), (QgsProcessingParameterDefinition, "FlagAdvanced")
)
FLAG_OPTIONAL = scoped_or_alias(
    (Qgis, "ProcessingParameterFlag.Optional"), (QgsProcessingParameterDefinition, "FlagOptional")
)
TYPE_POLYGON = scoped_or_alias(
    (Qgis, "ProcessingSourceType.VectorPolygon"), (QgsProcessing, "TypeVectorPolygon")
)
TYPE_RASTER = scoped_or_alias((Qgis, "ProcessingSourceType.Raster"), (QgsProcessing, "TypeRaster"))
NUMBER_INTEGER = scoped_or_alias(
    (Qgis, "ProcessingNumberParameterType.Integer"), (QgsProcessingParameterNumber, "Integer")
)
FILE_FOLDER = scoped_or_alias(
    (Qgis, "ProcessingFileParameterBehavior.Folder"), (QgsProcessingParameterFile, "Folder")
)
LAYER_HINT_RASTER = scoped_or_alias(
    (Qgis, "ProcessingLayerHint.Raster"), (QgsProcessingUtils, "LayerHint.Raster")
)
LAYER_HINT_VECTOR = scoped_or_alias(
    (Qgis, "ProcessingLayerHint.Vector"), (QgsProcessingUtils, "LayerHint.Vector")
)
MESSAGE_WARNING = scoped_or_alias((Qgis, "MessageLevel.Warning"), (Qgis, "Warning"))
RAMP_LINEAR = scoped_or_alias(
    (Qgis, "ShaderInterpolationMethod.Linear"), (QgsColorRampShader, "Interpolated")
)
ARGB_TYPES = frozenset(
    scoped_or_alias((Qgis, f"DataType.{name}"), (Qgis, name))
    for name in ("ARGB32", "ARGB32_Premultiplied")
)
WRITE_OK = scoped_or_alias(
    (Qgis, "RasterFileWriterResult.Success"), (QgsRasterFileWriter, "NoError")
)


def set_creation_options(writer: QgsRasterFileWriter, options: list[str]) -> None:
    """GDAL creation options: `setCreationOptions` since QGIS 3.44, `setCreateOptions` before."""
    setter = getattr(writer, "setCreationOptions", None) or writer.setCreateOptions
    setter(options)
