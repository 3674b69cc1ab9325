"""The `zones` subcommand: class areas of a FLAIR map per zone (commune, parcel, any polygon).

    zones MAP --zones ZONES [--layer NAME] [--field NAME] --out OUT.gpkg [--csv OUT.csv]
          [--overwrite]

Writes OUT.gpkg, layer `zones`: the zones in their own CRS with their attributes and, per zone,
`zone`, `zone_m2`, `mapped_m2`, `mapped_ha`, `nodata_m2`, `nodata_ha`, `outside_m2` and
`<class>_m2`, `<class>_ha`, `<class>_pct` for the 19 FLAIR classes; and OUT.csv (or `--csv`),
one row per zone and code 0..19. Both appear together or not at all. `add_parser` registers it
on the engine CLI's subparsers; `run(args, reporter)` returns `{"outputs": ..., "stats": ...}`,
which the engine CLI emits as its `done` event. Heavy modules are imported when it runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.cli_values import add_common_options, input_path, output_path
from engine.figures.zone_table import ZoneTable
from engine.progress import Reporter


@dataclass(frozen=True)
class ZonesSettings:
    """What `zones` was asked to do, with paths made exact once."""

    map: Path | str
    zones: Path | str
    layer: str | None
    field: str | None
    out: Path
    csv: Path
    overwrite: bool = False

    @property
    def table(self) -> ZoneTable:
        return ZoneTable(self.zones, self.layer, self.field, self.out, self.csv)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ZonesSettings:
        out = output_path(args.out, "--out")
        assert out is not None  # required by the parser
        return cls(
            map=input_path(args.map, "map"),
            zones=input_path(args.zones, "--zones"),
            layer=args.layer,
            field=args.field,
            out=out,
            csv=output_path(args.csv, "--csv") or out.with_suffix(".csv"),
            overwrite=args.overwrite,
        )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `zones` on `subparsers` (from `ArgumentParser.add_subparsers`)."""
    p = subparsers.add_parser(
        "zones",
        help="area of each land-cover class per zone (commune, parcel, any polygon)",
        description="Measure the area of each FLAIR class of a map inside each polygon of a "
        "zones layer; boundary pixels count by the fraction of them inside the zone. Writes the "
        "zones with their areas (GeoPackage) and a long table (CSV).",
    )
    p.add_argument("map", help="FLAIR map: a predict GeoTIFF or a region's landcover.vrt")
    p.add_argument("--zones", required=True, help="polygon layer, any OGR format and CRS")
    p.add_argument("--layer", help="layer of a multi-layer zones file")
    p.add_argument("--field", help="field naming each zone (default: the feature id)")
    p.add_argument("--out", type=Path, required=True, help="zones with their areas (.gpkg)")
    p.add_argument("--csv", type=Path, help="long table (default: OUT with suffix .csv)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_common_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run `zones` from parsed arguments; returns outputs and headline stats."""
    return run_zones(ZonesSettings.from_args(args), reporter or Reporter())


def run_zones(settings: ZonesSettings, reporter: Reporter) -> dict[str, Any]:
    """Check the inputs, claim the outputs, measure every zone, then write and commit both."""
    from engine.figures.maps import open_flair_map
    from engine.io.destination import Destinations

    open_flair_map(settings.map)  # refused before the zones are read
    zones = settings.table.read()
    with Destinations(settings.overwrite) as destinations:
        settings.table.claim(destinations)
        outputs, stats = settings.table.write(Path(settings.map), zones, destinations, reporter)
        destinations.commit()
    return {"outputs": {"zones": outputs["zones"], "table": outputs["zones_table"]}, "stats": stats}
