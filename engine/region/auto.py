"""`region --model auto`: the model chosen from the products a region delivers, before any work.

A BD ORTHO delivery says its bands by product, not by band descriptions: RVB gives R, G, B
(bands 1-3 of the mosaic), IRC gives NIR (band 4 of the mosaic, from its band 1), elevation
tiles give E. The rule and its wording are `--model auto`'s (engine.models.auto), so a region
and a single raster of the same bands get the same model; a region given as one raster
(`--input`) is read like predict's input. Missing weights stop the run here, before the
folder, the mosaics or the model are made (and before torch is imported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from engine.io.bands import RasterBand
from engine.models.auto import AUTO_MODEL, ELEVATION_RASTER, decide, offered_channels
from engine.models.download import check_weights
from engine.models.registry import load_registry
from engine.region.settings import RegionSettings

# the mosaic's bands (engine.region.vrt.product_bands): R, G, B from RVB, then NIR from IRC
RVB_BANDS = {"R": 1, "G": 2, "B": 3}
NIR_BAND = 4


def product_channels(settings: RegionSettings) -> tuple[dict[str, int], str]:
    """Channel -> band of the region's mosaic, and on what basis (for the reason)."""
    inputs = settings.inputs
    elevation = RasterBand("elevation mosaic", 1) if inputs.elevation else None
    if inputs.single:
        from engine.io.tile_reader import open_raster

        with open_raster(inputs.single) as src:
            offered, basis = offered_channels(
                src.count,
                tuple(src.colorinterp),
                tuple(src.descriptions),
                settings.bands,
                elevation,
            )
        return offered, basis.replace(ELEVATION_RASTER, "the elevation product")
    if settings.bands:
        offered, basis = offered_channels(NIR_BAND, (), (), settings.bands, elevation)
        basis = basis.replace(ELEVATION_RASTER, "the elevation product")
    else:
        offered = dict(RVB_BANDS)
        if inputs.irc:
            offered["NIR"] = NIR_BAND
        if elevation is not None:
            offered["E"] = elevation.band
        named = ["RVB"] + ["IRC"] * bool(inputs.irc) + ["elevation"] * bool(inputs.elevation)
        basis = (
            f"the {', '.join(named[:-1])} and {named[-1]} products"
            if len(named) > 1
            else ("the RVB product")
        )
    return offered, basis


def settle_region_model(settings: RegionSettings, say: Callable[..., None]) -> RegionSettings:
    """The settings with `auto` replaced by the chosen registry model (said with why), after
    checking that a registry model's weights are here or may be fetched."""
    model = settings.model
    if model == AUTO_MODEL:
        offered, basis = product_channels(settings)
        model = decide(offered, basis, False, settings.allow_download, say)
    registry = load_registry()
    if model in registry:
        check_weights(registry.get(model), settings.allow_download)
    return replace(settings, model=model)
