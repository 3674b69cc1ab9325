"""The region's input mosaics, written into its output folder before any work.

`inputs/mosaic.vrt` holds the image products' bands (`engine.region.products`: R, G, B from
RVB, NIR from IRC band 1 when given) and an alpha band of where the base product (RVB) has
data (and, when tiles declare nodata, where no band is at it: `inputs/valid.vrt` holds the
validity layers it is computed from), on RVB's grid; `inputs/elevation.vrt` mosaics
the elevation tiles on their own grid, their nodata kept (each block's reader aligns it on the
processing grid, as `predict --elevation` does).
Workers on other machines read these files: the output folder must be shared with them.
"""

from __future__ import annotations

from pathlib import Path

from engine.io.destination import Destinations
from engine.region.inputs import RegionInputs
from engine.region.products import elevation_product
from engine.region.vrt import VALIDITY_NAME, Band, Source, grid_of, mosaic_xml, product_bands

INPUTS_DIR = "inputs"


def write_input_mosaics(out_dir: Path, inputs: RegionInputs) -> tuple[str, str | None]:
    """Write the mosaics the region needs; returns the image's and the elevation's paths (a
    single file is used as it is, without a VRT)."""
    folder = out_dir / INPUTS_DIR
    folder.mkdir(exist_ok=True)
    with Destinations(overwrite=True) as dest:
        if inputs.single:
            image = inputs.single.path
        else:
            path = folder / "mosaic.vrt"
            grid = grid_of(inputs.footprints)
            mosaic = product_bands(inputs.files)
            if mosaic.validity:
                dest.claim(folder / VALIDITY_NAME, "validity layers", (".vrt",)).write_text(
                    mosaic_xml(grid, mosaic.validity)
                )
            xml = mosaic_xml(grid, mosaic.bands, mosaic.mask)
            dest.claim(path, "input mosaic", (".vrt",)).write_text(xml)
            image = str(path)
        elevation = None
        if len(inputs.elevation) == 1:
            elevation = inputs.elevation[0].path
        elif inputs.elevation:
            path = folder / "elevation.vrt"
            files = inputs.elevation
            nodata = files[0].nodata  # the same for every tile (checked)
            sources = tuple(Source(f, 1, nodata=f.nodata) for f in files)
            product = elevation_product()
            interp, label = product.bands[0].colorinterp, product.name
            band = Band(sources, files[0].dtype, interp, label, nodata)
            dest.claim(path, "elevation mosaic", (".vrt",)).write_text(
                mosaic_xml(grid_of(files), [band])
            )
            elevation = str(path)
        dest.commit()
    return image, elevation
