"""GDAL virtual mosaics (VRT), written as XML: the region's input mosaic and its map mosaic.

The input mosaic puts every product's tiles onto one grid, band by band, as the product table
says (`engine.region.products`: R, G, B from RVB, NIR from IRC band 1), so a read across file
boundaries is one read and tile edges leave no seams.
An alpha band says where the RVB files are, and is declared every band's mask (GDAL takes an
alpha band for the mask by itself only in 2- and 4-band datasets): the gaps between tiles are no
data, never black pixels. Sources on other grids are placed by their bounds (GDAL resamples
them on read).

A tile's own nodata is honoured: its sources carry it (`<NODATA>`: those pixels are not
painted), and when any tile declares one the alpha band is the per-pixel minimum of validity
layers (`valid.vrt` beside the mosaic: one band per mosaic band, 255 where a tile has a value
other than its nodata), so a pixel is no data where any of its bands is, as `predict` reads a
raster whose bands have nodata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from affine import Affine

from engine.grid import Grid, Window
from engine.io import style
from engine.region.audit import RasterFile
from engine.region.products import base_product, image_products

_GDAL_TYPES = {
    "uint8": "Byte",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


VALIDITY_NAME = "valid.vrt"  # the validity layers, beside the mosaic


@dataclass(frozen=True)
class Source:
    """One band of one file, placed on the mosaic by its bounds; `constant` writes that value
    wherever the file has pixels (an alpha band of data presence); pixels equal to `nodata`
    (the file's own) are left unpainted."""

    file: RasterFile
    band: int
    constant: int | None = None
    nodata: float | None = None


@dataclass(frozen=True)
class Layer:
    """A band of another VRT on the same grid, beside the mosaic (a validity layer)."""

    name: str
    band: int


@dataclass(frozen=True)
class Band:
    """One band of a mosaic: its sources, type and colour interpretation."""

    sources: tuple[Source, ...]
    dtype: str
    colorinterp: str  # GDAL's name: Red, Green, Blue, Alpha, Gray, Palette, Undefined
    description: str = ""
    nodata: float | None = None  # the band's NoDataValue (what unpainted pixels hold)
    pixel_function: str | None = None  # GDAL's built-in function of the `Layer` sources


@dataclass(frozen=True)
class Mosaic:
    """The input mosaic's bands and, when a tile declares nodata, its validity layers."""

    bands: tuple[Band, ...]
    validity: tuple[Band, ...]  # `valid.vrt`'s bands, or none
    mask: Band  # every band's mask: where the mosaic has data


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


def _number(value: float) -> str:
    return f"{value:.17g}"


def _source_xml(source: Source | Layer, grid: Grid) -> str:
    if isinstance(source, Layer):
        return (
            f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(source.name)}'
            f"</SourceFilename><SourceBand>{source.band}</SourceBand>"
            f"{_rect('SrcRect', 0, 0, grid.width, grid.height)}"
            f"{_rect('DstRect', 0, 0, grid.width, grid.height)}</SimpleSource>"
        )
    f = source.file
    inv = ~grid.transform
    x0, y0 = inv * (f.bounds[0], f.bounds[3])
    x1, y1 = inv * (f.bounds[2], f.bounds[1])
    same = math.isclose(x1 - x0, f.width, abs_tol=1e-6) and math.isclose(
        y1 - y0, f.height, abs_tol=1e-6
    )
    kind = "ComplexSource"
    extra = "" if source.nodata is None else f"<NODATA>{_number(source.nodata)}</NODATA>"
    if source.constant is not None:
        extra += f"<ScaleOffset>{source.constant}</ScaleOffset><ScaleRatio>0</ScaleRatio>"
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


