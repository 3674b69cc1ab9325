"""One table: each dialog field of `flair:landcover`, its label, and the engine option it sets.

The command line is built from it (`PredictRequest.arguments` looks its options up here), and
the engine's errors are said in the dialog's words with it: the engine's `error` event carries a
code and fields (engine/protocol.py), and `error_words` looks them up here. A missing NIR band
becomes "Set Band for near infrared (BAND_NIR)", because the user of the dialog never typed
`--bands`. Nothing here parses the engine's prose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .engine_shared import engine_module


class Field(NamedTuple):
    """A parameter of the dialog: id (public API), label, and the engine option it gives."""

    name: str
    label: str
    option: str = ""
    unset: str = ""  # what the form adds to the label: what leaving the field empty does

    @property
    def form_label(self) -> str:
        """The label in the dialog, with what an empty or 0 value means ("automatic")."""
        return f"{self.label} ({self.unset})" if self.unset else self.label

    @property
    def shown(self) -> str:
        """How messages name it: the label the form shows, then the id scripts use."""
        return f"{self.label} ({self.name})"


FIELDS: tuple[Field, ...] = (
    Field("INPUT", "Orthophoto"),
    Field("BAND_RED", "Band for red", "--bands", "not set: automatic"),
    Field("BAND_GREEN", "Band for green", "--bands", "not set: automatic"),
    Field("BAND_BLUE", "Band for blue", "--bands", "not set: automatic"),
    Field("BAND_NIR", "Band for near infrared", "--bands", "not set: automatic"),
    Field(
        "BAND_ELEVATION", "Band for elevation (in the orthophoto)", "--bands", "not set: automatic"
    ),
    Field("ELEVATION", "Separate elevation raster", "--elevation"),
    Field("ELEVATION_BAND", "Band of the elevation raster", "--elevation", "not set: automatic"),
    Field("MODEL", "Model", "--model"),
    Field("MODEL_FILE", "Model checkpoint (overrides Model)", "--model"),
    Field("MODEL_CARD", "Model card (JSON)", "--card"),
    Field("EXTENT", "Extent", "--extent"),
    Field("MASK", "Mask polygons", "--mask"),
    Field("DEVICE", "Device", "--device"),
    Field("BACKEND", "Inference runtime", "--backend"),
    Field("TILE_SIZE", "Tile size (px)", "--tile-size", "0: automatic"),
    Field("MARGIN", "Margin (px)", "--margin", "not set: automatic"),
    Field("BATCH_SIZE", "Batch size", "--batch-size", "0: automatic"),
    Field("OUTPUT_RESOLUTION", "Output resolution", "--output-resolution"),
    Field("EXPORT_PIXEL_LIMIT", "Pixel limit for temporary exports"),
    Field("SENTINEL2_SOURCE", "Sentinel-2 source (U-T&T)", "--sentinel2"),
    Field("SENTINEL2_LOCATION", "Sentinel-2 location (URL or path)", "--sentinel2"),
    Field("YEAR", "Year of the Sentinel-2 series", "--year", "not set: automatic"),
    Field(
        "ACQUISITION_DATE", "Acquisition date of the orthophoto (YYYY-MM-DD)", "--acquisition-date"
    ),
    Field("STRICT_SENTINEL2", "Fail on tiles without a usable Sentinel-2 date", "--strict"),
)
# the outputs: the engine's output table's entries that have a dialog field, with its label
OUTPUT_FIELDS: tuple[Field, ...] = tuple(
    Field(o.field, o.label, o.option or "output")
    for o in engine_module("io.output_table").plugin_outputs()
)
FIELDS += OUTPUT_FIELDS
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
# the band field of each channel the engine names (R, G, B, NIR, E)
CHANNEL_FIELDS: dict[str, str] = {
    "R": "BAND_RED",
    "G": "BAND_GREEN",
    "B": "BAND_BLUE",
    "NIR": "BAND_NIR",
    "E": "BAND_ELEVATION",
}
WEIGHTS_FOLDER = "the weights folder of Processing > Options > Providers > FLAIR"
REPAIR = 'run the FLAIR provider\'s "Install or repair the FLAIR engine" algorithm'


def label(name: str) -> str:
    """The label of a parameter id."""
    return BY_NAME[name].label


def form_label(name: str) -> str:
    """The label the dialog shows for a parameter id."""
    return BY_NAME[name].form_label


def option(name: str) -> str:
    """The engine option a parameter id gives."""
    return BY_NAME[name].option


def option_words(flag: str, channels: Sequence[str] = ()) -> str:
    """The dialog's words for an engine option (`flair:landcover`'s fields); for `--bands`
    the band fields of `channels` when given. '' when the dialog has no such field."""
    if flag == "--bands":
        names = [CHANNEL_FIELDS[c] for c in channels if c in CHANNEL_FIELDS]
        names = names or list(CHANNEL_FIELDS.values())
        return " / ".join(BY_NAME[n].shown for n in names)
    if flag == "--elevation":
        return BY_NAME["ELEVATION"].shown
    if flag == "--model":
        return f"{BY_NAME['MODEL'].shown} or {BY_NAME['MODEL_FILE'].shown}"
    return " / ".join(f.shown for f in FIELDS if f.option == flag)


Words = Callable[[str], str]  # engine option -> the dialog's words for it ('' if none)


def words_of(table: Mapping[str, str] | None) -> Words:
    """A `Words` lookup: a dialog's own option table, or `flair:landcover`'s fields."""
    if table is None:
        return option_words
    return lambda flag: table.get(flag, "")


def _size(size_bytes: object) -> str:
    if not isinstance(size_bytes, int) or size_bytes <= 0:
        return ""
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


def _channel_list(channels: Sequence[str]) -> str:
    return ", ".join(f"{c} ({CHANNEL_LABELS.get(c, c)})" for c in channels)


CHANNEL_LABELS = {"R": "red", "G": "green", "B": "blue", "NIR": "near infrared", "E": "elevation"}


def _missing_channels(fields: dict[str, Any], message: str, words: Words) -> list[str]:
    missing = [str(c) for c in fields.get("channels") or ()]
    needs = ",".join(str(c) for c in fields.get("needs") or ())
    to_set = option_words("--bands", missing)
    if "E" in missing:
        to_set += f" or {BY_NAME['ELEVATION'].shown}"
    model = fields.get("model") or "the chosen model"
    first = f"Model {model} needs channels {needs}; " if needs else f"Model {model}: "
    return [
        f"{first}the input lacks {_channel_list(missing)}. Set {to_set}, or choose a model "
        "with fewer channels (flair-inc-rgb-15cl needs only R, G, B)."
    ]


def _weights(problem: str) -> Callable[[dict[str, Any], str, Words], list[str]]:
    """Weights not on this machine, or their download failed: the file, its size and where
    to put it, from the fields (`WeightsNotAvailable`: model, file, size_bytes, url,
    folders); the engine's message (with its command lines) goes to the log's details."""

    def render(fields: dict[str, Any], message: str, words: Words) -> list[str]:
        model = f"model {fields['model']}" if fields.get("model") else "the chosen model"
        file = str(fields.get("file") or "")
        size = _size(fields.get("size_bytes"))
        what = f"{file} ({size})" if file and size else file or "the weights file"
        folders = [str(f) for f in fields.get("folders") or ()]
        where = f"{WEIGHTS_FOLDER} ({folders[0]})" if folders else WEIGHTS_FOLDER
        lines = [
            f"The weights of {model} {problem}: {what}. Download it on a machine with Internet "
            f"access and pick it in {BY_NAME['MODEL_FILE'].shown}, or put it in {where}."
        ]
        if fields.get("url"):
            lines.append(f"Download address: {fields['url']}")
        return lines

    return render


def _model_file(fields: dict[str, Any], message: str, words: Words) -> list[str]:
    """A checkpoint the engine cannot take as it is: what it lacks, and the card that says it."""
    card = BY_NAME["MODEL_CARD"].shown
    name = Path(str(fields.get("file") or "")).name or "the checkpoint"
    unknown, count = fields.get("unknown"), fields.get("count")
    if unknown == "channels":
        takes = f" takes {count} bands but" if count else ""
        return [f"The checkpoint {name}{takes} does not say which bands it takes: set {card}."]
    if unknown == "classes":
        has = f" has {count} classes but" if count else ""
        return [f"The checkpoint {name}{has} does not say their FLAIR codes: set {card}."]
    if unknown == "encoder":
        return [f"The checkpoint {name} is not a network the engine knows by itself: set {card}."]
    mismatch = fields.get("mismatch")
    if mismatch in ("channels", "classes"):
        model = fields.get("model") or "the model"
        return [
            f"Model {model}: the checkpoint has {fields.get('checkpoint')} {mismatch} but its "
            f"card gives {fields.get('card')}: choose the card made for this checkpoint in {card}."
        ]
    return _with_option(fields, message, words)


def _protocol(fields: dict[str, Any], message: str, words: Words) -> list[str]:
    return [message]


def _with_option(fields: dict[str, Any], message: str, words: Words) -> list[str]:
    """Any other code: an error about one option is said with the dialog's field."""
    flag = str(fields.get("option") or "")
    shown = words(flag) if flag else ""
    if "channel" in fields and flag == "--bands":
        shown = option_words("--bands", [str(fields["channel"])])
    if shown and "expected" in fields:
        value = fields.get("value")
        given = f"{value} is not accepted" if value not in (None, "") else "not accepted"
        return [f"{shown}: {given}; give {fields['expected']}."]
    if shown and flag in message:  # the one option the fields name, in the dialog's words
        return [message.replace(flag, shown)]
    if shown:
        return [f"{shown}: {message}"]
    return [message]


