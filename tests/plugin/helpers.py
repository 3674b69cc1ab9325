"""Feedback that records what the algorithms report, and raster reading through QGIS."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingFeedback, QgsRasterLayer


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every message and progress value; `timeline` has progress texts and values in the
    order they came: ("text", "Loading Sentinel-2 time series…"), ("progress", 12.5), ..."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[str] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self.progress: list[float] = []
        self.texts: list[str] = []
        self.timeline: list[tuple[str, object]] = []

    def pushCommandInfo(self, info: str) -> None:  # noqa: N802
        self.commands.append(info)

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        self.warnings.append(warning)

    def setProgress(self, progress: float) -> None:  # noqa: N802
        self.progress.append(progress)
        self.timeline.append(("progress", progress))
        super().setProgress(progress)

    def setProgressText(self, text: str) -> None:  # noqa: N802
        self.texts.append(text)
        self.timeline.append(("text", text))
        super().setProgressText(text)


def read_codes(path: Path) -> tuple[QgsRasterLayer, list[list[int]]]:
    """The layer and its band 1 as rows of ints."""
    layer = QgsRasterLayer(str(path), "codes")
    assert layer.isValid(), path
    provider = layer.dataProvider()
    width, height = layer.width(), layer.height()
    block = provider.block(1, layer.extent(), width, height)
    rows = [[int(block.value(r, c)) for c in range(width)] for r in range(height)]
    return layer, rows