def _band_xml(band: Band, grid: Grid, index: int | None) -> list[str]:
    """A band's XML; without `index`, the dataset's mask band (no number, interpretation or
    description)."""
    kind = ' subClass="VRTDerivedRasterBand"' if band.pixel_function else ""
    number = f' band="{index}"' if index is not None else ""
    out = [f'<VRTRasterBand dataType="{_GDAL_TYPES.get(band.dtype, "Float32")}"{number}{kind}>']
    if index is not None:
        out.append(f"  <ColorInterp>{band.colorinterp}</ColorInterp>")
        out.append(f"  <Description>{escape(band.description)}</Description>")
    if band.nodata is not None:
        out.append(f"  <NoDataValue>{_number(band.nodata)}</NoDataValue>")
    if band.pixel_function:
        out.append(f"  <PixelFunctionType>{band.pixel_function}</PixelFunctionType>")
    out.extend(f"  {_source_xml(s, grid)}" for s in band.sources)
    out.append("</VRTRasterBand>")
    return out


def mosaic_xml(grid: Grid, bands: Sequence[Band], mask: Band | None = None) -> str:
    """A VRT of `bands` on `grid`, with `mask` as every band's mask (GDAL takes an alpha band
    as the mask of 2- and 4-band datasets only: R, G, B, NIR, alpha needs it said)."""
    out = [_header(grid)]
    for i, band in enumerate(bands, start=1):
        out.extend(f"  {line}\n" for line in _band_xml(band, grid, i))
    if mask is not None:
        out.append("  <MaskBand>\n")
        out.extend(f"    {line}\n" for line in _band_xml(mask, grid, None))
        out.append("  </MaskBand>\n")
    out.append("</VRTDataset>\n")
    return "".join(out)


def product_bands(files: Mapping[str, Sequence[RasterFile]]) -> Mosaic:
    """The input mosaic of the image products' `files` (by product key): each product's bands
    as its entry in `engine.region.products` gives them (R, G, B from RVB bands 1-3, NIR from
    IRC band 1), the alpha band and the mask: where the base product has data or, when a tile
    declares nodata, the minimum of the validity layers (a pixel is valid where every band has
    data)."""
    base = files[base_product().key]
    dtype = base[0].dtype
    layers = [
        (files[p.key], b.band, b.colorinterp, p.band_label(b))
        for p in image_products()
        if files.get(p.key)
        for b in p.bands
    ]
    bands = [
        Band(tuple(Source(f, b, nodata=f.nodata) for f in product), dtype, interp, label)
        for product, b, interp, label in layers
    ]
    alpha = 65535 if dtype == "uint16" else 255
    if not any(f.nodata is not None for product, *_ in layers for f in product):
        bands.append(Band(tuple(Source(f, 1, alpha) for f in base), dtype, "Alpha", "data present"))
        mask = Band(tuple(Source(f, 1, 255) for f in base), "uint8", "Undefined")
        return Mosaic(tuple(bands), (), mask)
    validity = [
        Band(tuple(Source(f, b, alpha, f.nodata) for f in product), dtype, "Undefined", label)
        for product, b, _, label in layers
    ]
    sources = tuple(Layer(VALIDITY_NAME, i) for i in range(1, len(validity) + 1))
    bands.append(Band(sources, dtype, "Alpha", "data present", pixel_function="min"))
    # read as Byte, the layers' 65535 of 16-bit data clamp to 255
    mask = Band(sources, "uint8", "Undefined", pixel_function="min")
    return Mosaic(tuple(bands), tuple(validity), mask)


def map_xml(grid: Grid, blocks: Sequence[tuple[str, Window]], title: str) -> str:
    """The region's map: one Byte band over the blocks (path, and window on `grid`), nodata 0,
    with the FLAIR colour table and class names, so it opens styled."""
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
    for path, window in blocks:
        col, row, width, height = (
            int(window.col_off),
            int(window.row_off),
            int(window.width),
            int(window.height),
        )
        out.append(
            f'    <SimpleSource><SourceFilename relativeToVRT="1">{escape(path)}'
            f"</SourceFilename><SourceBand>1</SourceBand>{_rect('SrcRect', 0, 0, width, height)}"
            f"{_rect('DstRect', col, row, width, height)}</SimpleSource>\n"
        )
    out.append("  </VRTRasterBand>\n</VRTDataset>\n")
    return "".join(out)
