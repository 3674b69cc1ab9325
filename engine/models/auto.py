"""`--model auto`: the best registered model that a raster's bands can feed, said with why.

The rule, in one place (the plugin's "Automatic" sends `--model auto` and relies on it):

1. Which channels the raster offers: `--bands` when given, else the default band rule
   (band descriptions, colour interpretation, band order; engine.io.bands), plus E from
   `--elevation`.
2. Candidates: registry models whose channels are all offered, and which need no Sentinel-2
   series unless a source was given.
3. Rank: the card's published mIoU, highest first; models without a published figure rank below
   every model with one; ties (unknown figures included) go to the card's `preference`
   (lower first), then to the registry's order.

Nothing is read or downloaded here: the weights are looked up only to say whether they are
already on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput
from engine.io.bands import CHANNEL_ORDER, RasterBand, channel_bands_with_basis
from engine.models.architectures import architecture_of
from engine.models.card import ModelCard
from engine.models.registry import Registry, load_registry

AUTO_MODEL = "auto"


@dataclass(frozen=True)
class AutoChoice:
    """The chosen model and the sentence that explains the choice."""

    card: ModelCard
    reason: str


def offered_channels(
    band_count: int,
    colorinterp: tuple[Any, ...],
    descriptions: tuple[str | None, ...],
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
) -> tuple[dict[str, int], str]:
    """Channel -> band the raster offers, and on what basis (for the message)."""
    if numbers:
        given = {
            c: n
            for c, n in zip(CHANNEL_ORDER, numbers, strict=False)
            if n != 0 and 1 <= n <= band_count
        }
        basis = "--bands"
    else:
        given, basis = channel_bands_with_basis(colorinterp, descriptions)
    if elevation is not None:
        given["E"] = elevation.band
        basis += " and --elevation"
    return given, basis


def rank_key(card: ModelCard, order: int) -> tuple[int, float, int, int]:
    """Sort key, smallest first: known mIoU before unknown, higher mIoU, preference, order."""
    known = card.published_miou is not None
    return (0 if known else 1, -(card.published_miou or 0.0), card.preference, order)


def choose_model(
    offered: dict[str, int],
    basis: str,
    *,
    sentinel2: bool = False,
    registry: Registry | None = None,
    cached: Callable[[ModelCard], bool] | None = None,
) -> AutoChoice:
    """The best registry model the `offered` channels can feed; InvalidInput when none can."""
    registry = registry or load_registry()
    candidates = [
        (rank_key(card, i), card)
        for i, card in enumerate(registry.cards)
        if set(card.channels) <= set(offered)
        and (sentinel2 or not architecture_of(card).uses_sentinel2)
    ]
    bands = ", ".join(f"{c}=band {b}" for c, b in offered.items()) or "none"
    if not candidates:
        raise InvalidInput(
            f"--model auto: no registered model can be fed from these bands ({bands}, from "
            f"{basis}); every model needs at least R, G, B or NIR, R, G: give them with --bands"
        )
    candidates.sort(key=lambda pair: pair[0])
    card = candidates[0][1]
    channels = ", ".join(card.channels)
    n = len(candidates)
    if card.published_miou is not None:
        why = f"best published mIoU {card.published_miou:g} among the {n} models they can feed"
    else:
        why = (
            f"none of the {n} models they can feed has a published mIoU: first by the "
            "registry's preference"
        )
    state = ""
    if cached is not None:
        state = "; weights on disk" if cached(card) else "; weights not downloaded yet"
    hint = ""
    if "NIR" not in offered and basis != "--bands":
        hint = (
            "; an IRC orthophoto (NIR, R, G) is recognised only by its band descriptions or "
            "--bands NIR=1,R=2,G=3"
        )
    reason = (
        f"model auto: {card.name} ({channels} available as {bands}, from {basis}; "
        f"{why}{state}{hint})"
    )
    return AutoChoice(card=card, reason=reason)


def resolve_auto_model(
    model: str,
    src: Any,
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
    sentinel2: bool,
    say: Callable[[str], None],
) -> str:
    """`model` itself, or for `auto` the chosen registry name (said through `say`).

    `src` is the open raster (band count, colour interpretation, descriptions)."""
    if model != AUTO_MODEL:
        return model
    from engine.models.download import local_weights

    offered, basis = offered_channels(
        src.count, tuple(src.colorinterp), tuple(src.descriptions), numbers, elevation
    )
    choice = choose_model(
        offered, basis, sentinel2=sentinel2, cached=lambda c: local_weights(c) is not None
    )
    say(choice.reason)
    return choice.card.name
