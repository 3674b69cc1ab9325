"""Sentinel-2 band names, STAC asset keys and the processing-baseline offset.

FLAIR's U-T&T takes ten bands in the order B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12, then the
snow and cloud probabilities (0..100) of Sen2Cor. STAC services name them differently:

====== ===================================== ===========================
band   Earth Search ``sentinel-2-c1-l2a``    Planetary Computer / ESA
====== ===================================== ===========================
B2     ``blue``                              ``B02``
B3     ``green``                             ``B03``
B4     ``red``                               ``B04``
B5     ``rededge1``                          ``B05``
B6     ``rededge2``                          ``B06``
B7     ``rededge3``                          ``B07``
B8     ``nir``                               ``B08``
B8A    ``nir08``                             ``B8A``
B11    ``swir16``                            ``B11``
B12    ``swir22``                            ``B12``
snow   ``snow``                              ``SNW`` (absent on Planetary Computer)
cloud  ``cloud``                             ``CLD`` (absent on Planetary Computer)
====== ===================================== ===========================

Each name is looked up in that order of preference on every item. Where an item has no
probability layers but has the scene classification (``scl``/``SCL``), the probabilities are
approximated from it (see `masks_from_scl`).

Products of processing baseline 04.00 and later store ``DN = 10000 * reflectance + 1000``; the
engine subtracts that offset per item, decided from ``s2:processing_baseline`` (never from the
date), and not at all when the item says the offset was already removed
(``earthsearch:boa_offset_applied: true``), so it is never applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.sentinel2.settings import FLAIR2

FLAIR_BANDS: tuple[str, ...] = FLAIR2.bands
"""FLAIR's Sentinel-2 band order (`Sentinel2Settings.bands` of FLAIR-2)."""

MASK_NAMES: tuple[str, str] = ("snow", "cloud")
"""Mask channels in FLAIR's order: channel 0 snow, channel 1 cloud."""

ASSET_KEYS: Mapping[str, tuple[str, ...]] = {
    "B2": ("blue", "B02"),
    "B3": ("green", "B03"),
    "B4": ("red", "B04"),
    "B5": ("rededge1", "B05"),
    "B6": ("rededge2", "B06"),
    "B7": ("rededge3", "B07"),
    "B8": ("nir", "B08"),
    "B8A": ("nir08", "B8A"),
    "B11": ("swir16", "B11"),
    "B12": ("swir22", "B12"),
    "snow": ("snow", "SNW"),
    "cloud": ("cloud", "CLD"),
}
SCL_KEYS: tuple[str, ...] = ("scl", "SCL")

BASELINE_WITH_OFFSET = (4, 0)
BOA_OFFSET_DN = 1000
SCL_CLOUD_CLASSES = (8, 9)  # cloud medium and high probability
SCL_SNOW_CLASSES = (11,)


def check_bands(bands: Sequence[str]) -> tuple[str, ...]:
    """The model card's band list, checked against the names this module can fetch."""
    unknown = [b for b in bands if b not in ASSET_KEYS or b in MASK_NAMES]
    if unknown:
        raise InvalidInput(
            f"Sentinel-2 bands {unknown} are unknown; use names among {list(FLAIR_BANDS)}"
        )
    return tuple(bands)


def resolve_assets(asset_keys: Sequence[str], bands: Sequence[str]) -> tuple[list[str], str | None]:
    """The asset key of each band and mask present on an item.

    Args:
        asset_keys: the item's asset keys.
        bands: band names in model order.

    Returns:
        ``(keys, scl)``: the asset key for each band then snow then cloud, and ``None`` as scl;
        or, when the probability layers are missing, the band keys only and the SCL asset key.

    Raises:
        InvalidInput: a band (or both the probabilities and SCL) is missing.
    """
    present = set(asset_keys)

    def pick(name: str) -> str | None:
        return next((k for k in ASSET_KEYS[name] if k in present), None)

    keys = [pick(b) for b in bands]
    missing = [b for b, k in zip(bands, keys, strict=True) if k is None]
    if missing:
        raise InvalidInput(
            f"the item has no asset for bands {missing} (looked for "
            f"{[ASSET_KEYS[b] for b in missing]}); use a Sentinel-2 L2A collection"
        )
    masks = [pick(m) for m in MASK_NAMES]
    if all(masks):
        return [*keys, *masks], None  # type: ignore[list-item]
    scl = next((k for k in SCL_KEYS if k in present), None)
    if scl is None:
        raise InvalidInput(
            "the item has neither cloud/snow probability assets nor a scene classification "
            "(scl); use a Sentinel-2 L2A collection such as sentinel-2-c1-l2a"
        )
    return list(keys), scl  # type: ignore[arg-type]


def parse_baseline(value: Any) -> tuple[int, int] | None:
    """``"04.00"`` -> ``(4, 0)``; ``None`` when missing or unreadable."""
    if value is None:
        return None
    try:
        major, _, minor = str(value).strip().partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        return None


def boa_offset(properties: Mapping[str, Any]) -> int:
    """DN to subtract from an item's reflectance bands (1000 or 0).

    Args:
        properties: the STAC item's properties.

    Returns:
        1000 when ``s2:processing_baseline`` is 04.00 or later and the offset has not already
        been removed by the provider, else 0. An item without a baseline is taken as it is.
    """
    if properties.get("earthsearch:boa_offset_applied") is True:
        return 0
    baseline = parse_baseline(properties.get("s2:processing_baseline"))
    if baseline is None or baseline < BASELINE_WITH_OFFSET:
        return 0
    return BOA_OFFSET_DN


def to_reflectance_dn(dn: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw DN (bands, H, W) -> (offset-corrected int16 DN, validity (H, W)).

    DN 0 is nodata in any band; nodata pixels stay 0 in every band. Values are clipped to the
    int16 range (after the offset they may be slightly negative over dark surfaces).
    """
    valid = np.all(dn != 0, axis=0)
    out = dn.astype(np.int32) - offset
    np.clip(out, -32768, 32767, out=out)
    out[:, ~valid] = 0
    return out.astype(np.int16), valid


def masks_from_scl(scl: np.ndarray) -> np.ndarray:
    """Approximate (snow, cloud) probabilities 0/100 from a scene classification (H, W).

    Cloud medium and high probability classes (8, 9) count as cloud 100, snow (11) as snow 100,
    everything else 0. Used only for collections without Sen2Cor's probability layers.
    """
    snow = np.isin(scl, SCL_SNOW_CLASSES).astype(np.uint8) * 100
    cloud = np.isin(scl, SCL_CLOUD_CLASSES).astype(np.uint8) * 100
    return np.stack([snow, cloud])
