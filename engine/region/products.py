"""The products a region is mapped from: one entry each, so a new product is one entry here.

IGN delivers BD ORTHO as separate products with the same tile names (RVB, IRC), often with
elevation tiles beside them. Each entry says which bands it gives the model and what it is to
the region's input mosaic (its `role`):

- `BASE`: its tiles set the mosaic's grid and where there is data (the alpha band); required
  unless one raster holds every band (`--input`);
- `JOINED`: it adds bands to the mosaic, tile for tile with the base product (same tile names,
  CRS and data type);
- `ELEVATION`: a mosaic of its own on its own grid, aligned on the fly onto the processing grid
  as the E channel (as `predict --elevation`), allowed beside `--input` too.

Plain Python (standard library only): the QGIS plugin reads this table from the engine's source
(`flair_qgis.engine_shared.engine_module("region.products")`) for its dialog's fields, the
engine for its options, the audit of the files and the mosaic's bands.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = "base"
JOINED = "joined"
ELEVATION = "elevation"
# the files of a product's folder, in every subfolder: BD ORTHO comes as JPEG 2000, other
# deliveries and re-exports as GeoTIFF (braces as in the shell: engine.region.inputs)
DEFAULT_PATTERN = "**/*.{jp2,tif,tiff}"


@dataclass(frozen=True)
class ProductBand:
    """A band a product gives the input mosaic: its number in the product's files, the model
    channel it feeds, and its GDAL colour interpretation there."""

    band: int
    channel: str
    colorinterp: str


@dataclass(frozen=True)
class Product:
    """One input product of a region: its option, its bands, its role in the mosaic."""

    key: str  # the option's name (`--rgb`) and the plugin's field stem (`RGB_FOLDER`)
    name: str  # as the user knows it: RVB, IRC
    role: str  # BASE, JOINED or ELEVATION
    bands: tuple[ProductBand, ...]
    min_bands: int  # fewer bands in a file is a problem of the inputs
    help: str  # the option's help
    label: str  # the plugin's field label

    @property
    def option(self) -> str:
        return f"--{self.key}"

    @property
    def what(self) -> str:
        """How messages name it: `--irc (IRC)`."""
        return f"{self.option} ({self.name})"

    def band_label(self, band: ProductBand) -> str:
        """The mosaic band's description: `NIR (IRC 1)`."""
        return f"{band.channel} ({self.name} {band.band})"


PRODUCTS: tuple[Product, ...] = (
    Product(
        "rgb",
        "RVB",
        BASE,
        (
            ProductBand(1, "R", "Red"),
            ProductBand(2, "G", "Green"),
            ProductBand(3, "B", "Blue"),
        ),
        3,
        "RVB product: R, G, B (e.g. 'RVB/**/*.{jp2,tif,tiff}')",
        "RVB (R, G, B)",
    ),
    Product(
        "irc",
        "IRC",
        JOINED,
        (ProductBand(1, "NIR", "Undefined"),),
        1,
        "IRC product: NIR, R, G; gives the NIR channel",
        "IRC (NIR, R, G)",
    ),
    Product(
        "elevation",
        "elevation",
        ELEVATION,
        (ProductBand(1, "E", "Gray"),),
        1,
        "elevation tiles (band 1) for the E channel",
        "Elevation",
    ),
)


def base_product() -> Product:
    """The product whose tiles make the mosaic's grid (RVB)."""
    return next(p for p in PRODUCTS if p.role == BASE)


def image_products() -> tuple[Product, ...]:
    """The products whose bands go into the input mosaic, the base first."""
    return tuple(p for p in PRODUCTS if p.role in (BASE, JOINED))


def elevation_product() -> Product:
    """The product that gives the E channel, on its own grid."""
    return next(p for p in PRODUCTS if p.role == ELEVATION)


def mosaic_channels(keys: set[str] | frozenset[str]) -> dict[str, int]:
    """Channel -> band of the input mosaic made of the image products `keys` (by key), in the
    mosaic's order: the base product's bands first (R, G, B from RVB), then each joined
    product's (NIR from IRC, band 4)."""
    given = [p for p in image_products() if p.key in keys]
    bands = [b.channel for p in given for b in p.bands]
    return {channel: number for number, channel in enumerate(bands, start=1)}
