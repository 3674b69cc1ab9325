"""One error hierarchy for the engine.

Every error the user can cause is an `EngineError`; subclasses also inherit the matching
built-in so callers that catch `FileNotFoundError` or `ValueError` still work. Messages say what
is wrong and how to fix it: the CLI prints them as one line, the QGIS plugin shows them as they are.
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class InputNotFound(EngineError, FileNotFoundError):
    """A file named by the user does not exist."""


class InvalidInput(EngineError, ValueError):
    """An input exists but cannot be used as given (bands, CRS, area, values)."""


class ModelError(EngineError, ValueError):
    """A model name, card or checkpoint is unknown, inconsistent or unreadable."""


class WeightsNotAvailable(ModelError):
    """A registry model's weights are not in the local cache and were not allowed to download."""


class DownloadError(EngineError, OSError):
    """Fetching weights or data from a remote service failed."""


class OutputError(EngineError, OSError):
    """The output cannot be written where asked."""


class DeviceError(EngineError, RuntimeError):
    """The requested compute device is not available."""


class RegionError(EngineError, RuntimeError):
    """A region run could not finish: its cluster did not start, or some blocks failed (the
    others are mapped, and the same command retries them)."""


class Cancelled(EngineError):
    """The run was stopped by the user (signal or cancel callback); nothing was left behind."""
