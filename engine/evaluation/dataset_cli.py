"""The `evaluate --data FOLDER --model NAME` mode: model, patches, Sentinel-2, report."""

from __future__ import annotations

from typing import Any

from engine.errors import InvalidInput
from engine.evaluation.dataset_run import evaluate_dataset
from engine.evaluation.datasets import discover_patches
from engine.evaluation.metrics import compute_metrics
from engine.evaluation.nomenclature import nomenclatures_for
from engine.evaluation.report import headline, summary_stats, write_report
from engine.evaluation.settings import DatasetEvaluation
from engine.progress import Reporter


def run_dataset(settings: DatasetEvaluation, reporter: Reporter) -> dict[str, Any]:
    """Load the model, find the patches, predict them all, write the report."""
    patches = discover_patches(
        settings.data,
        list(settings.domains) if settings.domains else None,
        settings.limit,
        settings.label_encoding,
        say=reporter.log,
    )
    reporter.log(f"{len(patches)} patches in {len({p.domain for p in patches})} domains")

    from engine.inference import Predictor
    from engine.models.loader import load_model

    loaded = load_model(
        settings.model,
        card_path=settings.card_path,
        allow_download=settings.allow_download,
        say=reporter.log,
    )
    card = loaded.card
    for patch in {p.channels: p for p in patches}.values():
        patch.band_indexes(card.channels)  # fails at once, naming the missing channels
    extras = None
    if settings.sentinel2:
        if not loaded.architecture.uses_sentinel2:
            raise InvalidInput(f"model {card.name} uses no Sentinel-2; drop --sentinel2")
        from engine.models.utt.flair_patches import flair_sentinel2_extras

        extras = flair_sentinel2_extras(
            settings.sentinel2, card, loaded.uses_metadata, reporter.log
        )
    elif loaded.architecture.uses_sentinel2:
        raise InvalidInput(
            f"model {card.name} is {loaded.architecture.title} and needs "
            "Sentinel-2: add --sentinel2 flair:PATH"
        )
    predictor = Predictor(
        loaded, settings.device, settings.threads, backend=settings.backend, reporter=reporter
    )
    report = settings.report
    nomenclatures = nomenclatures_for(report.nomenclature, tuple(card.active_codes), card.name)
    result = evaluate_dataset(
        patches, predictor, card.channels, nomenclatures[0], settings.batch_size, reporter, extras
    )
    sentinel2 = extras.summary() if extras is not None else {}
    all_metrics = [compute_metrics(result.confusion.counts, n) for n in nomenclatures]
    context = {
        **result.context,
        "data": str(settings.data),
        "model": card.name,
        "model_channels": list(card.channels),
        "active_codes": list(card.active_codes),
        "domains_filter": list(settings.domains) if settings.domains else None,
        "limit": settings.limit,
        "sentinel2": settings.sentinel2,
        **({"sentinel2_usage": sentinel2["sentinel2"]} if sentinel2 else {}),
    }
    worst = result.worst(settings.worst) if settings.worst else []
    outputs = write_report(
        report.folder, all_metrics, result.confusion, context, worst, plots=report.plots
    )
    outputs["report"] = str(report.folder)
    stats = {
        **summary_stats(all_metrics[0], result.confusion),
        "patches": len(patches),
        **sentinel2,
    }
    stats["runtime"] = [predictor.runtime_for(s).to_dict() for s in predictor.shapes]
    reporter.log(headline(all_metrics[0]))
    return {"outputs": outputs, "stats": stats}
