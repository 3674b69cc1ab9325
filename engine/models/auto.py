"""`--model auto`: the best registered model that a raster's bands can feed, said with why.

The rule, in one place (the plugin's "Automatic" sends `--model auto` and relies on it):

1. Which channels the raster offers: `--bands` when given, else the default band rule
   (band descriptions, colour interpretation, band order; engine.io.bands), plus E from
   `--elevation`. The reason names them in plain words ("the band numbers given", "the
   elevation raster"), never as options: the plugin's log shows it as it is.
2. Candidates: registry models whose channels are all offered, and which need no Sentinel-2
   series unless a source was given.
3. Rank: the card's published mIoU, highest first; models without a published figure rank below
   every model with one; ties (unknown figures included) go to the card's `preference`
   (lower first), then to the registry's order.

4. Weights: the best model whose weights are on this machine (the weights folder, the Hugging
   Face cache) wins, and a better one that would have to be downloaded is named with its
   figure, size and link; with none here, the best one is downloaded when allowed, else the run
   stops at once with what to download and where to put it.

Nothing is downloaded here; the choice is made before any model code (torch) is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput
from engine.io.bands import CHANNEL_ORDER, RasterBand, channel_bands_with_basis
from engine.models.card import ModelCard
from engine.models.registry import Registry, load_registry

AUTO_MODEL = "auto"
# the bases the reason names, in plain words: the plugin shows the line as it is, and its user
# gave band fields and an elevation raster, not command-line options
GIVEN_BANDS = "the band numbers given"
ELEVATION_RASTER = "the elevation raster"


@dataclass(frozen=True)
class AutoChoice:
    """The chosen model and the sentence that explains the choice."""

    card: ModelCard
    reason: str
    notes: tuple[str, ...] = ()  # lines said after the reason (a better model to fetch)
    missing: bool = False  # no feedable model's weights here, and none may be fetched


def offered_channels(
    band_count: int,
    colorinterp: tuple[Any, ...],
    descriptions: tuple[str | None, ...],
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
) -> tuple[dict[str, int], str]:
    """Channel -> band the raster offers, and on what basis (for the message). Band numbers
    given for some channels are kept and the others completed by the engine's one band rule
    (`engine.io.bands`), as the run will read them."""
    if numbers:
        given = {
            c: n
            for c, n in zip(CHANNEL_ORDER, numbers, strict=False)
            if n != 0 and 1 <= n <= band_count
        }
        completed, _ = channel_bands_with_basis(colorinterp, descriptions, given)
        basis = GIVEN_BANDS if len(completed) == len(given) else f"{GIVEN_BANDS} and the band rule"
        given = completed
    else:
        given, basis = channel_bands_with_basis(colorinterp, descriptions)
    if elevation is not None:
        given["E"] = elevation.band
        basis += f" and {ELEVATION_RASTER}"
    return given, basis


def rank_key(card: ModelCard, order: int) -> tuple[int, float, int, int]:
    """Sort key, smallest first: known mIoU before unknown, higher mIoU, preference, order."""
    known = card.published_miou is not None
    return (0 if known else 1, -(card.published_miou or 0.0), card.preference, order)


def feedable(
    offered: dict[str, int], sentinel2: bool = False, registry: Registry | None = None
) -> list[ModelCard]:
    """The registry models the `offered` channels can feed, best first (`rank_key`).

    A card with Sentinel-2 settings needs a series: it is a candidate only when one was given
    (read from the card, not from the architecture table, which imports torch)."""
    registry = registry or load_registry()
    ranked = sorted(
        (
            (rank_key(card, i), card)
            for i, card in enumerate(registry.cards)
            if set(card.channels) <= set(offered) and (sentinel2 or card.sentinel2 is None)
        ),
        key=lambda pair: pair[0],
    )
    return [card for _, card in ranked]


def _figure(card: ModelCard) -> str:
    if card.published_miou is None:
        return "published mIoU not known here"
    return f"published mIoU {card.published_miou:g} %"


def choose_model(
    offered: dict[str, int],
    basis: str,
    *,
    sentinel2: bool = False,
    registry: Registry | None = None,
    cached: Callable[[ModelCard], bool] | None = None,
    allow_download: bool = False,
) -> AutoChoice:
    """The best model the `offered` channels can feed; InvalidInput when none can.

    With `cached` (whether a card's weights are on this machine), the best model whose weights
    are here wins over a better one that would have to be fetched (that one is named in
    `notes`, with its figure, size and how to get it); with none here, the best one (fetched
    when `allow_download`, else `missing` is set for the caller to stop before any work)."""
    ranked = feedable(offered, sentinel2, registry)
    bands = ", ".join(f"{c}=band {b}" for c, b in offered.items()) or "none"
    if not ranked:
        raise InvalidInput(
            f"no registered model can be fed from these bands ({bands}, from {basis}): every "
            "model needs at least red, green and blue, or near infrared, red and green",
            channels=sorted(offered),
        )
    n = len(ranked)
    best = ranked[0]
    local = [c for c in ranked if cached(c)] if cached is not None else []
    card = local[0] if local else best
    notes: list[str] = []
    if card.published_miou is not None and card is best:
        why = f"best published mIoU {card.published_miou:g} among the {n} models they can feed"
    elif card is best:
        why = (
            f"none of the {n} models they can feed has a published mIoU: first by the "
            "registry's preference"
        )
    else:
        why = (
            f"the best of the {n} models they can feed whose weights are on this machine "
            f"({_figure(card)})"
        )
        notes.append(_better(best, card))
    state = ""
    if cached is not None:
        if local:
            state = "; weights on this machine"
        elif allow_download:
            state = f"; no model's weights on this machine: downloading it ({_size(card)})"
        else:
            state = "; weights not on this machine"
    unused = [f"{c} (band {b})" for c, b in offered.items() if c not in card.channels]
    leaves = f"; leaves {', '.join(unused)} unused" if unused else ""
    hint = ""
    if "NIR" not in offered and not basis.startswith(GIVEN_BANDS):
        hint = (
            "; an IRC orthophoto (NIR, R, G) is recognised only by its band descriptions "
            "(NIR, R, G) or when its bands are named"
        )
    reason = (
        f"model auto: {card.name} ({', '.join(card.channels)} available as {bands}, from "
        f"{basis}; {why}{state}{leaves}{hint})"
    )
    return AutoChoice(
        card=card,
        reason=reason,
        notes=tuple(notes),
        missing=cached is not None and not local and not allow_download,
    )


def _size(card: ModelCard) -> str:
    from engine.models.download import human_size

    return human_size(card.source.size_bytes if card.source else None)


def _better(best: ModelCard, chosen: ModelCard) -> str:
    """The line that names a better model than the one on this machine, and how to get it."""
    from engine.models.download import how_to_get

    return (
        f"a better model could be downloaded: {best.name} ({_figure(best)}, against "
        f"{_figure(chosen)} for {chosen.name}), {_size(best)}: choose it as the model, with "
        f"downloading allowed, to fetch it, or {how_to_get(best, plain=True)}"
    )


def resolve_auto_model(
    model: str,
    src: Any,
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
    sentinel2: bool,
    say: Callable[..., None],
    allow_download: bool = False,
) -> str:
    """`model` itself, or for `auto` the chosen registry name (said through `say`, with the
    better model that could be fetched); WeightsNotAvailable when no model's weights are here
    and none may be fetched, after the reason is said.

    `src` is the open raster (band count, colour interpretation, descriptions)."""
    if model != AUTO_MODEL:
        return model
    offered, basis = offered_channels(
        src.count, tuple(src.colorinterp), tuple(src.descriptions), numbers, elevation
    )
    return decide(offered, basis, sentinel2, allow_download, say)


def decide(
    offered: dict[str, int],
    basis: str,
    sentinel2: bool,
    allow_download: bool,
    say: Callable[..., None],
) -> str:
    """Choose among the models the `offered` channels feed, looking at the weights on this
    machine; say the reason and notes, and stop when nothing can be run.

    `say(message, level)`: the run's `Reporter.log`; the command-line detail of a note (the
    variable that sets the weights folder) goes to the DEBUG level, which the plugin's log
    shows only in its detail."""
    from engine.models.download import (
        WEIGHTS_DIR_ENV,
        hub_offline,
        local_weights,
        missing_weights,
    )

    choice = choose_model(
        offered,
        basis,
        sentinel2=sentinel2,
        cached=lambda c: c.source is not None and local_weights(c) is not None,
        allow_download=allow_download and not hub_offline(),
    )
    say(choice.reason)
    for note in choice.notes:
        say(note)
    if choice.notes and not os.environ.get(WEIGHTS_DIR_ENV):
        say(
            f"on the command line the weights folder is set by {WEIGHTS_DIR_ENV} (the Hugging "
            "Face cache is looked in too)",
            "DEBUG",
        )
    if choice.missing:
        why = " and the hub is off (offline mode)" if allow_download else ""
        raise missing_weights(choice.card, why)
    return choice.card.name


def prepare_model(
    model: str,
    raster: str,
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
    sentinel2: bool,
    allow_download: bool,
    say: Callable[..., None],
) -> str:
    """The run's model, settled before any model code loads (torch takes seconds to import):
    `auto` chosen from the raster's bands, and a registry model's missing weights reported at
    once. Returns the registry name (or `model` as given: a path, a name)."""
    from engine.models.download import check_weights
    from engine.models.registry import load_registry

    if model == AUTO_MODEL:
        from engine.io.tile_reader import open_raster

        with open_raster(raster) as src:
            model = resolve_auto_model(
                model, src, numbers, elevation, sentinel2, say, allow_download
            )
    registry = load_registry()
    if model in registry:
        from engine.io.bands import resolve_raster_bands
        from engine.io.tile_reader import open_raster

        card = registry.get(model)
        with open_raster(raster) as src:  # a band typo is said before the weights are
            resolve_raster_bands(src, card.channels, numbers, elevation, card.name)
        check_weights(card, allow_download)
    return model
