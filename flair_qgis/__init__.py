"""FLAIR land cover for QGIS: a Processing provider running IGN's FLAIR models."""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any = None):  # noqa: N802
    """QGIS entry point; `iface` is None under qgis_process."""
    from .plugin import FlairPlugin

    return FlairPlugin(iface)
