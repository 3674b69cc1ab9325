"""The model card assumed for a U-T&T checkpoint given by path without a card.

It describes the official FLAIR-2 baseline (shared/reference/UTT_FACTS.md): aerial R, G, B,
NIR, elevation divided by 255 (no mean/std), 13 logits for FLAIR codes 1 to 12 then "other"
(code 19 here). "Other" is inactive: its training weight was 0 (`criterion.0.weight` ends in
0), so it never wins. Sentinel-2 settings are FLAIR-2's defaults (`FLAIR2`).
A card JSON with the same content is in docs/utt-card.example.json.
"""

from __future__ import annotations

from engine.io.bands import CHANNEL_ORDER
from engine.models.card import ModelCard, Normalization
from engine.sentinel2.settings import FLAIR2

UTT_LOGIT_CODES = (*range(1, 13), 19)
UTT_INACTIVE_CODES = (19,)


def default_utt_card(name: str) -> ModelCard:
    """The FLAIR-2 U-T&T card for a checkpoint named `name` (usually the file's stem).

    Args:
        name: The model's name in logs and outputs.

    Returns:
        A card with architecture "utt", 5 channels on the /255 scale, codes 1..12 and 19
        ("other", inactive), 0.2 m, 512 px tiles and the default Sentinel-2 settings.
    """
    return ModelCard(
        name=name,
        architecture="utt",
        channels=CHANNEL_ORDER,
        normalization=Normalization(divisor=255.0),
        logit_codes=UTT_LOGIT_CODES,
        inactive_codes=UTT_INACTIVE_CODES,
        encoder="resnet34",
        res_m=0.2,
        tile_size_px=512,
        title=f"U-T&T (FLAIR-2) checkpoint {name}",
        description=(
            "FLAIR-2 U-T&T: aerial U-Net (R, G, B, NIR, elevation / 255) fused with a U-TAE "
            "over a year of Sentinel-2 super-patches; 12 classes plus 'other' (never predicted)"
        ),
        sentinel2=FLAIR2,
    )
