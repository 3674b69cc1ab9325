"""Feedback that records what the algorithms report, and raster reading through QGIS."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingFeedback, QgsRasterLayer


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every message and progress value."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[str] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.progress: list[float] = []

    def pushCommandInfo(self, info: str) -> None:  # noqa: N802
        self.commands.append(info)

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        self.warnings.append(warning)

    def setProgress(self, progress: float) -> None:  # noqa: N802
        self.progress.append(progress)
        super().setProgress(progress)


def read_codes(path: Path) -> tuple[QgsRasterLayer, list[list[int]]]:
    """The layer and its band 1 as rows of ints."""
    layer = QgsRasterLayer(str(path), "codes")
    assert layer.isValid(), path
    provider = layer.dataProvider()
    width, height = layer.width(), layer.height()
    block = provider.block(1, layer.extent(), width, height)
    rows = [[int(block.value(r, c)) for c in range(width)] for r in range(height)]
    return layer, rows
