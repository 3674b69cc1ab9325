"""The `change` subcommand: land-cover change and land take between two FLAIR maps.

    change BEFORE AFTER OUT_DIR [--zones ZONES] [--layer NAME] [--field NAME]
           [--grid after|before] [--groups GROUPS.json] [--block-size PX] [--overwrite]

Writes the folder OUT_DIR, which appears complete or not at all:

- `change.tif`: uint16, `before * 100 + after` where the class changed, 0 elsewhere (nodata),
  with `change.qml` beside it (one legend entry per change present);
- `transitions.csv`: areas in ha, rows the before classes, columns the after classes;
- `land_take.csv` and `land_take.json`: land take, renaturation, net, changed and compared
  areas in m² and ha, and the groups used;
- `report.html`: one self-contained page (figures, heatmap, groups);
- with `--zones`: `zones.gpkg` (layer `zones`: the zones in their own CRS with their fields,
  `zone`, `land_take_ha`, `renaturation_ha`, `net_ha`, `changed_ha`, `compared_ha`) and
  `zones_transitions.csv` (`zone,before,after,area_m2`, compared area per pair, unchanged
  pairs included).

`add_parser` registers it on the engine CLI's subparsers; `run(args, reporter)` returns
`{"outputs": ..., "stats": ...}`, which the engine CLI emits as its `done` event. Heavy modules
are imported when it runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli_values import add_common_options, input_path, output_path
from engine.errors import InvalidInput, OutputError
from engine.progress import Reporter

if TYPE_CHECKING:
    import geopandas

    from engine.figures.change import ZoneTransitions
    from engine.figures.land_take import Groups

DEFAULT_BLOCK_PX = 2048
MIN_BLOCK_PX = 16
CHANGE_TIF = "change.tif"
CHANGE_QML = "change.qml"
TRANSITIONS_CSV = "transitions.csv"
LAND_TAKE_CSV = "land_take.csv"
LAND_TAKE_JSON = "land_take.json"
REPORT_HTML = "report.html"
ZONES_GPKG = "zones.gpkg"
ZONES_CSV = "zones_transitions.csv"
PAIRS_TIF = ".pairs.tif"  # every compared pixel's pair, for the zones; removed before publishing
ZONES_LAYER = "zones"
ZONE_FIGURES = ("land_take", "renaturation", "net", "changed", "compared")


@dataclass(frozen=True)
class ChangeSettings:
    """What `change` was asked to do, with paths made exact and groups read once."""

    before: Path | str
    after: Path | str
    out_dir: Path
    groups: Groups
    zones: Path | str | None = None
    layer: str | None = None
    field: str | None = None
    grid: str = "after"
    block_px: int = DEFAULT_BLOCK_PX
    overwrite: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ChangeSettings:
        from engine.figures.land_take import DEFAULT_GROUPS, groups_from_json

        if args.block_size < MIN_BLOCK_PX:
            raise InvalidInput(
                f"--block-size {args.block_size} is too small; give at least {MIN_BLOCK_PX} px "
                f"(default {DEFAULT_BLOCK_PX})"
            )
        out_dir = output_path(args.out_dir, "OUT_DIR")
        assert out_dir is not None  # a positional argument
        groups_path = input_path(str(args.groups), "--groups") if args.groups else None
        return cls(
            before=input_path(args.before, "BEFORE map"),
            after=input_path(args.after, "AFTER map"),
            out_dir=out_dir.absolute(),
            groups=groups_from_json(Path(groups_path)) if groups_path else DEFAULT_GROUPS,
            zones=input_path(args.zones, "--zones") if args.zones else None,
            layer=args.layer,
            field=args.field,
            grid=args.grid,
            block_px=args.block_size,
            overwrite=args.overwrite,
        )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `change` on `subparsers` (from `ArgumentParser.add_subparsers`)."""
    p = subparsers.add_parser(
        "change",
        help="land-cover change and land take between two dates",
        description="Compare two FLAIR maps of the same place (two orthophoto campaigns): the "
        "change raster, the transition matrix in hectares, land take (natural, agricultural or "
        "forest land become artificial) and renaturation, optionally per zone, and an HTML "
        "report, in a folder that appears complete or not at all.",
    )
    p.add_argument("before", help="earlier FLAIR map (predict GeoTIFF or a region's VRT)")
    p.add_argument("after", help="later FLAIR map; may be on another grid or CRS")
    p.add_argument("out_dir", type=Path, help="output folder (created; must not exist)")
    p.add_argument("--zones", help="polygon layer (communes, parcels), any OGR format and CRS")
    p.add_argument("--layer", help="layer of a multi-layer zones file")
    p.add_argument("--field", help="field naming each zone (default: the feature id)")
    p.add_argument(
        "--grid",
        choices=("after", "before"),
        default="after",
        help="whose grid the comparison and outputs use (default: after); the other map is "
        "aligned to it by nearest class",
    )
    p.add_argument(
        "--groups",
        type=Path,
        help='JSON {"artificial": [codes], "natural": [codes]} replacing the default groups',
    )
    p.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK_PX,
        help=f"block side in pixels (default {DEFAULT_BLOCK_PX}); memory grows with its square",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT_DIR and all it holds"
    )
    add_common_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run `change` from parsed arguments; returns outputs and headline stats."""
    return run_change(ChangeSettings.from_args(args), reporter or Reporter())


def run_change(settings: ChangeSettings, reporter: Reporter) -> dict[str, Any]:
    """Check every input, then compare block by block and write the folder in one publish."""
    from engine.figures.change import comparison_maps, compute_change
    from engine.figures.maps import open_flair_map
    from engine.figures.vectors import read_zones, zone_names
    from engine.io.destination import published_folder

    before = open_flair_map(settings.before, "before map")
    after = open_flair_map(settings.after, "after map")
    comparison_maps(before, after, settings.grid)  # refuses maps apart before any work
    zones = read_zones(settings.zones, settings.layer) if settings.zones is not None else None
    if zones is not None:
        zone_names(zones, settings.field)  # refuses a missing field before any work
    out_dir = settings.out_dir
    if (out_dir.exists() or out_dir.is_symlink()) and not settings.overwrite:
        raise OutputError(f"{out_dir} already exists; add --overwrite to replace it")
    outputs = {
        "change": CHANGE_TIF,
        "style": CHANGE_QML,
        "transitions": TRANSITIONS_CSV,
        "land_take": LAND_TAKE_JSON,
        "land_take_table": LAND_TAKE_CSV,
        "report": REPORT_HTML,
    }
    if zones is not None:
        outputs.update(zones=ZONES_GPKG, zones_transitions=ZONES_CSV)
    with published_folder(out_dir, overwrite=settings.overwrite) as folder:
        pairs = folder / PAIRS_TIF if zones is not None else None
        result = compute_change(
            before,
            after,
            folder / CHANGE_TIF,
            grid_role=settings.grid,
            block_px=settings.block_px,
            reporter=reporter,
            pairs_path=pairs,
        )
        land_take = _write_figures(folder, settings, result)
        if zones is not None and pairs is not None:
            from engine.figures.change import zone_transitions

            measured = zone_transitions(pairs, result.grid, zones, settings.field, reporter)
            pairs.unlink()
            _write_zones(folder, zones, measured, settings.groups, reporter)
        reporter.check_cancelled()
    in_ha = land_take.as_ha()
    stats = {
        "compared_km2": round(land_take.compared_m2 / 1e6, 6),
        "changed_km2": round(land_take.changed_m2 / 1e6, 6),
        **{key: round(in_ha[key], 6) for key in ("land_take_ha", "renaturation_ha", "net_ha")},
    }
    reporter.log(
        f"compared {stats['compared_km2']:.4f} km², changed {stats['changed_km2']:.4f} km²; "
        f"land take {stats['land_take_ha']:.4f} ha, renaturation "
        f"{stats['renaturation_ha']:.4f} ha, net {stats['net_ha']:.4f} ha "
        f"({_groups_source(settings.groups)})"
    )
    return {"outputs": {k: str(out_dir / v) for k, v in outputs.items()}, "stats": stats}


def _groups_source(groups: Groups) -> str:
    if groups.source == "default":
        return "default groups"
    return f"groups of {Path(groups.source).name}"


def _write_figures(folder: Path, settings: ChangeSettings, result: Any) -> Any:
    """change.qml, transitions.csv, land_take.csv/.json and report.html; returns the LandTake."""
    from engine.figures.change import write_transitions_csv
    from engine.figures.change_report import ReportInputs, change_qml, write_report_html
    from engine.figures.land_take import (
        LandTake,
        land_take_doc,
        write_land_take_csv,
        write_land_take_json,
    )

    transitions = result.transitions
    land_take = LandTake.of(transitions.areas_m2, settings.groups)
    (folder / CHANGE_QML).write_text(change_qml(transitions.changed_pairs()), encoding="utf-8")
    write_transitions_csv(folder / TRANSITIONS_CSV, transitions)
    write_land_take_csv(folder / LAND_TAKE_CSV, land_take, settings.groups)
    context = {
        "before": str(settings.before),
        "after": str(settings.after),
        "grid": settings.grid,
        "aligned_nearest": result.aligned,
        "grid_definition": result.grid.to_dict(),
        "pixel_area_m2": transitions.pixel_area_m2,
    }
    write_land_take_json(
        folder / LAND_TAKE_JSON, land_take_doc(land_take, settings.groups, context)
    )
    inputs = ReportInputs(Path(settings.before), Path(settings.after))
    write_report_html(folder / REPORT_HTML, inputs, result, land_take, settings.groups)
    return land_take


def _write_zones(
    folder: Path,
    zones: geopandas.GeoDataFrame,
    measured: ZoneTransitions,
    groups: Groups,
    reporter: Reporter,
) -> None:
    """zones.gpkg (the zones as given plus their figures in ha) and zones_transitions.csv."""
    import csv

    import pandas as pd

    from engine.figures.land_take import M2_PER_HA, LandTake
    from engine.figures.vectors import write_zones_with

    rows = []
    for areas in measured.areas_m2:
        figures = dict(LandTake.of(areas, groups).figures())
        rows.append({f"{k}_ha": figures[k] / M2_PER_HA for k in ZONE_FIGURES})
    added = pd.DataFrame({"zone": list(measured.zone)}).join(pd.DataFrame(rows))
    gpkg = folder / ZONES_GPKG
    write_zones_with(zones, added, gpkg, gpkg, reporter, ZONES_LAYER)
    with (folder / ZONES_CSV).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["zone", "before", "after", "area_m2"])
        for zone, areas in zip(measured.zone, measured.areas_m2, strict=True):
            for b, a in zip(*areas.nonzero(), strict=True):
                w.writerow([zone, int(b), int(a), f"{areas[b, a]:.4f}"])