# error code -> the lines the dialog shows (at most MAX_LINES); codes not here: _with_option
ERROR_WORDS: dict[str, Callable[[dict[str, Any], str, Words], list[str]]] = {
    "missing_channels": _missing_channels,
    "weights_missing": _weights("are not on this machine and could not be downloaded"),
    "download_failed": _weights("could not be downloaded"),
    "model_error": _model_file,
    "protocol": _protocol,
}
MAX_LINES = 3


def error_words(event: Mapping[str, Any], words: Words = option_words) -> str:
    """The dialog's message for an engine `error` event, from its code and fields (never from
    parsing its message): at most MAX_LINES lines, the first saying what is wrong and what
    to do."""
    code = str(event.get("code") or "")
    fields = event.get("fields") if isinstance(event.get("fields"), dict) else {}
    message = str(event.get("message") or "").strip() or "unknown engine error"
    render = ERROR_WORDS.get(code, _with_option)
    lines = [ln for ln in render(dict(fields), message, words) if not _command_line_words(ln)]
    if not lines:  # the engine's sentence is for the command line: the log's details have it
        flag = str(fields.get("option") or "")
        shown = words(flag) if flag else ""
        check = f" Check {shown}." if shown else ""
        lines = [
            f"The FLAIR engine cannot run with these settings ({code.replace('_', ' ')}).{check} "
            "Its own message is in the log's details."
        ]
    return "\n".join(lines[:MAX_LINES])


# what only the command line knows: its options and the variables it reads
_COMMAND_LINE = (" --", "FLAIR_WEIGHTS_DIR", "FLAIR_CACHE_DIR", "HF_HOME", "HF_HUB_")


def _command_line_words(line: str) -> bool:
    """Whether a line speaks of the command line (an option, an environment variable): the
    dialog never shows those words."""
    padded = f" {line}"
    return any(word in padded for word in _COMMAND_LINE)


def log_words(event: Mapping[str, Any], words: Words = option_words) -> str:
    """A `log` event's line for the dialog: the engine words it without options; the field the
    line is about, when it names one, is added in the dialog's words."""
    message = str(event.get("message") or "")
    fields = event.get("fields") if isinstance(event.get("fields"), dict) else {}
    flag = str(fields.get("option") or "")
    shown = words(flag) if flag else ""
    return f"{message} [{shown}]" if shown else message
