"""U-T&T inputs for FLAIR #2 patches: Sentinel-2 super-patches and aerial metadata per batch.

The super-patches come from the engine's FLAIR folder source (`--sentinel2 flair:PATH`), are
filtered and averaged as FLAIR-2 did (`prepare_superpatch`, settings from the model card), and
are stacked into `[B, T, 10, S, S]` with all-zero frames as padding (`dates` 0 there) by
`engine.utt_inputs.stack_series`, as `predict` stacks them. A patch whose every date is
filtered out gets only padding, so the network runs its aerial branch alone for that patch, as
in `predict`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from engine.errors import InvalidInput
from engine.evaluation.dataset_run import ExtrasFn
from engine.evaluation.datasets import FlairPatch
from engine.models.architectures import ExtraInputs
from engine.models.card import ModelCard
from engine.sentinel2.settings import FLAIR2
from engine.utt_inputs import LOGGED_TILES, stack_series


def flair_sentinel2_extras(
    spec: str, card: ModelCard, uses_metadata: bool, say: Callable[..., None]
) -> ExtrasFn:
    """The per-batch extras function for `--sentinel2 flair:PATH`.

    Args:
        spec: the `--sentinel2` value; only `flair:PATH` serves FLAIR patches by name.
        card: the U-T&T model's card (its Sentinel-2 settings).
        uses_metadata: whether the network needs the aerial metadata vector.
        say: where patches without a usable date are said, `say(message, level)`
            (`Reporter.log`): the first `LOGGED_TILES` by name, as `predict` says its tiles.
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
    settings = card.sentinel2 or FLAIR2
    source = open_source(spec, superpatch_px=settings.superpatch_px)
    skipped = [0]

    def extras(patches: Sequence[FlairPatch]) -> ExtraInputs:
        series = []
        for patch in patches:
            prepared = prepare_superpatch(source.superpatch_for_patch(patch.image.name), settings)
            if prepared is None:
                skipped[0] += 1
                if skipped[0] <= LOGGED_TILES:
                    more = " (further patches not named)" if skipped[0] == LOGGED_TILES else ""
                    say(
                        f"patch {patch.patch_id}: no Sentinel-2 date passes the cloud/snow "
                        f"filter; aerial branch alone{more}",
                        "WARNING",
                    )
            series.append(prepared)
        s2, dates = stack_series(series, len(settings.bands), settings.superpatch_px)
        metadata = None
        if uses_metadata:
            metadata = np.stack(
                [
                    metadata_from_flair_entry(
                        source.patch_metadata(p.image.name), years=settings.metadata_years
                    )
                    for p in patches
                ]
            )
        return ExtraInputs(s2=s2, dates=dates, metadata=metadata)

    return extras
