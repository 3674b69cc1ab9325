"""Which raster band feeds which model channel.

Accepts the loose forms of the command line (`--bands 1,2,3,4`, `--bands NIR=4`,
`--elevation DSM.tif:2`) once, completes the channels not given by the one band rule (band
descriptions, colour interpretation, then order: `channel_bands_with_basis`), and refuses a
mapping that lacks channels the model needs with a message that names them. The plugin sends
only the bands its user set and leaves the rest to this rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rasterio.enums import ColorInterp

from engine.errors import InvalidInput, MissingChannels
from engine.failures import file_name, is_gdal_path, user_path

# The model channels every FLAIR model draws from, in FLAIR's RGBIE order: the one home of this
# tuple (model cards, the U-T&T card, dataset patches and the default band rule use it).
CHANNEL_ORDER = ("R", "G", "B", "NIR", "E")
CHANNEL_LABELS = {"R": "red", "G": "green", "B": "blue", "NIR": "near infrared", "E": "elevation"}


class RasterBand(NamedTuple):
    """A band of a raster file (`--elevation DSM.tif:2`)."""

    path: Path | str  # a str for GDAL paths (/vsizip/..., URLs)
    band: int


def parse_bands(spec: str) -> tuple[int, ...]:
    """`--bands 1,2,3,4` -> (1, 2, 3, 4), band numbers in FLAIR's R, G, B, NIR, E order; or
    named, `NIR=1,R=2,G=3` (an IRC orthophoto) -> (2, 3, 0, 1), 0 for a channel not given.
    Syntax only: checked against the raster and the model later (`resolve_bands`)."""
    if "=" in spec:
        return _parse_named_bands(spec)
    try:
        numbers = tuple(int(b) for b in spec.split(",") if b.strip())
    except ValueError:
        raise InvalidInput(
            f"--bands {spec!r} must be band numbers like 1,2,3,4", option="--bands", value=spec
        ) from None
    if not numbers:
        raise InvalidInput(
            f"--bands {spec!r} must be band numbers like 1,2,3,4", option="--bands", value=spec
        )
    return numbers


def _parse_named_bands(spec: str) -> tuple[int, ...]:
    named: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        channel, _, band = part.partition("=")
        channel = channel.strip().upper()
        if channel not in CHANNEL_ORDER or not band.strip().isdigit() or channel in named:
            raise InvalidInput(
                f"--bands {spec!r}: give CHANNEL=BAND pairs with channels among "
                f"{','.join(CHANNEL_ORDER)}, each once, like NIR=1,R=2,G=3",
                option="--bands",
                value=spec,
            )
        named[channel] = int(band)
    if 0 in named.values():
        raise InvalidInput(
            f"--bands {spec!r}: band numbers start at 1", option="--bands", value=spec
        )
    last = max(CHANNEL_ORDER.index(c) for c in named)
    return tuple(named.get(c, 0) for c in CHANNEL_ORDER[: last + 1])


@dataclass(frozen=True)
class BandSource:
    """One model channel's origin: a band of the orthophoto or of the elevation raster."""

    channel: str
    band: int
    external: bool = False  # True: from the elevation raster


@dataclass(frozen=True)
class BandMapping:
    """The band of every model channel, in the model's channel order."""

    sources: tuple[BandSource, ...]
    elevation_path: Path | str | None = None  # a str for GDAL paths (/vsizip/..., URLs)

    @property
    def ortho_bands(self) -> tuple[int, ...]:
        return tuple(s.band for s in self.sources if not s.external)

    def describe(self) -> str:
        parts = []
        for s in self.sources:
            where = f"{file_name(self.elevation_path or '')} band" if s.external else "band"
            parts.append(f"{s.channel}={where} {s.band}")
        return ", ".join(parts)


def parse_elevation(spec: str) -> RasterBand:
    """`DSM.tif` or `DSM.tif:2` -> (path, band); GDAL paths (`/vsizip//x.zip/dsm.tif:2`,
    URLs) stay strings, local ones are `~`-expanded."""
    path, _, band = spec.rpartition(":")
    whole_exists = not is_gdal_path(spec) and Path(spec).expanduser().exists()
    if path and band.isdigit() and not whole_exists:
        return RasterBand(user_path(path), int(band))
    return RasterBand(user_path(spec), 1)


# Band descriptions that name a channel (GDAL band descriptions, lower case): IGN writes
# French names in some products ("PIR": proche infrarouge).
DESCRIPTION_NAMES = {
    "R": ("r", "red", "rouge"),
    "G": ("g", "green", "vert"),
    "B": ("b", "blue", "bleu"),
    "NIR": ("nir", "ir", "pir", "infrared", "near infrared", "near-infrared", "proche infrarouge"),
    "E": ("e", "elevation", "dsm", "dem", "mns", "height"),
}
_BY_INTERP = {
    ColorInterp.red: "R",
    ColorInterp.green: "G",
    ColorInterp.blue: "B",
    ColorInterp.nir: "NIR",
}


def default_channel_bands(
    colorinterp: tuple[ColorInterp, ...], descriptions: tuple[str | None, ...] = ()
) -> dict[str, int]:
    """Channel -> band number from band descriptions, then colour interpretation, then position.

    A description naming a channel wins (an IRC orthophoto whose bands say NIR, R, G is read as
    such even when they are also labelled red, green, blue for display); then the red, green,
    blue and NIR interpretations; R, G, B, NIR and E not named take the remaining non-alpha
    bands in that order (bands 1 to 5 in FLAIR's RGBIE order).
    """
    return channel_bands_with_basis(colorinterp, descriptions)[0]


