"""The `evaluate` subcommand.

    evaluate --prediction MAP.tif --reference LABELS.tif [--mask AREA.gpkg] --report OUT_DIR
    evaluate --data FLAIR_FOLDER --model NAME_OR_PATH [--sentinel2 flair:PATH]
             [--domains D022,D026] [--limit N] --report OUT_DIR

`add_parser` registers it on the engine CLI's subparsers; the registered `func(args, reporter)`
returns `{"outputs": {...}, "stats": {...}}`, which the engine CLI emits as its `done` event.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli_values import add_backend_option, add_common_options
from engine.evaluation.compare_rasters import DEFAULT_BLOCK_PX, compare_rasters
from engine.evaluation.metrics import Metrics, compute_metrics
from engine.evaluation.nomenclature import NOMENCLATURE_NAMES, Nomenclature, nomenclatures_for
from engine.evaluation.report import headline, summary_stats, write_report
from engine.evaluation.settings import RasterEvaluation, evaluation_from_args
from engine.progress import Reporter

DEFAULT_WORST = 20


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `evaluate` on `subparsers` (from `ArgumentParser.add_subparsers`)."""
    p = subparsers.add_parser(
        "evaluate",
        help="score a land-cover map or a model against reference labels",
        description="Compare a prediction raster with a reference raster, or run a model over a "
        "FLAIR-format dataset folder, and write a report folder (metrics.json, per_class.csv, "
        "confusion_matrix.csv, PNG plots).",
    )
    rasters = p.add_argument_group("prediction against reference")
    rasters.add_argument("--prediction", type=Path, help="map of FLAIR codes 1..19 (0 = no data)")
    rasters.add_argument(
        "--reference",
        type=Path,
        help="reference labels in FLAIR codes; any grid (nearest resampling)",
    )
    rasters.add_argument("--mask", type=Path, help="polygon layer limiting the evaluated area")
    rasters.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK_PX,
        help=f"block side in pixels (default {DEFAULT_BLOCK_PX})",
    )
    data = p.add_argument_group("model on a FLAIR dataset")
    data.add_argument("--data", type=Path, help="FLAIR #1/#2 or FLAIR-HUB dataset folder")
    data.add_argument("--model", help="registry model name or checkpoint path")
    data.add_argument("--card", type=Path, help="model card JSON for a checkpoint path")
    data.add_argument(
        "--download",
        "--allow-download",
        dest="allow_download",
        action="store_true",
        help="let a registry model's weights be downloaded if not cached",
    )
    data.add_argument(
        "--sentinel2", help="Sentinel-2 for U-T&T models: flair:PATH (FLAIR #2 sen folder)"
    )
    data.add_argument("--domains", help="comma-separated domains to keep, e.g. D022,D026")
    data.add_argument("--limit", type=int, help="evaluate only the first N patches")
    data.add_argument("--batch-size", type=int, default=4, help="patches per batch (default 4)")
    data.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    data.add_argument("--threads", type=int, help="CPU threads for torch")
    add_backend_option(data)
    data.add_argument(
        "--label-encoding",
        choices=("auto", "flair", "cosia"),
        default="auto",
        help="label values: FLAIR codes 1..19, or FLAIR-HUB's 0-based COSIA order "
        "(auto: COSIA for FLAIR-HUB label files)",
    )
    data.add_argument(
        "--worst",
        type=int,
        default=DEFAULT_WORST,
        help=f"list the N worst patches by mIoU (default {DEFAULT_WORST}; 0: none)",
    )
    p.add_argument("--report", type=Path, required=True, help="report folder (created)")
    p.add_argument(
        "--nomenclature",
        choices=("auto", *NOMENCLATURE_NAMES),
        default="auto",
        help="primary nomenclature: flair19 (19 codes), baseline13 (codes > 12 as "
        "'other', mIoU over 12), model (the model's active classes); auto: model with "
        "--data, flair19 otherwise. The others applicable are reported too.",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_common_options(p)
    p.set_defaults(func=run)
    return p


def _metrics(code_counts: Any, nomenclatures: list[Nomenclature]) -> list[Metrics]:
    return [compute_metrics(code_counts, n) for n in nomenclatures]


def run(args: argparse.Namespace, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run `evaluate` from parsed arguments; returns outputs and headline stats."""
    reporter = reporter or Reporter()
    settings = evaluation_from_args(args)
    if isinstance(settings, RasterEvaluation):
        return run_rasters(settings, reporter)
    from engine.evaluation.dataset_cli import run_dataset

    return run_dataset(settings, reporter)


def run_rasters(settings: RasterEvaluation, reporter: Reporter) -> dict[str, Any]:
    """The prediction-against-reference mode."""
    result = compare_rasters(
        settings.prediction, settings.reference, settings.mask, reporter, settings.block_px
    )
    report = settings.report
    nomenclatures = nomenclatures_for(report.nomenclature, None)
    all_metrics = _metrics(result.confusion.counts, nomenclatures)
    outputs = write_report(
        report.folder, all_metrics, result.confusion, result.context, plots=report.plots
    )
    outputs["report"] = str(report.folder)
    stats = summary_stats(all_metrics[0], result.confusion)
    reporter.log(headline(all_metrics[0]))
    return {"outputs": outputs, "stats": stats}
