"""What makes a FLAIR map open with its legend: colour table, category names, QGIS style."""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from engine.classes import FLAIR_CLASSES, NODATA_CODE, class_name


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table: the official colours, 0 (no data) transparent."""
    table = {NODATA_CODE: (0, 0, 0, 0)}
    for c in FLAIR_CLASSES:
        table[c.code] = (*c.rgb, 255)
    return table


def category_names() -> list[str]:
    """Category names indexed by pixel value, 0..19."""
    return [class_name(code) for code in range(0, len(FLAIR_CLASSES) + 1)]


def pam_xml() -> str:
    """A GDAL `.aux.xml` giving band 1 the FLAIR class names as category names."""
    names = "".join(f"      <Category>{_escape(n)}</Category>\n" for n in category_names())
    return (
        "<PAMDataset>\n"
        '  <PAMRasterBand band="1">\n'
        "    <Description>FLAIR land cover</Description>\n"
        "    <CategoryNames>\n"
        f"{names}"
        "    </CategoryNames>\n"
        "  </PAMRasterBand>\n"
        "</PAMDataset>\n"
    )


def qml(codes: tuple[int, ...] | None = None) -> str:
    """A QGIS layer style: paletted renderer with the 19 FLAIR classes, labelled; 0 transparent."""
    wanted = set(codes) if codes else {c.code for c in FLAIR_CLASSES}
    return paletted_qml(
        (c.code, c.colour, f"{c.code} {c.name}") for c in FLAIR_CLASSES if c.code in wanted
    )


def paletted_qml(entries: Iterable[tuple[int, str, str]]) -> str:
    """A QGIS paletted-renderer style on band 1 from (value, "#rrggbb", label) entries; values
    without an entry are not drawn."""
    palette = "".join(
        f'        <paletteEntry value="{value}" color="{colour}" alpha="255" '
        f"label={quoteattr(label)}/>\n"
        for value, colour, label in entries
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.0" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n"
        f"{palette}"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        '    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
        '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>\n'
        '    <rasterresampler maxOversampling="2"/>\n'
        "  </pipe>\n"
        "  <blendMode>0</blendMode>\n"
        "</qgis>\n"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
