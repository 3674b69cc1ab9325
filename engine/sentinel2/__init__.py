"""Sentinel-2 time series for U-T&T: sources, the series cube, FLAIR-2's preparation.

Typical use by the pipeline::

    source = open_source("stac")                      # or catalog:PATH, flair:PATH, ...
    cube = source.load(crs, bounds, year, card.sentinel2, reporter)   # once per run
    for tile in tiles:
        series = prepare_superpatch(cube.superpatch(*tile.centre_xy), card.sentinel2)
        # None: no usable date, run the aerial branch alone

See docs/sentinel2.md.
"""

from engine.sentinel2.base import Sentinel2Source
from engine.sentinel2.cube import SeriesCube
from engine.sentinel2.flair import FlairFolderSource
from engine.sentinel2.prepare import PreparedSeries, SuperPatch, day_offset, prepare_superpatch
from engine.sentinel2.settings import FLAIR2, Sentinel2Settings
from engine.sentinel2.sources import open_source
from engine.sentinel2.stac import StacSource

__all__ = [
    "FLAIR2",
    "FlairFolderSource",
    "PreparedSeries",
    "SeriesCube",
    "Sentinel2Settings",
    "Sentinel2Source",
    "StacSource",
    "SuperPatch",
    "day_offset",
    "open_source",
    "prepare_superpatch",
]
