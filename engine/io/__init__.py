"""Raster and vector input/output: opening sources, reading tiles, writing maps."""
