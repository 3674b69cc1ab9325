"""The plugin object QGIS loads: registers the Processing provider, nothing else."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import FlairProvider


class FlairPlugin:
    """`initProcessing` works headless (qgis_process); `initGui` only adds what a GUI needs."""

    def __init__(self, iface: Any = None) -> None:
        self.iface = iface
        self.provider: FlairProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802
        if self.provider is None:
            provider = FlairProvider()
            # The registry refuses (and deletes) a second provider with the same id.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
