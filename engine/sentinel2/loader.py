"""Load STAC items onto one grid, block by block, merging the products of each day.

For every block of the grid (256 px by default) the items whose footprint meets the block are
read with odc-stac, one plane per item, a few days at a time. Each item's reflectance bands get
its own processing-baseline offset (`engine.sentinel2.bands.boa_offset`) before the items of a
day are merged (first valid pixel wins, items in the grid's own CRS first, then by id), so the
offset is applied exactly once whatever the mix of baselines on a day. Items of any UTM zone
are reprojected onto the grid: bilinear for reflectance, nearest for the masks.

Memory is bounded by the block size and the number of items read at once, not by the area:
results go straight into the cube's memory-mapped files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from engine.errors import DownloadError, InvalidInput
from engine.grid import Grid
from engine.progress import Reporter
from engine.sentinel2.bands import masks_from_scl, resolve_assets, to_reflectance_dn
from engine.sentinel2.cube import SeriesCube

BLOCK_PX = 256
ITEMS_PER_READ = 16


@dataclass(frozen=True)
class PlannedItem:
    """An item with everything the loader needs, decided once."""

    item: object  # pystac.Item
    day: dt.date
    offset: int
    keys: tuple[str, ...]
    scl: str | None
    crs: str | None
    lonlat_bbox: tuple[float, float, float, float]


def solar_day(item) -> dt.date:
    """The local solar date of an item (UTC time shifted by the footprint's longitude)."""
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise InvalidInput(f"STAC item {item.id} has no datetime")
    bbox = item.bbox or [0.0, 0.0, 0.0, 0.0]
    lon = (bbox[0] + bbox[2]) / 2.0
    return (when + dt.timedelta(hours=lon / 15.0)).date()


def item_crs(item) -> str | None:
    """The item's native CRS (``proj:epsg`` or ``proj:code``) as ``EPSG:n``, when known."""
    props = item.properties
    if props.get("proj:epsg"):
        return f"EPSG:{int(props['proj:epsg'])}"
    code = props.get("proj:code")
    return str(code).upper() if code else None


def plan_items(
    items: Sequence, bands: Sequence[str], offset_of: Callable, say: Callable[..., None]
) -> list[PlannedItem]:
    """Resolve assets, day and offset of each item.

    Items lacking a band or a bbox are skipped, each said as a warning through
    `say(message, level)` (`Reporter.log`).
    """
    planned = []
    for item in items:
        try:
            keys, scl = resolve_assets(list(item.assets), bands)
        except InvalidInput as exc:
            say(f"skipping Sentinel-2 item {item.id}: {exc}", "WARNING")
            continue
        if not item.bbox:
            say(f"skipping Sentinel-2 item {item.id}: it has no bbox", "WARNING")
            continue
        planned.append(
            PlannedItem(
                item,
                solar_day(item),
                offset_of(item.properties),
                tuple(keys),
                scl,
                item_crs(item),
                tuple(item.bbox),  # type: ignore[arg-type]
            )
        )
    return planned


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _read(batch: list[PlannedItem], block: Grid, threads: int) -> list[np.ndarray]:
    """Read each item of `batch` onto `block`: a list of (bands [+2 masks | +1 scl], h, w)."""
    import odc.stac

    keys = list(dict.fromkeys(k for p in batch for k in (*p.keys, *([p.scl] if p.scl else []))))
    mask_keys = {p.keys[-2] for p in batch if not p.scl} | {p.keys[-1] for p in batch if not p.scl}
    mask_keys |= {p.scl for p in batch if p.scl}
    resampling = {k: ("nearest" if k in mask_keys else "bilinear") for k in keys}
    try:
        ds = odc.stac.load(
            [p.item for p in batch],
            bands=keys,
            geobox=block.to_geobox(),
            groupby=lambda item, parsed, idx: idx,
            preserve_original_order=True,
            resampling=resampling,
            dtype="uint16",
            nodata=0,
            pool=threads if threads > 1 else None,
            stac_cfg={"*": {"warnings": "ignore"}},
        )
    except InvalidInput:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        ids = ", ".join(p.item.id for p in batch)  # type: ignore[attr-defined]
        raise DownloadError(
            f"reading Sentinel-2 images failed ({exc}) for items {ids}; check the network "
            "or the catalogue's asset links, then run again"
        ) from exc
    out = []
    for i, p in enumerate(batch):
        names = [*p.keys, *([p.scl] if p.scl else [])]
        out.append(np.stack([ds[k].values[i] for k in names]))
    return out


def fill_cube(
    cube: SeriesCube,
    planned: list[PlannedItem],
    reporter: Reporter,
    *,
    block_px: int = BLOCK_PX,
    items_per_read: int = ITEMS_PER_READ,
    threads: int = 1,
) -> dict[str, list[dict]]:
    """Load `planned` items into `cube` (whose dates are the items' days), block by block.

    Returns:
        Per date (ISO), the items merged into it, with their baseline offset.
    """
    day_index = {d: i for i, d in enumerate(cube.dates)}
    target = cube.grid.crs.to_string()  # item CRSs are EPSG:n strings
    order = sorted(planned, key=lambda p: (p.day, p.crs != target, p.item.id))  # type: ignore[attr-defined]
    blocks = []
    for window in cube.grid.blocks(block_px):
        block = cube.grid.subgrid(window)
        bbox = block.lonlat_bounds()
        hits = [p for p in order if _overlaps(p.lonlat_bbox, bbox)]
        batches, current = [], []
        for day_items in _by_day(hits):
            if current and len(current) + len(day_items) > items_per_read:
                batches.append(current)
                current = []
            current.extend(day_items)
        if current:
            batches.append(current)
        blocks.append((window, block, batches))
    reporter.start("sentinel2", sum(len(b[2]) for b in blocks) or 1, unit="reads")
    used: dict[str, list[dict]] = {}
    for window, block, batches in blocks:
        for batch in batches:
            reporter.check_cancelled()
            planes = _read(batch, block, threads)
            _merge_into(cube, day_index, batch, planes, window, used)
            reporter.advance(1)
    if not any(b[2] for b in blocks):
        reporter.advance(1)
    return used


def _by_day(items: list[PlannedItem]) -> list[list[PlannedItem]]:
    groups: dict[dt.date, list[PlannedItem]] = {}
    for p in items:
        groups.setdefault(p.day, []).append(p)
    return list(groups.values())


def _merge_into(
    cube: SeriesCube,
    day_index: dict[dt.date, int],
    batch: list[PlannedItem],
    planes: list[np.ndarray],
    window: Window,
    used: dict[str, list[dict]],
) -> None:
    """Merge one read of items into the cube's `window`: per day, first valid pixel wins."""
    nb = cube.data.shape[1]
    for day_items in _by_day(batch):
        t = day_index[day_items[0].day]
        merged_data: np.ndarray | None = None
        merged_masks: np.ndarray | None = None
        filled: np.ndarray | None = None
        for p in day_items:
            plane = planes[batch.index(p)]
            data, valid = to_reflectance_dn(plane[:nb], p.offset)
            masks = masks_from_scl(plane[nb]) if p.scl else plane[nb : nb + 2].astype(np.uint8)
            if not valid.any():
                continue
            if merged_data is None:
                merged_data = np.zeros_like(data)
                merged_masks = np.zeros_like(masks)
                filled = np.zeros(valid.shape, bool)
            take = valid & ~filled
            merged_data[:, take] = data[:, take]
            merged_masks[:, take] = masks[:, take]
            filled |= take
            used.setdefault(p.day.isoformat(), [])
            entry = {"id": p.item.id, "offset": p.offset}  # type: ignore[attr-defined]
            if entry not in used[p.day.isoformat()]:
                used[p.day.isoformat()].append(entry)
        if merged_data is None:
            continue
        rows, cols = window.toslices()
        cube.data[t, :, rows, cols] = merged_data
        cube.masks[t, :, rows, cols] = merged_masks
