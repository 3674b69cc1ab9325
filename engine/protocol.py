"""The JSON-lines protocol between the engine and the QGIS plugin, described once.

`--progress json` makes the engine print one JSON object per line on stdout. This module builds
every event the engine prints and checks every event the plugin reads, so the two sides cannot
drift apart. It imports nothing but the standard library: the plugin loads it by file path from
the engine source it ships (`flair_qgis.engine_shared.engine_module("protocol")`), without
importing the engine package (whose other modules need torch).

Events, in order:

    {"event": "hello", "protocol": 1, "engine": "0.9.0"}             always the first line
    {"event": "start", "phase": "inference", "total": 120, "unit": "tiles", ...extra}
    {"event": "progress", "phase": "inference", "done": 10, "total": 120, "fraction": 0.083,
     "eta_s": 51.2, ...extra}
    {"event": "log", "level": "INFO", "message": "...", "fields": {...}}
    {"event": "done", "outputs": {...}, "stats": {...}, "run": {...}}       the run record
    {"event": "error", "code": "missing_channels", "type": "MissingChannels",
     "message": "...", "fields": {"channels": ["NIR"], "model": "..."}}

`code` and `fields` are the program-facing part of an error (engine/errors.py): a reader maps
them to its own words and never parses `message`, which is written for the command line.

Versioning: `VERSION` grows when an event changes in a way an older reader would misread (a
field renamed or removed, a meaning changed); adding an event or an optional field does not
change it. A reader accepts engines whose `hello` says `OLDEST_READ <= protocol <= VERSION`.
An engine that prints no `hello` predates the protocol (version 0).
"""

from __future__ import annotations

from typing import Any

VERSION = 1
OLDEST_READ = 1

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# event -> (required keys with their JSON types, optional keys with theirs); start and
# progress events may carry more figures (device, area_km2, ...), which readers show as given
_NUMBER = (int, float)
SCHEMA: dict[str, tuple[dict[str, tuple[type, ...]], dict[str, tuple[type, ...]]]] = {
    "hello": ({"protocol": (int,), "engine": (str,)}, {}),
    "start": ({"phase": (str,), "total": (int,), "unit": (str,)}, {}),
    "progress": (
        {"phase": (str,), "done": (int,), "total": (int,), "fraction": _NUMBER},
        {"eta_s": _NUMBER},
    ),
    "log": ({"level": (str,), "message": (str,)}, {"fields": (dict,)}),
    "done": ({"outputs": (dict,), "stats": (dict,)}, {"run": (dict,)}),
    "error": (
        {"code": (str,), "type": (str,), "message": (str,), "fields": (dict,)},
        {},
    ),
}
OPEN_EVENTS = ("start", "progress")  # events that may carry extra keys

# The run record of a `done` event: what actually ran. Every key is present; a value the run
# did not have (no tiling for `models download`) is None.
RUN_KEYS = ("model", "channels", "runtime", "tiling")
MODEL_KEYS = ("name", "architecture", "title", "uses_sentinel2")
CHANNEL_KEYS = ("channel", "path", "band")
# asked: the --backend given (auto, torch, openvino); check: a converted network's check
# against torch (engine.runtime: max_abs_diff, logit_scale, same_class_pct, passed), else None
RUNTIME_KEYS = ("name", "device", "precision", "why", "asked", "check")
TILING_KEYS = ("tile_size_px", "margin_px", "batch")


class ProtocolError(ValueError):
    """A line that is not an event of this protocol version."""


def hello(engine_version: str) -> dict[str, Any]:
    """The first line of every `--progress json` run: which protocol the engine speaks."""
    return {"event": "hello", "protocol": VERSION, "engine": engine_version}


def start(phase: str, total: int, unit: str, **extra: Any) -> dict[str, Any]:
    """A phase of `total` units of work begins."""
    return {"event": "start", "phase": phase, "total": int(total), "unit": unit, **extra}


def progress(
    phase: str, done: int, total: int, fraction: float, eta_s: float, **extra: Any
) -> dict[str, Any]:
    """`done` of `total` units of the phase are finished; `eta_s` estimates the rest."""
    return {
        "event": "progress",
        "phase": phase,
        "done": int(done),
        "total": int(total),
        "fraction": round(float(fraction), 5),
        "eta_s": round(float(eta_s), 1),
        **extra,
    }


