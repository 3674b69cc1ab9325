"""Cards of checkpoints given without one, and the user's card options applied to a card.

It sits below the architecture table and the family modules (`flairhub`, `utt`), which build
cards with it, and below the loader, which uses the table: every import between them goes one
way (these helpers lived in the loader, which made a loop: table -> flairhub -> loader -> table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ModelError
from engine.io.bands import CHANNEL_ORDER
from engine.models.card import ModelCard, Normalization
from engine.models.overrides import CardOverrides
from engine.models.registry import load_registry
from engine.models.smp_networks import smp_shape, unprefixed

if TYPE_CHECKING:
    import torch

FLAIR_INC_REFERENCE_CARD = "flair-inc-rgbie-15cl"  # its card holds FLAIR-INC's 5-band statistics
# a checkpoint without a card: its input count read as the first channels of FLAIR's RGBIE order
DEFAULT_CHANNELS = {n: CHANNEL_ORDER[:n] for n in (3, 4, 5)}
DEFAULT_CODES = {19: tuple(range(1, 20)), 13: (*range(1, 13), 19), 12: tuple(range(1, 13))}


def named_normalization(name: str, n_channels: int) -> Normalization:
    """`flair-inc`: mean/std on 0-255 values as the registry's cards state them; `unit`: /255."""
    if name == "unit":
        return Normalization(divisor=255.0)
    return load_registry().get(FLAIR_INC_REFERENCE_CARD).normalization.for_channels(n_channels)


def apply_overrides(card: ModelCard, overrides: CardOverrides) -> ModelCard:
    """The card with the fields given on the command line replaced."""
    changes: dict = {}
    if overrides.channels:
        changes["channels"] = overrides.channels
    if overrides.logit_codes:
        changes["logit_codes"] = overrides.logit_codes
    if overrides.inactive_codes is not None:
        changes["inactive_codes"] = overrides.inactive_codes
    if overrides.normalization:
        n = len(overrides.channels or card.channels)
        changes["normalization"] = named_normalization(overrides.normalization, n)
    return replace(card, **changes) if changes else card


def smp_card_from_tensors(
    path: Path, state: Mapping[str, torch.Tensor], overrides: CardOverrides, decoder: str
) -> ModelCard:
    """A FLAIR-INC smp network's card (U-Net, FPN, DeepLabV3) inferred from the tensors, the
    file type and the user's options."""
    in_channels, n_logits, encoder = smp_shape(unprefixed(state, decoder))
    channels = overrides.channels or DEFAULT_CHANNELS.get(in_channels)
    codes = overrides.logit_codes or DEFAULT_CODES.get(n_logits)
    if channels is None:
        raise _not_inferred(path, "channels", in_channels, "channels; say which with --channels")
    if codes is None:
        raise _not_inferred(
            path, "classes", n_logits, "logits; say their FLAIR codes with --classes"
        )
    norm_name = overrides.normalization or ("unit" if path.suffix == ".ckpt" else "flair-inc")
    return ModelCard(
        name=path.stem,
        architecture=decoder,
        channels=channels,
        normalization=named_normalization(norm_name, len(channels)),
        logit_codes=codes,
        inactive_codes=overrides.inactive_codes or (),
        encoder=encoder,
        title=f"checkpoint {path.name}",
    )


def _not_inferred(path: Path, unknown: str, count: int, rest: str) -> ModelError:
    """A checkpoint whose `unknown` (channels, classes) no default covers: the user says them,
    with the option `rest` names; `count` is how many the file holds."""
    verb = "takes" if unknown == "channels" else "has"
    return ModelError(
        f"{path} {verb} {count} {rest}",
        option="--card",
        file=str(path),
        unknown=unknown,
        count=count,
    )
