"""Sentinel-2 series from a STAC API (Earth Search, Planetary Computer, any other) or from a
local static STAC catalogue: search the area and the year, then load through `loader`.

Both share the loader and the cache; they differ only in how items are found. The API source
searches with pystac-client (retrying with back-off on HTTP errors and refused connections);
the catalogue source walks the catalogue's items and keeps those meeting the area and the year.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from rasterio.crs import CRS

from engine.errors import DownloadError, InputNotFound, InvalidInput, OutputError
from engine.grid import Grid
from engine.io.destination import published_folder
from engine.progress import Reporter
from engine.sentinel2.bands import boa_offset, check_bands
from engine.sentinel2.base import Sentinel2Source, series_crs
from engine.sentinel2.cache import CACHE_ENV, cache_key
from engine.sentinel2.cube import META_FILE, SeriesCube
from engine.sentinel2.loader import fill_cube, plan_items
from engine.sentinel2.settings import Sentinel2Settings

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
EARTH_SEARCH_COLLECTION = "sentinel-2-c1-l2a"
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
PLANETARY_COMPUTER_COLLECTION = "sentinel-2-l2a"


class StacSource(Sentinel2Source):
    """A STAC API or a static catalogue of Sentinel-2 L2A items."""

    def __init__(
        self,
        *,
        url: str | None = None,
        catalog: Path | None = None,
        collection: str = EARTH_SEARCH_COLLECTION,
        sign: bool = False,
        cache_dir: Path | None = None,
        retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 60.0,
        threads: int = 4,
        block_px: int = 256,
    ) -> None:
        super().__init__(cache_dir)
        if (url is None) == (catalog is None):
            raise InvalidInput("a STAC source needs exactly one of an API URL or a catalogue path")
        self.url = url
        self.catalog = Path(catalog) if catalog is not None else None
        self.collection = collection
        self.sign = sign
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.threads = threads
        self.block_px = block_px
        if self.catalog is not None:
            self.catalog = _catalog_file(self.catalog)

    @property
    def source_id(self) -> str:
        if self.url is not None:
            return f"stac:{self.url}#{self.collection}"
        stat = self.catalog.stat()  # type: ignore[union-attr]
        return f"catalog:{self.catalog}@{stat.st_mtime_ns}"

    # loading -------------------------------------------------------------------------------
    def load(
        self,
        crs: str | CRS,
        bounds: tuple[float, float, float, float],
        year: int,
        settings: Sentinel2Settings,
        reporter: Reporter,
    ) -> SeriesCube:
        bands = check_bands(settings.bands)
        grid = Grid.aligned(series_crs(crs), bounds, settings.res_m, settings.superpatch_px // 2)
        key = cache_key(self.source_id, grid, year, bands, settings.superpatch_px)
        entry = self.cache_dir / key
        if (entry / META_FILE).exists():
            reporter.log(f"Sentinel-2 {year}: series read from the cache {entry}")
            return SeriesCube.open(entry)
        reporter.log(f"Sentinel-2 {year}: searching {self.source_id} over {grid.lonlat_bounds()}")
        items = self.search(grid.lonlat_bounds(), year)
        planned = plan_items(items, bands, boa_offset, reporter.log)
        days = sorted({p.day for p in planned if p.day.year == year})
        planned = [p for p in planned if p.day.year == year]
        info: dict[str, Any] = {"source": self.source_id, "year": year, "bands": list(bands)}
        if not planned:
            reporter.log(
                f"no Sentinel-2 product found for {year} over this area in {self.source_id}",
                level="WARNING",
            )
            return SeriesCube.empty(grid, len(bands), settings.superpatch_px, info)
        reporter.log(
            f"Sentinel-2 {year}: {len(planned)} products on {len(days)} days, grid "
            f"{grid.width} x {grid.height} px at {grid.res_m:g} m in {grid.crs}"
        )
        _configure_gdal(self.retries, self.backoff_s, self.timeout_s)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the Sentinel-2 cache folder {self.cache_dir} ({exc.strerror}); "
                f"set {CACHE_ENV} to a writable folder"
            ) from None
        # an entry without its metadata file is a broken one (or not ours): it is rebuilt
        with published_folder(entry, overwrite=True) as tmp:
            cube = SeriesCube.allocate(tmp, grid, days, len(bands), settings.superpatch_px, info)
            info["items"] = fill_cube(
                cube, planned, reporter, block_px=self.block_px, threads=self.threads
            )
            cube.save_metadata(tmp)
            del cube
        reporter.log(f"Sentinel-2 {year}: series cached in {entry}")
        return SeriesCube.open(entry)

    # searching -----------------------------------------------------------------------------
    def search(self, lonlat_bbox: tuple[float, float, float, float], year: int) -> list:
        """Items of the collection meeting `lonlat_bbox` during `year` (plus a day either side,
        for solar days that cross midnight UTC)."""
        start = dt.datetime(year, 1, 1) - dt.timedelta(days=1)
        end = dt.datetime(year, 12, 31, 23, 59, 59) + dt.timedelta(days=1)
        if self.catalog is not None:
            return self._search_catalog(lonlat_bbox, start, end)
        return self._search_api(lonlat_bbox, start, end)

    def _search_catalog(self, bbox, start: dt.datetime, end: dt.datetime) -> list:
        import pystac

        try:
            root = pystac.read_file(str(self.catalog))
        except (OSError, ValueError, KeyError, pystac.STACError) as exc:
            raise InvalidInput(f"{self.catalog} is not a readable STAC catalogue: {exc}") from exc
        if not isinstance(root, pystac.Catalog):
            raise InvalidInput(f"{self.catalog} is a STAC {type(root).__name__}, not a catalogue")
        found = []
        for item in root.get_items(recursive=True):
            if self.collection and item.collection_id not in (None, self.collection):
                continue
            when = item.datetime
            if when is None or not item.bbox:
                continue
            if when.tzinfo is not None:
                when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
            b = item.bbox
            meets = b[0] < bbox[2] and bbox[0] < b[2] and b[1] < bbox[3] and bbox[1] < b[3]
            if meets and start <= when <= end:
                found.append(item)
        return found

    def _search_api(self, bbox, start: dt.datetime, end: dt.datetime) -> list:
        import pystac
        import requests
        from pystac_client import Client
        from pystac_client.exceptions import APIError
        from pystac_client.stac_api_io import StacApiIO
        from urllib3.util.retry import Retry

        retry = Retry(
            total=self.retries,
            backoff_factor=self.backoff_s,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None,
        )
        io = StacApiIO(max_retries=retry, timeout=self.timeout_s)
        modifier = _planetary_computer_signer() if self.sign else None
        try:
            client = Client.open(self.url, stac_io=io, modifier=modifier)
            search = client.search(
                collections=[self.collection],
                bbox=list(bbox),
                datetime=f"{start.isoformat()}Z/{end.isoformat()}Z",
                limit=100,
            )
            return list(search.items())
        except (requests.exceptions.RequestException, APIError) as exc:
            raise DownloadError(
                f"cannot search the STAC API {self.url} (collection {self.collection}): {exc}. "
                "Check the network connection and the URL; a series loaded before for the same "
                "area and year is reused from the cache without network"
            ) from exc
        except (NotImplementedError, ValueError, pystac.STACError) as exc:
            raise InvalidInput(
                f"{self.url} is not a STAC API with item search ({exc}); for a static catalogue "
                "use catalog:PATH"
            ) from exc


def _catalog_file(path: Path) -> Path:
    """A catalogue path: a JSON file, or a folder holding ``catalog.json``/``collection.json``."""
    if path.is_dir():
        for name in ("catalog.json", "collection.json"):
            if (path / name).exists():
                return (path / name).resolve()
        raise InputNotFound(
            f"{path} holds no catalog.json or collection.json; give the file", path=str(path)
        )
    if not path.exists():
        raise InputNotFound(f"the STAC catalogue {path} does not exist", path=str(path))
    return path.resolve()


def _planetary_computer_signer():
    try:
        import planetary_computer
    except ImportError as exc:
        raise InvalidInput(
            "the planetary-computer source needs the planetary-computer package: run "
            "`pip install planetary-computer` in the engine environment, or use --sentinel2 stac"
        ) from exc
    return planetary_computer.sign_inplace


def _configure_gdal(retries: int, backoff_s: float, timeout_s: float) -> None:
    """GDAL settings for reading COGs over HTTP: retries with delay, no directory listing."""
    import odc.stac

    odc.stac.configure_rio(
        cloud_defaults=True,
        GDAL_HTTP_MAX_RETRY=str(retries),
        GDAL_HTTP_RETRY_DELAY=str(max(backoff_s, 0.1)),
        GDAL_HTTP_TIMEOUT=str(int(timeout_s)),
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
    )
