"""STAC sources: a generated catalogue of COGs on the UTM 31/32 border, read offline and through a
loopback STAC API; baseline offset, same-day merge, zone crossing, cache, errors."""

from __future__ import annotations

import datetime as dt
import socket
import sys
from dataclasses import replace

import numpy as np
import pytest
from rasterio.windows import Window

from engine.errors import Cancelled, DownloadError, InvalidInput
from engine.grid import Grid
from engine.progress import Reporter
from engine.sentinel2 import SeriesCube, StacSource, open_source, prepare_superpatch
from engine.sentinel2.base import series_crs
from engine.sentinel2.settings import Sentinel2Settings
from engine.sentinel2.stac import EARTH_SEARCH_COLLECTION, EARTH_SEARCH_URL
from tests.engine.recording import Said
from tests.fixtures.sentinel2_catalog import (
    ACQUISITIONS,
    StacApiServer,
    border_xy,
    item_extent,
    make_catalog,
    reflectance,
)

SETTINGS = Sentinel2Settings()
YEAR = 2022
ALL_DATES = [a.date for a in ACQUISITIONS]
ZONE31_DATES = [i for i, a in enumerate(ACQUISITIONS) if 31 in a.zones]
ZONE32_DATES = [i for i, a in enumerate(ACQUISITIONS) if 32 in a.zones]
CONSTANT_BANDS = [0, 3, 4, 5, 6, 7, 8, 9]  # B3 and B4 carry position codes in zone 31


def area(epsg: int, half_m: float = 500.0) -> tuple[float, float, float, float]:
    cx, cy = border_xy(epsg)
    return (cx - half_m, cy - half_m, cx + half_m, cy + half_m)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return make_catalog(tmp_path_factory.mktemp("s2catalog"))


@pytest.fixture(scope="module")
def cube_utm31(catalog, tmp_path_factory):
    source = open_source(f"catalog:{catalog}", cache_dir=tmp_path_factory.mktemp("cache"))
    return source.load("EPSG:32631", area(32631), YEAR, SETTINGS, Reporter())


def test_cube_grid_dates_and_items(cube_utm31):
    grid = cube_utm31.grid
    assert grid.crs == "EPSG:32631" and grid.res_m == 10.0
    assert grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    assert grid.width == grid.height == 141  # 1 km (+1 px to align) + 2 x 20 px of buffer
    assert cube_utm31.dates == ALL_DATES
    assert cube_utm31.data.shape == (6, 10, 141, 141) and cube_utm31.masks.shape == (6, 2, 141, 141)
    offsets = {day: [e["offset"] for e in items] for day, items in cube_utm31.info["items"].items()}
    assert offsets["2022-01-12"] == [0, 0]  # baseline 03.01
    assert offsets["2022-02-16"] == [1000, 1000]  # baseline 04.00
    assert offsets["2022-03-18"] == [0, 0]  # 04.00, offset already removed by the provider


def test_baseline_offset_applied_exactly_once(cube_utm31):
    cx, cy = border_xy(32631)
    sp = cube_utm31.superpatch(cx - 450, cy)  # zone 31 only
    assert sp.dates == [ALL_DATES[i] for i in ZONE31_DATES]
    for t, d_idx in enumerate(ZONE31_DATES):
        for b in CONSTANT_BANDS:
            assert np.all(sp.data[t, b] == reflectance(b, d_idx, 31)), (d_idx, b)


def test_superpatch_is_centred_on_the_point(cube_utm31):
    cx, cy = border_xy(32631)
    x, y = cx - 450, cy + 37
    sp = cube_utm31.superpatch(x, y)
    grid = cube_utm31.grid
    window = grid.centred_window(x, y, 40)
    # the centre is the pixel corner nearest to the point
    x_min, y_max = grid.transform.c, grid.transform.f
    assert abs(x_min + (window.col_off + 20) * 10 - x) <= 5
    assert abs(y_max - (window.row_off + 20) * 10 - y) <= 5
    # B3 = 3000 + column, B4 = 3000 + row of the zone-31 item's own 10 m grid
    xmin, _, _, ymax = item_extent(31)
    col0 = round((x_min - xmin) / 10) + window.col_off
    row0 = round((ymax - y_max) / 10) + window.row_off
    assert np.array_equal(sp.data[0, 1], np.broadcast_to(3000 + col0 + np.arange(40), (40, 40)))
    assert np.array_equal(
        sp.data[0, 2], np.broadcast_to(3000 + row0 + np.arange(40)[:, None], (40, 40))
    )


