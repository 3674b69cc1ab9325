"""Mapping a whole region: many input files, many blocks, many machines, resumable.

A region run sits above `predict`: it builds one virtual mosaic (GDAL VRT) of the inputs, cuts
the region's processing grid into blocks aligned to the tiling `predict` would use on the whole
mosaic, and runs each block as an ordinary `predict` of that window on a Dask worker that loaded
the model once. The manifest of finished blocks lives in the output folder, so the same command
resumes. Dask is imported here only, lazily: the engine runs one raster without it.
"""
