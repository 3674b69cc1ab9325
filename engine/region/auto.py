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
from engine.region.products import PRODUCTS, elevation_product, mosaic_channels
from engine.region.settings import RegionSettings


def product_channels(settings: RegionSettings) -> tuple[dict[str, int], str]:
    """Channel -> band of the region's mosaic, and on what basis (for the reason)."""
    inputs, run = settings.inputs, settings.run
    elevation_key = elevation_product().key
    elevation = RasterBand("elevation mosaic", 1) if inputs.of(elevation_key) else None
    if inputs.single:
        from engine.io.tile_reader import open_raster

        with open_raster(inputs.single) as src:
            offered, basis = offered_channels(
                src.count,
                tuple(src.colorinterp),
                tuple(src.descriptions),
                run.bands,
                elevation,
            )
        return offered, basis.replace(ELEVATION_RASTER, "the elevation product")
    given = {p.key for p in PRODUCTS if inputs.of(p.key)}
    offered = mosaic_channels(given)
    if run.bands:
        offered, basis = offered_channels(len(offered), (), (), run.bands, elevation)
        return offered, basis.replace(ELEVATION_RASTER, "the elevation product")
    if elevation is not None:
        offered["E"] = elevation.band
    named = [p.name for p in PRODUCTS if p.key in given]
    basis = (
        f"the {', '.join(named[:-1])} and {named[-1]} products"
        if len(named) > 1
        else (f"the {named[0]} product")
    )
    return offered, basis


def settle_region_model(settings: RegionSettings, say: Callable[..., None]) -> RegionSettings:
    """The settings with `auto` replaced by the chosen registry model (said with why), after
    checking that a registry model's weights are here or may be fetched."""
    run = settings.run
    model = run.model
    if model == AUTO_MODEL:
        offered, basis = product_channels(settings)
        model = decide(offered, basis, False, run.allow_download, say)
    registry = load_registry()
    if model in registry:
        check_weights(registry.get(model), run.allow_download)
    return replace(settings, run=replace(run, model=model))
