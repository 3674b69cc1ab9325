"""The interface every Sentinel-2 source implements, and the CRS a series is loaded in."""

from __future__ import annotations

from pathlib import Path

from rasterio.crs import CRS
from rasterio.errors import CRSError

from engine.errors import InvalidInput
from engine.progress import Reporter
from engine.sentinel2.cache import default_cache_dir
from engine.sentinel2.cube import SeriesCube
from engine.sentinel2.prepare import SuperPatch
from engine.sentinel2.settings import Sentinel2Settings


def series_crs(crs: str | CRS) -> CRS:
    """The CRS of a series' grid, from ``"epsg:2154"``, WKT or a CRS. Geographic CRSs are refused.

    Raises:
        InvalidInput: the CRS is unknown or not projected.
    """
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InvalidInput(f"unknown CRS {crs!r}: {exc}") from exc
    if not parsed.is_projected:
        raise InvalidInput(
            f"the Sentinel-2 grid needs a projected CRS in metres, not {parsed.to_string()}; "
            "use the processing CRS (for example EPSG:2154 or a UTM zone)"
        )
    return parsed


class Sentinel2Source:
    """Where a Sentinel-2 series comes from. Subclasses implement `load` or
    `superpatch_for_patch` (FLAIR dataset folders serve patches by name, not areas)."""

    serves_patches = False

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    @property
    def source_id(self) -> str:
        """What identifies this source in cache keys and logs."""
        raise NotImplementedError

    def load(
        self,
        crs: str | CRS,
        bounds: tuple[float, float, float, float],
        year: int,
        settings: Sentinel2Settings,
        reporter: Reporter,
    ) -> SeriesCube:
        """The series of `year` over `bounds` (processing CRS) plus half a super-patch."""
        raise InvalidInput(
            f"the Sentinel-2 source {self.source_id} serves FLAIR patches by name "
            "(superpatch_for_patch), not areas; use a STAC source for orthophotos"
        )

    def superpatch_for_patch(self, patch_name: str) -> SuperPatch:
        """The super-patch of a FLAIR patch (FLAIR dataset folders only)."""
        raise InvalidInput(
            f"the Sentinel-2 source {self.source_id} serves areas, not FLAIR patches by name; "
            "use flair:PATH for the FLAIR dataset"
        )