def channel_bands_with_basis(
    colorinterp: tuple[ColorInterp, ...],
    descriptions: tuple[str | None, ...] = (),
    given: dict[str, int] | None = None,
) -> tuple[dict[str, int], str]:
    """`default_channel_bands` plus how it decided, for messages ("band descriptions", ...).

    `given`: channels the user mapped (a partial `--bands NIR=4`); they are kept, their bands
    are taken by no other channel, and the rule completes the rest."""
    usable = [i + 1 for i, ci in enumerate(colorinterp) if ci != ColorInterp.alpha]
    mapping: dict[str, int] = dict(given or {})
    bases: list[str] = ["your choice"] if mapping else []
    named = len(mapping)
    for i, text in enumerate(descriptions):
        channel = _channel_of_description(text)
        taken = i + 1 in mapping.values()
        if channel and channel not in mapping and i + 1 in usable and not taken:
            mapping[channel] = i + 1
    if len(mapping) > named:
        bases.append("band descriptions")
    named = len(mapping)
    for i, ci in enumerate(colorinterp):
        channel = _BY_INTERP.get(ci)
        if channel and channel not in mapping and i + 1 not in mapping.values():
            mapping[channel] = i + 1
    if len(mapping) > named:
        bases.append("colour interpretation")
    named = len(mapping)
    rest = [b for b in usable if b not in mapping.values()]
    for channel in CHANNEL_ORDER:
        if channel not in mapping and rest:
            mapping[channel] = rest.pop(0)
    if len(mapping) > named:
        bases.append("band order")
    return mapping, " and ".join(bases) or "no usable band"


def _channel_of_description(text: str | None) -> str | None:
    key = (text or "").strip().lower()
    for channel, names in DESCRIPTION_NAMES.items():
        if key in names:
            return channel
    return None


def resolve_raster_bands(
    src: Any,
    channels: tuple[str, ...],
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
    model_name: str,
) -> BandMapping:
    """`resolve_bands` for an open raster: its band count, colour interpretation and band
    descriptions (IGN's IRC files say NIR, R, G only there), read in one place."""
    return resolve_bands(
        channels,
        src.count,
        tuple(src.colorinterp),
        numbers,
        elevation,
        model_name,
        tuple(src.descriptions),
    )


def resolve_bands(
    channels: tuple[str, ...],
    band_count: int,
    colorinterp: tuple[ColorInterp, ...],
    numbers: tuple[int, ...] | None,
    elevation: RasterBand | None,
    model_name: str,
    descriptions: tuple[str | None, ...] = (),
) -> BandMapping:
    """Map each of the model's `channels` to a band, or say exactly which ones are missing.

    `numbers` are the user's `--bands`, in FLAIR's R, G, B, NIR, E order (0: not given); the
    channels they do not give are completed by the default rule (band descriptions, colour
    interpretation, then position), as when there are none."""
    if numbers:
        bands_option = ",".join(str(n) for n in numbers)
        external_e = elevation is not None and "E" in channels
        from_ortho = [c for c in channels if not (external_e and c == "E")]
        # positions up to the model's last channel in R, G, B, NIR, E order: an IR model
        # (NIR, R, G) reads 4 numbers, B's unused
        room = max((CHANNEL_ORDER.index(c) + 1 for c in from_ortho), default=0)
        if len(numbers) > room:
            names = ",".join(CHANNEL_ORDER[:room])
            also = " (E comes from --elevation)" if external_e else ""
            raise InvalidInput(
                f"--bands {bands_option!r} gives {len(numbers)} band numbers but model "
                f"{model_name} takes {room} from the orthophoto{also}: give {room}, "
                f"one for each of {names}",
                option="--bands",
                model=model_name,
                needs=list(channels),
            )
        given = {c: n for c, n in zip(CHANNEL_ORDER, numbers, strict=False) if n != 0}
        for channel, band in given.items():
            if not 1 <= band <= band_count:
                raise InvalidInput(
                    f"--bands: band {band} for {CHANNEL_LABELS[channel]} is out of range; "
                    f"the raster has {band_count} band(s)",
                    option="--bands",
                    channel=channel,
                    band=band,
                    band_count=band_count,
                    value=band,
                    expected=f"a band from 1 to {band_count}",
                )
        given = channel_bands_with_basis(colorinterp, descriptions, given)[0]
    else:
        given = default_channel_bands(colorinterp, descriptions)
    sources = []
    missing = []
    for channel in channels:
        if channel == "E" and elevation is not None:
            sources.append(BandSource("E", elevation[1], external=True))
        elif channel in given:
            sources.append(BandSource(channel, given[channel]))
        else:
            missing.append(channel)
    if missing:
        names = ", ".join(f"{c} ({CHANNEL_LABELS[c]})" for c in missing)
        has = ", ".join(f"{c}=band {b}" for c, b in given.items()) or "none"
        hint = "give them with --bands" + (" or --elevation DSM.tif" if "E" in missing else "")
        raise MissingChannels(
            f"model {model_name} needs channels {','.join(channels)}; the input lacks {names} "
            f"(usable bands: {has}); {hint}, or choose a model with fewer channels "
            "(flair-inc-rgb-15cl needs only R,G,B)",
            option="--bands",
            channels=missing,
            model=model_name,
            needs=list(channels),
            usable=dict(given),
        )
    return BandMapping(tuple(sources), elevation[0] if elevation else None)
