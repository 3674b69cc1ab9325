"""GDAL virtual mosaics (VRT), written as XML: the region's input mosaic and its map mosaic.

The input mosaic puts every product's tiles onto one grid, band by band (R, G, B from RVB, NIR
from IRC band 1), so a read across file boundaries is one read and tile edges leave no seams.
An alpha band says where the RVB files are: the gaps between tiles are no data, never black
pixels. Sources on other grids are placed by their bounds (GDAL resamples them on read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from affine import Affine

from engine.grid import Grid
from engine.io import style
from engine.region.inputs import RasterFile

_GDAL_TYPES = {
    "uint8": "Byte",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


@dataclass(frozen=True)
class Source:
    """One band of one file, placed on the mosaic by its bounds; `constant` writes that value
    wherever the file has pixels (an alpha band of data presence)."""

    file: RasterFile
    band: int
    constant: int | None = None


@dataclass(frozen=True)
class Band:
    """One band of a mosaic: its sources, type and colour interpretation."""

    sources: tuple[Source, ...]
    dtype: str
    colorinterp: str  # GDAL's name: Red, Green, Blue, Alpha, Gray, Palette, Undefined
    description: str = ""


def grid_of(files: Sequence[RasterFile]) -> Grid:
    """The grid covering every file at the finest resolution, on the first file's pixel lines.

    Sizes are rounded with a tolerance of a millionth of a pixel: Lambert-93 coordinates in
    the millions carry float errors far above `Grid.covering`'s 1e-9 (a 768 px mosaic would
    get 769 rows)."""
    res = min(min(abs(f.res[0]), abs(f.res[1])) for f in files)
    ax, ay = files[0].bounds[0], files[0].bounds[3]
    xmin = min(f.bounds[0] for f in files)
    ymin = min(f.bounds[1] for f in files)
    xmax = max(f.bounds[2] for f in files)
    ymax = max(f.bounds[3] for f in files)
    tol = 1e-6
    left = ax + math.floor((xmin - ax) / res + tol) * res
    top = ay + math.ceil((ymax - ay) / res - tol) * res
    width = math.ceil((xmax - left) / res - tol)
    height = math.ceil((top - ymin) / res - tol)
    return Grid(files[0].crs, Affine(res, 0.0, left, 0.0, -res, top), width, height)


def _rect(name: str, x: float, y: float, w: float, h: float) -> str:
    return f'<{name} xOff="{x:.10g}" yOff="{y:.10g}" xSize="{w:.10g}" ySize="{h:.10g}"/>'


def _source_xml(source: Source, grid: Grid) -> str:
    f = source.file
    inv = ~grid.transform
    x0, y0 = inv * (f.bounds[0], f.bounds[3])
    x1, y1 = inv * (f.bounds[2], f.bounds[1])
    same = math.isclose(x1 - x0, f.width, abs_tol=1e-6) and math.isclose(
        y1 - y0, f.height, abs_tol=1e-6
    )
    kind = "ComplexSource"
    extra = ""
    if source.constant is not None:
        extra = f"<ScaleOffset>{source.constant}</ScaleOffset><ScaleRatio>0</ScaleRatio>"
    attrs = "" if same else ' resampling="bilinear"'
    return (
        f'<{kind}{attrs}><SourceFilename relativeToVRT="0">{escape(f.path)}</SourceFilename>'
        f"<SourceBand>{source.band}</SourceBand>"
        f"{_rect('SrcRect', 0, 0, f.width, f.height)}"
        f"{_rect('DstRect', x0, y0, x1 - x0, y1 - y0)}{extra}</{kind}>"
    )


def _header(grid: Grid) -> str:
    t = grid.transform
    return (
        f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">\n'
        f"  <SRS>{escape(grid.crs.to_wkt())}</SRS>\n"
        f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>\n"
    )


def mosaic_xml(grid: Grid, bands: Sequence[Band]) -> str:
    """A VRT of `bands` on `grid`."""
    out = [_header(grid)]
    for i, band in enumerate(bands, start=1):
        out.append(
            f'  <VRTRasterBand dataType="{_GDAL_TYPES.get(band.dtype, "Float32")}" band="{i}">\n'
            f"    <ColorInterp>{band.colorinterp}</ColorInterp>\n"
            f"    <Description>{escape(band.description)}</Description>\n"
        )
        out.extend(f"    {_source_xml(s, grid)}\n" for s in band.sources)
        out.append("  </VRTRasterBand>\n")
    out.append("</VRTDataset>\n")
    return "".join(out)


def product_bands(rgb: Sequence[RasterFile], irc: Sequence[RasterFile]) -> list[Band]:
    """R, G, B from RVB bands 1-3, NIR from IRC band 1 when given, and the alpha band."""
    dtype = rgb[0].dtype
    bands = [
        Band(tuple(Source(f, b) for f in rgb), dtype, name, label)
        for b, name, label in (
            (1, "Red", "R (RVB 1)"),
            (2, "Green", "G (RVB 2)"),
            (3, "Blue", "B (RVB 3)"),
        )
    ]
    if irc:
        bands.append(Band(tuple(Source(f, 1) for f in irc), dtype, "Undefined", "NIR (IRC 1)"))
    alpha = 65535 if dtype == "uint16" else 255
    bands.append(Band(tuple(Source(f, 1, alpha) for f in rgb), dtype, "Alpha", "data present"))
    return bands


def map_xml(grid: Grid, blocks: Sequence[tuple[str, int, int, int, int]], title: str) -> str:
    """The region's map: one Byte band over the blocks (path, col, row, width, height on
    `grid`), nodata 0, with the FLAIR colour table and class names, so it opens styled."""
    out = [
        _header(grid),
        '  <VRTRasterBand dataType="Byte" band="1">\n',
        "    <NoDataValue>0</NoDataValue>\n",
        f"    <Description>{escape(title)}</Description>\n",
    ]
    if title == "FLAIR land cover":
        out.append("    <ColorInterp>Palette</ColorInterp>\n    <CategoryNames>\n")
        out.extend(f"      <Category>{escape(n)}</Category>\n" for n in style.category_names())
        out.append("    </CategoryNames>\n    <ColorTable>\n")
        table = style.colormap()
        for code in range(max(table) + 1):
            r, g, b, a = table.get(code, (0, 0, 0, 0))
            out.append(f'      <Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>\n')
        out.append("    </ColorTable>\n")
    for path, col, row, width, height in blocks:
        out.append(
            f'    <SimpleSource><SourceFilename relativeToVRT="1">{escape(path)}'
            f"</SourceFilename><SourceBand>1</SourceBand>{_rect('SrcRect', 0, 0, width, height)}"
            f"{_rect('DstRect', col, row, width, height)}</SimpleSource>\n"
        )
    out.append("  </VRTRasterBand>\n</VRTDataset>\n")
    return "".join(out)
