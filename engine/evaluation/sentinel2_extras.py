"""U-T&T inputs for FLAIR #2 patches: Sentinel-2 super-patches and aerial metadata per batch.

The super-patches come from the engine's FLAIR folder source (`--sentinel2 flair:PATH`), are
filtered and averaged as FLAIR-2 did (`prepare_superpatch`, settings from the model card), and
are stacked into `[B, T, 10, S, S]` with all-zero frames as padding (`dates` 0 there) by
`engine.utt_inputs.stack_series`, as `predict` stacks them. A patch whose every date is
filtered out gets only padding, so the network runs its aerial branch alone for that patch, as
in `predict`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.evaluation.dataset_run import ExtrasFn
from engine.evaluation.datasets import FlairPatch
from engine.models.card import ModelCard, Sentinel2Settings
from engine.utt_inputs import stack_series

logger = logging.getLogger(__name__)


def flair_sentinel2_extras(spec: str, card: ModelCard, uses_metadata: bool) -> ExtrasFn:
    """The per-batch extras function for `--sentinel2 flair:PATH`.

    Args:
        spec: the `--sentinel2` value; only `flair:PATH` serves FLAIR patches by name.
        card: the U-T&T model's card (its Sentinel-2 settings).
        uses_metadata: whether the network needs the aerial metadata vector.
    """
    from engine.models.utt.metadata import metadata_from_flair_entry
    from engine.sentinel2.prepare import prepare_superpatch
    from engine.sentinel2.sources import open_source

    if not spec.lower().startswith("flair:"):
        raise InvalidInput(
            f"--sentinel2 {spec!r}: evaluating on FLAIR patches needs the dataset's own "
            "Sentinel-2 files; give flair:PATH (the folder with SEN2_sp_*_data.npy and "
            "flair-2_centroids_sp_to_patch.json)"
        )
    settings = card.sentinel2 or Sentinel2Settings()
    source = open_source(spec, superpatch_px=settings.superpatch_px)
    skipped = [0]

    def extras(patches: Sequence[FlairPatch]) -> dict[str, Any]:
        series = []
        for patch in patches:
            prepared = prepare_superpatch(source.superpatch_for_patch(patch.image.name), settings)
            if prepared is None:
                skipped[0] += 1
                logger.info(
                    "%s: no Sentinel-2 date passes the cloud/snow filter; aerial only",
                    patch.patch_id,
                )
            series.append(prepared)
        s2, dates = stack_series(series, len(settings.bands), settings.superpatch_px)
        out: dict[str, Any] = {"s2": s2, "dates": dates, "metadata": None}
        if uses_metadata:
            out["metadata"] = np.stack(
                [
                    metadata_from_flair_entry(
                        source.patch_metadata(p.image.name), years=settings.metadata_years
                    )
                    for p in patches
                ]
            )
        return out

    return extras