def test_same_day_items_of_two_zones_are_merged(cube_utm31):
    cx, cy = border_xy(32631)
    east = cube_utm31.superpatch(cx + 450, cy)  # zone 32 only
    assert east.dates == [ALL_DATES[i] for i in ZONE32_DATES]
    for t, d_idx in enumerate(ZONE32_DATES):
        assert np.all(east.data[t, 0] == reflectance(0, d_idx, 32))
    both = cube_utm31.superpatch(cx, cy)  # overlap: the item in the grid's own zone wins
    assert both.dates == ALL_DATES
    assert np.all(
        both.data[:, 0] == np.array([reflectance(0, i, 31) for i in range(6)])[:, None, None]
    )
    # a day covered by both zones has data everywhere; one covered by zone 31 only has a hole
    full = np.all(cube_utm31.data[0].any(axis=0))
    holed = not np.all(cube_utm31.data[2].any(axis=0))
    assert full and holed


def test_masks_and_preparation(cube_utm31):
    cx, cy = border_xy(32631)
    sp = cube_utm31.superpatch(cx - 450, cy)
    assert sp.masks[:, 1, 0, 0].tolist() == [5, 0, 90, 0, 0, 0]  # cloud; 0 is a valid value
    assert sp.masks[:, 0, 0, 0].tolist() == [0, 0, 0, 70, 0, 0]  # snow
    out = prepare_superpatch(sp, SETTINGS)
    # 02-21 (cloud 90) and 03-08 (snow 70) dropped; Jan, Feb, Mar, Jun remain
    assert out.day_offsets.tolist() == [120.0, 89.0, 61.0, -31.0]
    assert out.data[:, 0, 0, 0].tolist() == [500.0, 510.0, 540.0, 550.0]


def test_zone_crossing_into_lambert93(catalog, tmp_path):
    source = open_source(f"catalog:{catalog}", cache_dir=tmp_path)
    cube = source.load("EPSG:2154", area(2154), YEAR, SETTINGS, Reporter())
    assert cube.grid.crs == "EPSG:2154" and cube.dates == ALL_DATES
    from pyproj import Transformer

    to_l93 = Transformer.from_crs(32631, 2154, always_xy=True)
    cx, cy = border_xy(32631)
    west = cube.superpatch(*to_l93.transform(cx - 450, cy))
    east = cube.superpatch(*to_l93.transform(cx + 450, cy))
    assert west.dates == [ALL_DATES[i] for i in ZONE31_DATES]
    assert east.dates == [ALL_DATES[i] for i in ZONE32_DATES]
    assert np.all(
        west.data[:, 5] == np.array([reflectance(5, i, 31) for i in ZONE31_DATES])[:, None, None]
    )
    assert np.all(
        east.data[:, 5] == np.array([reflectance(5, i, 32) for i in ZONE32_DATES])[:, None, None]
    )


def test_blocks_give_the_same_cube(catalog, cube_utm31, tmp_path):
    source = StacSource(catalog=catalog, cache_dir=tmp_path, block_px=71, threads=1)
    cube = source.load("EPSG:32631", area(32631), YEAR, SETTINGS, Reporter())
    assert np.array_equal(np.asarray(cube.data), np.asarray(cube_utm31.data))
    assert np.array_equal(np.asarray(cube.masks), np.asarray(cube_utm31.masks))