def log(message: str, level: str = "INFO", **fields: Any) -> dict[str, Any]:
    """A line for the user. `fields` carry its particulars for programs, as for errors."""
    level = level.upper()
    event: dict[str, Any] = {
        "event": "log",
        "level": level if level in LEVELS else "INFO",
        "message": message,
    }
    if fields:
        event["fields"] = fields
    return event


def done(
    outputs: dict[str, Any], stats: dict[str, Any] | None = None, run: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run succeeded: the files it wrote, what it measured and, when it ran a model, the
    run record (`run_record`)."""
    event: dict[str, Any] = {"event": "done", "outputs": outputs, "stats": stats or {}}
    if run is not None:
        event["run"] = run
    return event


def error(code: str, kind: str, message: str, fields: dict[str, Any] | None = None) -> dict:
    """The run failed: a stable `code`, the exception class `kind`, the one-line message and
    the particulars (`EngineError.fields`)."""
    return {
        "event": "error",
        "code": code,
        "type": kind,
        "message": message,
        "fields": dict(fields or {}),
    }


def run_record(
    model: dict[str, Any],
    channels: list[dict[str, Any]],
    runtime: dict[str, Any] | None = None,
    tiling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ran, for the `done` event.

    Args:
        model: name (registry name or checkpoint), architecture (table key), title ("a
            U-Net"), uses_sentinel2 (whether the series was read).
        channels: one entry per model channel, in the model's order: channel ("NIR"), path
            (the raster it was read from), band (1-based).
        runtime: name ("torch", "openvino"), device ("cpu", "cuda:0"), precision ("fp32",
            "bf16", "fp16"), why (the reason for the device, precision and runtime), asked
            (the --backend given) and check (a converted network's check against torch).
        tiling: tile_size_px, margin_px, batch.
    """
    return {
        "model": {k: model.get(k) for k in MODEL_KEYS},
        "channels": [{k: c.get(k) for k in CHANNEL_KEYS} for c in channels],
        "runtime": {k: runtime.get(k) for k in RUNTIME_KEYS} if runtime else None,
        "tiling": {k: tiling.get(k) for k in TILING_KEYS} if tiling else None,
    }


def validate(event: object) -> dict[str, Any]:
    """`event` if it is an event of this protocol version, else ProtocolError saying why."""
    if not isinstance(event, dict):
        raise ProtocolError(f"an event is a JSON object, not {type(event).__name__}")
    kind = event.get("event")
    if kind not in SCHEMA:
        raise ProtocolError(f"unknown event {kind!r}")
    required, optional = SCHEMA[kind]
    for key, types in required.items():
        if key not in event:
            raise ProtocolError(f"{kind} event without {key!r}")
        if not _is(event[key], types):
            raise ProtocolError(f"{kind} event: {key!r} is {type(event[key]).__name__}")
    for key, types in optional.items():
        if key in event and event[key] is not None and not _is(event[key], types):
            raise ProtocolError(f"{kind} event: {key!r} is {type(event[key]).__name__}")
    extra = set(event) - {"event", *required, *optional}
    if extra and kind not in OPEN_EVENTS:
        raise ProtocolError(f"{kind} event with unknown keys {sorted(extra)}")
    if kind == "log" and event["level"] not in LEVELS:
        raise ProtocolError(f"log level {event['level']!r} is not one of {LEVELS}")
    if kind == "done" and event.get("run") is not None:
        _check_run(event["run"])
    return event


def _is(value: object, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _check_run(run: dict[str, Any]) -> None:
    if set(run) != set(RUN_KEYS):
        raise ProtocolError(f"run record keys {sorted(run)}, expected {sorted(RUN_KEYS)}")
    parts = {"model": MODEL_KEYS, "runtime": RUNTIME_KEYS, "tiling": TILING_KEYS}
    for part, keys in parts.items():
        value = run[part]
        if value is not None and (not isinstance(value, dict) or set(value) != set(keys)):
            raise ProtocolError(f"run record {part!r} must have keys {list(keys)}")
    if not isinstance(run["channels"], list) or any(
        not isinstance(c, dict) or set(c) != set(CHANNEL_KEYS) for c in run["channels"]
    ):
        raise ProtocolError(f"run record channels must be objects with keys {CHANNEL_KEYS}")


def compatible(version: int | None) -> bool:
    """Whether a reader of this module understands an engine speaking `version` (None: the
    engine said no hello, so it predates the protocol)."""
    return version is not None and OLDEST_READ <= version <= VERSION
