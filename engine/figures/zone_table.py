"""A class-area table per zone, as a run's output: for `zones`, and for `predict --zones` and
`region --zones` at the end of their runs.

One record says where the zones come from and where their table goes; the zones are read and
checked before any work (a misspelt field fails in a second, not after a day's mapping), the
two files are claimed in the run's `Destinations`, and written from the finished map just
before the run's one commit, so they appear with the map or not at all.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.progress import Reporter

if TYPE_CHECKING:
    import geopandas

    from engine.figures.zones import ZoneAreas
    from engine.io.destination import Destinations

LAYER = "zones"
GPKG_SUFFIXES = (".gpkg",)
CSV_SUFFIXES = (".csv",)


@dataclass(frozen=True)
class ZoneTable:
    """A zones layer (`layer` of a multi-layer file; zones named by `field`, else by feature
    id) and the two files of its table: the zones with their areas (`out`, GeoPackage) and the
    long table (`csv`)."""

    zones: Path | str
    layer: str | None
    field: str | None
    out: Path
    csv: Path

    @staticmethod
    def beside(map_path: Path) -> tuple[Path, Path]:
        """Where a run's table goes when not told: `<map stem>_zones.gpkg` and `.csv`."""
        out = map_path.with_name(f"{map_path.stem}_zones.gpkg")
        return out, out.with_suffix(".csv")

    def read(self) -> geopandas.GeoDataFrame:
        """The zones, checked: polygons, a CRS, the field (see `vectors.read_zones`)."""
        from engine.failures import file_name
        from engine.figures.vectors import check_field, read_zones

        zones = read_zones(self.zones, self.layer)
        if self.field is not None:
            check_field(zones, self.field, f"zones {file_name(self.zones)}")
        return zones

    def claim(self, destinations: Destinations) -> None:
        destinations.claim(self.out, "zones layer", GPKG_SUFFIXES)
        destinations.claim(self.csv, "zones table", CSV_SUFFIXES)

    def write(
        self,
        map_path: Path,
        zones: geopandas.GeoDataFrame,
        destinations: Destinations,
        reporter: Reporter,
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Measure `zones` on the map at `map_path` (a finished map, possibly still under its
        temporary name) and write both files to their temporary names; the caller commits.
        Returns the outputs and the headline figures."""
        from engine.figures.maps import open_flair_map
        from engine.figures.vectors import write_zones_with
        from engine.figures.zones import zone_areas

        flair_map = open_flair_map(map_path)
        areas = zone_areas(flair_map, zones, self.field, reporter)
        reporter.check_cancelled()
        write_zones_with(
            zones, areas.wide(), destinations.temporary(self.out), self.out, reporter, LAYER
        )
        _write_csv(areas, destinations.temporary(self.csv), self.csv)
        stats = _stats(areas)
        count = f"{stats['zones']} zone" + ("" if stats["zones"] == 1 else "s")
        reporter.log(
            f"{count}: {_km2(stats['mapped_km2'])} mapped, {_km2(stats['nodata_km2'])} without "
            f"data, {_km2(stats['outside_km2'])} outside the map (overlapping zones each counted)"
        )
        outside = int(((areas.outside_m2 > 0) & (areas.outside_m2 >= areas.zone_m2)).sum())
        if outside:
            reporter.log(f"{outside} zones lie wholly outside the map; they are kept", "WARNING")
        return {"zones": str(self.out), "zones_table": str(self.csv)}, stats


def _km2(value: float) -> str:
    return f"{value:,.{2 if value >= 100 else 6}f} km²"


def _stats(areas: ZoneAreas) -> dict[str, Any]:
    return {
        "zones": len(areas.zone),
        "mapped_km2": round(float(areas.mapped_m2.sum()) / 1e6, 6),
        "nodata_km2": round(float(areas.nodata_m2.sum()) / 1e6, 6),
        "outside_km2": round(float(areas.outside_m2.sum()) / 1e6, 6),
    }


def _write_csv(areas: ZoneAreas, temp: Path, path: Path) -> None:
    from engine.failures import write_failure

    try:
        areas.long().to_csv(temp, index=False, float_format="%.10g")
    except OSError as exc:
        raise write_failure(exc, path) from exc


def add_zone_table_options(group: argparse._ArgumentGroup) -> None:
    """`--zones` and its companions, for a run that ends with a class-area table per zone."""
    group.add_argument(
        "--zones",
        help="polygon layer (communes, parcels; any OGR format and CRS): at the end, the area "
        "of each class per zone, as the zones command writes it",
    )
    group.add_argument("--zones-layer", help="layer of a multi-layer --zones file")
    group.add_argument("--zones-field", help="field naming each zone (default: the feature id)")
    group.add_argument(
        "--zones-out",
        type=Path,
        help="the zones with their areas (.gpkg; default: <map name>_zones.gpkg beside the map); "
        "the long table goes beside it as .csv",
    )


def zone_table_from_args(args: argparse.Namespace, map_path: Path) -> ZoneTable | None:
    """The run's zone table from `add_zone_table_options`' values; None without `--zones`."""
    from engine.cli_values import input_path, output_path
    from engine.errors import InvalidInput

    if not args.zones:
        given = [f"--zones-{n}" for n in ("layer", "field", "out") if getattr(args, f"zones_{n}")]
        if given:
            raise InvalidInput(f"{', '.join(given)} without --zones: give the zones layer too")
        return None
    out = output_path(args.zones_out, "--zones-out")
    out, csv = (out, out.with_suffix(".csv")) if out else ZoneTable.beside(map_path)
    return ZoneTable(
        input_path(args.zones, "--zones"), args.zones_layer, args.zones_field, out, csv
    )
