"""A region run's identity by content: what its manifest records of the model, the mask and
the inputs, so that a resume never mixes two models, two masks or two versions of a tile."""

from __future__ import annotations

import time
from pathlib import Path

from engine.digest import file_sha256
from engine.models.loader import LoadedModel, sidecar_card_path
from engine.models.registry import load_registry
from engine.progress import Reporter
from engine.region.inputs import RegionInputs
from engine.region.manifest import Manifest, mask_content
from engine.region.settings import RegionSettings


def open_manifest(
    settings: RegionSettings,
    out_dir: Path,
    inputs: RegionInputs,
    loaded: LoadedModel,
    reporter: Reporter,
) -> Manifest:
    """The folder's manifest for this run (nothing written yet), with the model and the mask
    recorded by content: weights, a card or a mask replaced between two runs are refused,
    never mixed."""
    model = settings.run.model
    registry_name = model if model in load_registry() else None
    card = None  # a registry model's card is the registry's
    if registry_name is None:
        card = settings.run.card_path or sidecar_card_path(loaded.weights_path)
    t0 = time.perf_counter()
    weights_sha256 = loaded.weights_sha256()  # hashed once per run
    card_sha256 = file_sha256(card) if card else None
    reporter.log(
        f"model weights {loaded.weights_path}: SHA-256 {weights_sha256[:16]}... "
        f"({time.perf_counter() - t0:.2f} s)"
    )
    key = settings.result_key(
        inputs.describe(),
        weights_sha256,
        card_sha256,
        registry_name,
        mask_content(settings.mask),
    )
    files = {
        "weights_sha256": str(loaded.weights_path),
        "card_sha256": str(card or ""),
        "mask": str(settings.mask or ""),
    }
    return Manifest.open(out_dir, key, settings.restart, files)
