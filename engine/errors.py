"""One error hierarchy for the engine.

Every error the user can cause is an `EngineError`; subclasses also inherit the matching
built-in so callers that catch `FileNotFoundError` or `ValueError` still work. Messages say what
is wrong and how to fix it: the CLI prints them as one line, the QGIS plugin shows them as they are.
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose.

    `code` names the kind of failure for programs (the plugin reads it from the `error` event,
    never the message); `fields` carries its particulars as plain values (the missing channels,
    the option at fault, the file), given as keywords: `InvalidInput("...", option="--bands")`.
    """

    code = "engine_error"

    def __init__(self, *args: object, **fields: object) -> None:
        super().__init__(*args)
        self.fields: dict[str, object] = dict(fields)


class InputNotFound(EngineError, FileNotFoundError):
    """A file named by the user does not exist."""

    code = "input_not_found"


class InvalidInput(EngineError, ValueError):
    """An input exists but cannot be used as given (bands, CRS, area, values)."""

    code = "invalid_input"


class MissingChannels(InvalidInput):
    """The input has no band for some channels the model needs. Fields: `channels` (the
    missing ones, e.g. ["NIR", "E"]), `model`, `needs` (all the model's channels), `usable`
    (channel -> band found), `option` ("--bands")."""

    code = "missing_channels"


class ModelError(EngineError, ValueError):
    """A model name, card or checkpoint is unknown, inconsistent or unreadable."""

    code = "model_error"


class WeightsNotAvailable(ModelError):
    """A registry model's weights are not in the local cache and were not allowed to download."""

    code = "weights_missing"


class DownloadError(EngineError, OSError):
    """Fetching weights or data from a remote service failed."""

    code = "download_failed"


class OutputError(EngineError, OSError):
    """The output cannot be written where asked."""

    code = "output_failed"


class DeviceError(EngineError, RuntimeError):
    """The requested compute device is not available."""

    code = "device_unavailable"


class RegionError(EngineError, RuntimeError):
    """A region run could not finish: its cluster did not start, or some blocks failed (the
    others are mapped, and the same command retries them)."""

    code = "region_failed"


class Cancelled(EngineError):
    """The run was stopped by the user (signal or cancel callback); nothing was left behind."""

    code = "cancelled"


class RuntimeCheckFailed(ModelError):
    """A converted network disagreed with torch on the probe tile (`--backend openvino`)."""

    code = "runtime_check_failed"