def test_stac_api_over_loopback_then_cache_without_network(catalog, cube_utm31, tmp_path):
    with StacApiServer(catalog, lifetime_s=60) as server:
        source = open_source(
            f"stac:{server.url}#sentinel-2-c1-l2a", cache_dir=tmp_path, retries=1, backoff_s=0.01
        )
        cube = source.load("EPSG:32631", area(32631), YEAR, SETTINGS, Reporter())
        assert any(r.startswith(("POST /search", "GET /search")) for r in server.requests)
        assert any(r.startswith("GET /files/") for r in server.requests)
    assert cube.dates == ALL_DATES
    assert np.array_equal(np.asarray(cube.data), np.asarray(cube_utm31.data))
    # the server is gone: a second run reads the cache
    reporter = Said()
    again = open_source(f"stac:{server.url}#sentinel-2-c1-l2a", cache_dir=tmp_path).load(
        "EPSG:32631", area(32631), YEAR, SETTINGS, reporter
    )
    assert any("cache" in line for line in reporter.lines)
    assert np.array_equal(np.asarray(again.data), np.asarray(cube.data))
    # another year or area is another cache entry, which needs the network
    with pytest.raises(DownloadError):
        open_source(f"stac:{server.url}", cache_dir=tmp_path, retries=0).load(
            "EPSG:32631", area(32631), 2021, SETTINGS, Reporter()
        )


def test_unreachable_service_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = open_source(
        f"stac:http://127.0.0.1:{port}", cache_dir=tmp_path, retries=1, backoff_s=0.01
    )
    with pytest.raises(DownloadError, match=r"cannot search the STAC API http://127\.0\.0\.1"):
        source.load("EPSG:32631", area(32631), YEAR, SETTINGS, Reporter())
    assert list(tmp_path.iterdir()) == []


def test_cancel_leaves_no_cache_entry(catalog, tmp_path):
    reporter = Reporter()
    reporter.cancel()
    with pytest.raises(Cancelled):
        open_source(f"catalog:{catalog}", cache_dir=tmp_path).load(
            "EPSG:32631", area(32631), YEAR, SETTINGS, reporter
        )
    assert list(tmp_path.iterdir()) == []


def test_no_product_gives_an_empty_cube(catalog, tmp_path):
    cube = open_source(f"catalog:{catalog}", cache_dir=tmp_path).load(
        "EPSG:32631", area(32631), 2019, SETTINGS, Reporter()
    )
    assert cube.num_dates == 0
    cx, cy = border_xy(32631)
    assert prepare_superpatch(cube.superpatch(cx, cy), SETTINGS) is None


def test_open_source_specs(tmp_path, catalog):
    default = open_source("stac", cache_dir=tmp_path)
    assert (default.url, default.collection) == (EARTH_SEARCH_URL, EARTH_SEARCH_COLLECTION)
    custom = open_source("stac:https://example.org/api/#my-s2", cache_dir=tmp_path)
    assert (custom.url, custom.collection) == ("https://example.org/api", "my-s2")
    assert open_source(f"catalog:{catalog.parent}", cache_dir=tmp_path).catalog == catalog
    for bad in ("ftp:x", "stac:not-a-url", "catalog:", ""):
        with pytest.raises(InvalidInput):
            open_source(bad, cache_dir=tmp_path)


def test_planetary_computer_without_its_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import now raises ImportError
    source = open_source("planetary-computer", cache_dir=tmp_path)
    with pytest.raises(InvalidInput, match="pip install planetary-computer"):
        source.load("EPSG:32631", area(32631), YEAR, SETTINGS, Reporter())


def test_planetary_computer_items_are_signed_by_its_client(tmp_path):
    import planetary_computer

    from engine.sentinel2.stac import _planetary_computer_signer

    source = open_source("planetary-computer", cache_dir=tmp_path)
    assert source.sign and source.url == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert source.collection == "sentinel-2-l2a"
    assert _planetary_computer_signer() is planetary_computer.sign_inplace


