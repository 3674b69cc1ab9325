"""U-T&T inputs for FLAIR #2 patches: Sentinel-2 super-patches and aerial metadata per batch.

The super-patches come from the engine's FLAIR folder source (`--sentinel2 flair:PATH`), are
filtered and averaged as FLAIR-2 did (`prepare_superpatch`, settings from the model card), and
are stacked into `[B, T, 10, S, S]` with all-zero frames as padding (`dates` 0 there) by
`stack_series`, as `predict` stacks them. A patch whose every date is filtered out gets only
padding, so the network runs its aerial branch alone for that patch, as in `predict`, and is
counted by the same `UsableDates` (the report's `sentinel2` figures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.errors import InvalidInput
from engine.models.card import ModelCard
from engine.models.extras import ExtraInputs
from engine.models.utt.inputs import UsableDates, stack_series
from engine.sentinel2.settings import FLAIR2, Sentinel2Settings


class FlairPatch(Protocol):
    """What these inputs read of a dataset patch (`engine.evaluation.datasets.FlairPatch`):
    evaluation sits above U-T&T's inputs and calls them."""

    @property
    def patch_id(self) -> str: ...

    @property
    def image(self) -> Path: ...


class FlairPatchInputs:
    """Per-batch U-T&T inputs for FLAIR patches: call with the batch, `summary` at the end."""

    def __init__(
        self,
        source: Any,
        settings: Sentinel2Settings,
        uses_metadata: bool,
        say: Callable[..., None],
    ) -> None:
        self.source = source
        self.settings = settings
        self.uses_metadata = uses_metadata
        self.usable = UsableDates("patch", say)

    def __call__(self, patches: Sequence[FlairPatch]) -> ExtraInputs:
        from engine.models.utt.metadata import metadata_from_flair_entry
        from engine.sentinel2.prepare import prepare_superpatch

        settings = self.settings
        series = [
            self.usable.record(
                prepare_superpatch(self.source.superpatch_for_patch(p.image.name), settings),
                f"patch {p.patch_id}",
            )
            for p in patches
        ]
        s2, dates = stack_series(series, len(settings.bands), settings.superpatch_px)
        metadata = None
        if self.uses_metadata:
            metadata = np.stack(
                [
                    metadata_from_flair_entry(
                        self.source.patch_metadata(p.image.name), years=settings.metadata_years
                    )
                    for p in patches
                ]
            )
        return ExtraInputs(s2=s2, dates=dates, metadata=metadata)

    def summary(self) -> dict[str, Any]:
        """The report's `sentinel2` figures: patches with and without a usable date."""
        return {"sentinel2": self.usable.summary()}


def flair_sentinel2_extras(
    spec: str, card: ModelCard, uses_metadata: bool, say: Callable[..., None]
) -> FlairPatchInputs:
    """The per-batch extras for `--sentinel2 flair:PATH`.

    Args:
        spec: the `--sentinel2` value; only `flair:PATH` serves FLAIR patches by name.
        card: the U-T&T model's card (its Sentinel-2 settings).
        uses_metadata: whether the network needs the aerial metadata vector.
        say: where patches without a usable date are said, `say(message, level)`
            (`Reporter.log`): the first few by name, as `predict` says its tiles.
    """
    from engine.sentinel2.sources import open_source

    if not spec.lower().startswith("flair:"):
        raise InvalidInput(
            f"--sentinel2 {spec!r}: evaluating on FLAIR patches needs the dataset's own "
            "Sentinel-2 files; give flair:PATH (the folder with SEN2_sp_*_data.npy and "
            "flair-2_centroids_sp_to_patch.json)"
        )
    settings = card.sentinel2 or FLAIR2
    source = open_source(spec, superpatch_px=settings.superpatch_px)
    return FlairPatchInputs(source, settings, uses_metadata, say)
