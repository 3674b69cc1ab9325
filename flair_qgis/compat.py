"""Enum values that moved between QGIS 3.22 and QGIS 4 (Qt 6), looked up once."""

from __future__ import annotations

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
)


def _pick(old_owner: object, old_name: str, new_path: str) -> object:
    value = getattr(old_owner, old_name, None)
    if value is not None:
        return value
    owner: object = Qgis
    for part in new_path.split("."):
        owner = getattr(owner, part)
    return owner


FLAG_ADVANCED = _pick(
    QgsProcessingParameterDefinition, "FlagAdvanced", "ProcessingParameterFlag.Advanced"
)
FLAG_OPTIONAL = _pick(
    QgsProcessingParameterDefinition, "FlagOptional", "ProcessingParameterFlag.Optional"
)
TYPE_POLYGON = _pick(QgsProcessing, "TypeVectorPolygon", "ProcessingSourceType.VectorPolygon")
NUMBER_INTEGER = _pick(
    QgsProcessingParameterNumber, "Integer", "ProcessingNumberParameterType.Integer"
)
FILE_FOLDER = _pick(QgsProcessingParameterFile, "Folder", "ProcessingFileParameterBehavior.Folder")