def test_grid_rules():
    grid = Grid.aligned(series_crs("epsg:32631"), (1001.0, 2003.0, 1999.0, 2999.0), 10.0, 20)
    assert grid.crs == "EPSG:32631"
    assert grid.bounds == (800.0, 1800.0, 2200.0, 3200.0)
    assert grid.centred_window(1500.0, 2500.0, 40) == Window(50, 50, 40, 40)
    assert grid.centred_window(1504.9, 2495.1, 40) == Window(50, 50, 40, 40)
    with pytest.raises(InvalidInput, match="leaves"):
        SeriesCube.empty(grid, 10, 40, {}).superpatch(900.0, 2500.0)
    with pytest.raises(InvalidInput, match="projected"):
        series_crs("EPSG:4326")
    with pytest.raises(InvalidInput, match="unknown CRS"):
        series_crs("EPSG:999999")
    with pytest.raises(InvalidInput, match="empty"):
        Grid.aligned(series_crs("EPSG:2154"), (10.0, 0.0, 0.0, 10.0))
    assert list(grid.blocks(100))[-1] == Window(100, 100, 40, 40)


def test_unknown_band_is_refused(catalog, tmp_path):
    settings = replace(SETTINGS, bands=("B2", "B99"))
    with pytest.raises(InvalidInput, match="B99"):
        open_source(f"catalog:{catalog}", cache_dir=tmp_path).load(
            "EPSG:32631", area(32631), YEAR, settings, Reporter()
        )


def test_solar_day_groups_items_by_local_day():
    from engine.sentinel2.loader import solar_day

    class Item:
        datetime = dt.datetime(2022, 1, 12, 23, 30, tzinfo=dt.timezone.utc)
        bbox = [5.9, 45.4, 6.1, 45.6]

    assert solar_day(Item()) == dt.date(2022, 1, 12)  # 23:30 UTC + 24 min
    Item.bbox = [14.0, 45.0, 16.0, 46.0]
    assert solar_day(Item()) == dt.date(2022, 1, 13)  # + 1 h


def test_unreadable_image_is_a_download_error_and_caches_nothing(tmp_path):
    catalog = make_catalog(tmp_path / "cat", ACQUISITIONS[:1])
    next((tmp_path / "cat" / "cogs").glob("*32TGL*/nir.tif")).unlink()
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="reading Sentinel-2 images failed.*S2B_32TGL"):
        open_source(f"catalog:{catalog}", cache_dir=cache).load(
            "EPSG:32631", area(32631), YEAR, SETTINGS, Reporter()
        )
    assert list(cache.iterdir()) == []


def test_search_retries_after_http_errors(catalog, tmp_path):
    with StacApiServer(catalog, lifetime_s=60, fail_first=2) as server:
        source = open_source(f"stac:{server.url}", cache_dir=tmp_path, retries=3, backoff_s=0.01)
        items = source.search((5.99, 45.49, 6.01, 45.51), YEAR)
        assert len(items) == 9
        assert sum(r.startswith("POST /search") for r in server.requests) == 3
    with StacApiServer(catalog, lifetime_s=60, fail_first=5) as server:
        source = open_source(f"stac:{server.url}", cache_dir=tmp_path, retries=1, backoff_s=0.01)
        with pytest.raises(DownloadError, match="cannot search"):
            source.search((5.99, 45.49, 6.01, 45.51), YEAR)


def test_a_skipped_item_is_a_warning_of_the_reporter_and_the_load_goes_on(tmp_path):
    """One message channel: the skipped item reaches the plugin's JSON lines as a WARNING."""
    import io
    import json

    from engine.progress import JsonLinesReporter

    catalog = make_catalog(tmp_path / "cat", ACQUISITIONS[:2])
    skipped = "S2B_32TGL_20220216_0_L2A"
    item_file = next((tmp_path / "cat").rglob(f"{skipped}.json"))
    item = json.loads(item_file.read_text())
    del item["assets"]["nir"]
    item_file.write_text(json.dumps(item))
    stream = io.StringIO()
    cube = open_source(f"catalog:{catalog}", cache_dir=tmp_path / "cache").load(
        "EPSG:32631", area(32631), YEAR, SETTINGS, JsonLinesReporter(stream)
    )
    assert cube.dates == [a.date for a in ACQUISITIONS[:2]]  # the zone 31 item of that day
    assert all(e["id"] != skipped for items in cube.info["items"].values() for e in items)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    warnings = [e["message"] for e in events if e["event"] == "log" and e["level"] == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"skipping Sentinel-2 item {skipped}: ")
