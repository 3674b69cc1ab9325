"""The `evaluate --data FOLDER --model NAME` mode: model, patches, Sentinel-2, report."""

from __future__ import annotations

import argparse
from typing import Any

from engine.errors import InvalidInput
from engine.evaluation.dataset_run import evaluate_dataset
from engine.evaluation.datasets import discover_patches
from engine.evaluation.metrics import compute_metrics
from engine.evaluation.nomenclature import nomenclatures_for
from engine.evaluation.report import headline, summary_stats, write_report
from engine.progress import Reporter


def _int_or_error(value: int | None, name: str, minimum: int) -> None:
    if value is not None and value < minimum:
        raise InvalidInput(f"--{name} {value} must be {minimum} or more")


def run_dataset(args: argparse.Namespace, reporter: Reporter) -> dict[str, Any]:
    """Load the model, find the patches, predict them all, write the report."""
    if args.data is None or args.model is None:
        raise InvalidInput("--data and --model go together; give both")
    _int_or_error(args.limit, "limit", 1)
    _int_or_error(args.batch_size, "batch-size", 1)
    domains = [d for d in (args.domains or "").split(",") if d.strip()] or None
    encoding = None if args.label_encoding == "auto" else args.label_encoding
    patches = discover_patches(args.data, domains, args.limit, encoding, say=reporter.log)
    reporter.log(f"{len(patches)} patches in {len({p.domain for p in patches})} domains")

    from engine.inference import Predictor
    from engine.models.loader import load_model

    loaded = load_model(
        args.model, card_path=args.card, allow_download=args.allow_download, say=reporter.log
    )
    card = loaded.card
    for patch in {p.channels: p for p in patches}.values():
        patch.band_indexes(card.channels)  # fails at once, naming the missing channels
    extras_fn = None
    if args.sentinel2:
        if not loaded.architecture.uses_sentinel2:
            raise InvalidInput(f"model {card.name} uses no Sentinel-2; drop --sentinel2")
        from engine.evaluation.sentinel2_extras import flair_sentinel2_extras

        extras_fn = flair_sentinel2_extras(args.sentinel2, card, loaded.uses_metadata, reporter.log)
    elif loaded.architecture.uses_sentinel2:
        raise InvalidInput(
            f"model {card.name} is {loaded.architecture.title} and needs "
            "Sentinel-2: add --sentinel2 flair:PATH"
        )
    predictor = Predictor(loaded, device=args.device, threads=args.threads)
    nomenclatures = nomenclatures_for(args.nomenclature, tuple(card.active_codes), card.name)
    result = evaluate_dataset(
        patches, predictor, card.channels, nomenclatures[0], args.batch_size, reporter, extras_fn
    )
    all_metrics = [compute_metrics(result.confusion.counts, n) for n in nomenclatures]
    context = {
        **result.context,
        "data": str(args.data),
        "model": card.name,
        "model_channels": list(card.channels),
        "active_codes": list(card.active_codes),
        "domains_filter": domains,
        "limit": args.limit,
        "sentinel2": args.sentinel2,
    }
    worst = result.worst(args.worst) if args.worst and args.worst > 0 else []
    outputs = write_report(
        args.report, all_metrics, result.confusion, context, worst, plots=not args.no_plots
    )
    outputs["report"] = str(args.report)
    stats = {**summary_stats(all_metrics[0], result.confusion), "patches": len(patches)}
    reporter.log(headline(all_metrics[0]))
    return {"outputs": outputs, "stats": stats}
