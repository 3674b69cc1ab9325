"""Which raster band feeds which model channel.

Accepts the loose forms of the command line (`--bands 1,2,3,4`, `--elevation DSM.tif:2`) once,
fills defaults from band count and colour interpretation, and refuses a mapping that lacks
channels the model needs with a message that names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasterio.enums import ColorInterp

from engine.errors import InvalidInput
from engine.failures import file_name, is_gdal_path, user_path

# The model channels every FLAIR model draws from, in FLAIR's RGBIE order: the one home of this
# tuple (model cards, the U-T&T card, dataset patches and the default band rule use it).
CHANNEL_ORDER = ("R", "G", "B", "NIR", "E")
CHANNEL_LABELS = {"R": "red", "G": "green", "B": "blue", "NIR": "near infrared", "E": "elevation"}


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


def parse_elevation(spec: str | None) -> tuple[Path | str, int] | None:
    """`DSM.tif` or `DSM.tif:2` -> (path, band); GDAL paths (`/vsizip//x.zip/dsm.tif:2`,
    URLs) stay strings, local ones are `~`-expanded."""
    if not spec:
        return None
    path, _, band = spec.rpartition(":")
    whole_exists = not is_gdal_path(spec) and Path(spec).expanduser().exists()
    if path and band.isdigit() and not whole_exists:
        return user_path(path), int(band)
    return user_path(spec), 1


def default_channel_bands(colorinterp: tuple[ColorInterp, ...]) -> dict[str, int]:
    """Channel -> band number guessed from colour interpretation, then from position.

    R, G, B come from the red/green/blue interpretations when the file declares them, else
    bands 1, 2, 3; NIR and E are the next non-alpha bands (4 and 5 in FLAIR's RGBIE order).
    """
    usable = [i + 1 for i, ci in enumerate(colorinterp) if ci != ColorInterp.alpha]
    mapping: dict[str, int] = {}
    by_interp = {ColorInterp.red: "R", ColorInterp.green: "G", ColorInterp.blue: "B"}
    for i, ci in enumerate(colorinterp):
        if ci in by_interp and by_interp[ci] not in mapping:
            mapping[by_interp[ci]] = i + 1
    rest = [b for b in usable if b not in mapping.values()]
    for channel in CHANNEL_ORDER:
        if channel not in mapping and rest:
            mapping[channel] = rest.pop(0)
    return mapping


def resolve_bands(
    channels: tuple[str, ...],
    band_count: int,
    colorinterp: tuple[ColorInterp, ...],
    bands_option: str | None,
    elevation: tuple[Path | str, int] | None,
    model_name: str,
) -> BandMapping:
    """Map each of the model's `channels` to a band, or say exactly which ones are missing."""
    if bands_option:
        try:
            numbers = [int(b) for b in bands_option.split(",") if b.strip()]
        except ValueError:
            raise InvalidInput(
                f"--bands {bands_option!r} must be band numbers like 1,2,3,4"
            ) from None
        external_e = elevation is not None and "E" in channels
        room = len(channels) - (1 if external_e else 0)
        if len(numbers) > room:
            names = ",".join(c for c in channels if not (external_e and c == "E"))
            also = " (E comes from --elevation)" if external_e else ""
            raise InvalidInput(
                f"--bands {bands_option!r} gives {len(numbers)} band numbers but model "
                f"{model_name} takes {room} from the orthophoto{also}: give {room}, "
                f"one for each of {names}"
            )
        given = dict(zip(CHANNEL_ORDER, numbers, strict=False))
        for channel, band in given.items():
            if not 1 <= band <= band_count:
                raise InvalidInput(
                    f"--bands: band {band} for {CHANNEL_LABELS[channel]} is out of range; "
                    f"the raster has {band_count} band(s)"
                )
    else:
        given = default_channel_bands(colorinterp)
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
        raise InvalidInput(
            f"model {model_name} needs channels {','.join(channels)}; the input lacks {names} "
            f"(usable bands: {has}); {hint}, or choose a model with fewer channels "
            "(flair-inc-rgb-15cl needs only R,G,B)"
        )
    return BandMapping(tuple(sources), elevation[0] if elevation else None)
