"""Which band of the input holds R, G, B, NIR and elevation, when the user does not say.

Colour interpretation wins where the file has it (red, green, blue, alpha); the remaining
non-alpha bands are taken in order for NIR and then elevation. Without colour interpretation:
bands 1, 2, 3, 4, 5.
"""

from __future__ import annotations

from typing import NamedTuple

from qgis.core import Qgis, QgsRaster, QgsRasterLayer

# QGIS >= 3.30 (and 4) moved the enum to Qgis; 3.22 has it on QgsRaster.
CI = getattr(Qgis, "RasterColorInterpretation", None) or QgsRaster.ColorInterpretation


class BandMapping(NamedTuple):
    """1-based band numbers of the input; 0 means "not available"."""

    red: int
    green: int
    blue: int
    nir: int = 0
    elevation: int = 0

    def engine_bands(self) -> list[int]:
        """R, G, B then NIR and elevation as far as they are known, for `--bands`."""
        bands = [self.red, self.green, self.blue]
        for extra in (self.nir, self.elevation):
            if extra <= 0:
                break
            bands.append(extra)
        return bands

    def describe(self) -> str:
        """ "R=1, G=2, B=3, NIR=4": each channel named with its band, unknown ones left out."""
        names = ("R", "G", "B", "NIR", "E")
        return ", ".join(f"{n}={b}" for n, b in zip(names, self.engine_bands(), strict=False))


def _interpretations(layer: QgsRasterLayer) -> list:
    provider = layer.dataProvider()
    return [provider.colorInterpretation(b) for b in range(1, layer.bandCount() + 1)]


def default_bands(layer: QgsRasterLayer) -> BandMapping:
    """The band mapping a layer suggests (see the module docstring)."""
    count = layer.bandCount()
    interps = _interpretations(layer)

    def first(kind) -> int:
        return next((b for b, i in enumerate(interps, start=1) if i == kind), 0)

    red, green, blue = first(CI.RedBand), first(CI.GreenBand), first(CI.BlueBand)
    alpha = {b for b, i in enumerate(interps, start=1) if i == CI.AlphaBand}
    if not (red and green and blue):
        plain = [b for b in range(1, count + 1) if b not in alpha]
        red, green, blue = (plain + [0, 0, 0])[:3] if len(plain) >= 3 else (1, 2, 3)
    used = {red, green, blue}
    rest = [b for b in range(1, count + 1) if b not in used and b not in alpha]
    nir = rest[0] if rest else 0
    elevation = rest[1] if len(rest) > 1 else 0
    return BandMapping(red, green, blue, nir, elevation)


def resolve_bands(
    layer: QgsRasterLayer,
    red: int | None,
    green: int | None,
    blue: int | None,
    nir: int | None,
    elevation: int | None,
) -> BandMapping:
    """The user's band choices, with the layer's defaults for those left empty (None or 0)."""
    auto = default_bands(layer)
    return BandMapping(
        red or auto.red,
        green or auto.green,
        blue or auto.blue,
        nir if nir else auto.nir,
        elevation if elevation else auto.elevation,
    )
