"""Progress reporting and cancellation for long work.

Library code receives a `Reporter` and calls `start`, `advance`, `log` and `check_cancelled`;
it never prints. The CLI picks one implementation: a terminal bar, JSON lines for the QGIS
plugin (one object per line on stdout), or silence. The JSON events are the plugin's protocol,
described and built in `engine.protocol` (hello, start, progress, log, done, error).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any, TextIO

from engine import __version__, protocol
from engine.errors import Cancelled


class Reporter:
    """Silent reporter; base class of the others. Thread-safe for `advance` and `log`."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.phase = ""
        self.total = 0
        self.done = 0
        self._t0 = time.monotonic()

    # lifecycle -------------------------------------------------------------------------------
    def start(self, phase: str, total: int, unit: str = "items", **extra: Any) -> None:
        """Begin a phase of `total` units of work."""
        with self._lock:
            self.phase, self.total, self.done = phase, max(int(total), 0), 0
            self._t0 = time.monotonic()
        self._emit_start(phase, total, unit, extra)

    def advance(self, n: int = 1, **extra: Any) -> None:
        """Record `n` more units done in the current phase."""
        with self._lock:
            self.done += n
            done, total = self.done, self.total
            elapsed = time.monotonic() - self._t0
        fraction = done / total if total else 1.0
        eta = elapsed / fraction - elapsed if 0 < fraction < 1 else 0.0
        self._emit_progress(done, total, fraction, eta, extra)

    def log(self, message: str, level: str = "INFO", **fields: Any) -> None:
        """A line for the user (device chosen, tile count, warnings). `fields` carry its
        particulars for programs (the option it names, ...), as an error's do."""

    def finish(
        self,
        outputs: dict[str, Any],
        stats: dict[str, Any] | None = None,
        run: dict[str, Any] | None = None,
    ) -> None:
        """The run succeeded; `outputs` names the files written, `run` is the run record
        (`engine.protocol.run_record`: model, channels, runtime, tiling)."""

    def error(self, exc: BaseException) -> None:
        """The run failed with `exc` (already a one-line message)."""

    # cancellation ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the work to stop at its next check (signal handlers call this)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if a stop was asked for."""
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user; no output was left behind")

    # hooks for subclasses --------------------------------------------------------------------
    def _emit_start(self, phase: str, total: int, unit: str, extra: dict[str, Any]) -> None:
        pass

    def _emit_progress(
        self, done: int, total: int, fraction: float, eta_s: float, extra: dict[str, Any]
    ) -> None:
        pass


class JsonLinesReporter(Reporter):
    """One JSON object per line, the protocol the QGIS plugin reads (`engine.protocol`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream or sys.stdout
        self._write_lock = threading.Lock()

    def _write(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj, default=str)
        with self._write_lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def hello(self) -> None:
        """The handshake: the first line says which protocol version the engine speaks."""
        self._write(protocol.hello(__version__))

    def _emit_start(self, phase: str, total: int, unit: str, extra: dict[str, Any]) -> None:
        self._write(protocol.start(phase, total, unit, **extra))

    def _emit_progress(
        self, done: int, total: int, fraction: float, eta_s: float, extra: dict[str, Any]
    ) -> None:
        self._write(protocol.progress(self.phase, done, total, fraction, eta_s, **extra))

    def log(self, message: str, level: str = "INFO", **fields: Any) -> None:
        self._write(protocol.log(message, level, **fields))

    def finish(
        self,
        outputs: dict[str, Any],
        stats: dict[str, Any] | None = None,
        run: dict[str, Any] | None = None,
    ) -> None:
        self._write(protocol.done(outputs, stats, run))

    def error(self, exc: BaseException) -> None:
        self._write(error_event(exc))


def error_event(exc: BaseException) -> dict[str, Any]:
    """The `error` event of `exc`: an EngineError's code and fields, "internal_error" for a
    failure the engine did not foresee."""
    code = getattr(exc, "code", "internal_error")
    fields = getattr(exc, "fields", {})
    return protocol.error(str(code), type(exc).__name__, str(exc), fields)


class TerminalReporter(Reporter):
    """A one-line bar on stderr: phase, count, percentage, ETA and any extra figures."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream or sys.stderr
        self._last = 0.0
        self._unit = "items"

    def _emit_start(self, phase: str, total: int, unit: str, extra: dict[str, Any]) -> None:
        self._unit = unit
        self._stream.write(f"{phase}: {total} {unit}\n")

    def _emit_progress(
        self, done: int, total: int, fraction: float, eta_s: float, extra: dict[str, Any]
    ) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = int(width * fraction)
        figures = " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()
        )
        self._stream.write(
            f"\r{self.phase} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {self._unit}"
            f" {fraction:6.1%} ETA {eta_s:5.0f}s {figures}"
        )
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()

    def log(self, message: str, level: str = "INFO", **fields: Any) -> None:
        self._stream.write(f"{level.lower()}: {command_line_words(message, fields)}\n")
        self._stream.flush()

    def error(self, exc: BaseException) -> None:
        self._stream.write(f"error: {exc}\n")


class LoggingReporter(Reporter):
    """Forwards log lines to `logging` (for library use and tests)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        super().__init__()
        self._logger = logger or logging.getLogger("engine")

    def log(self, message: str, level: str = "INFO", **fields: Any) -> None:
        text = command_line_words(message, fields)
        self._logger.log(getattr(logging, level.upper(), logging.INFO), text)


def command_line_words(message: str, fields: dict[str, Any]) -> str:
    """A log line as a command-line user reads it: the option it names appended (the JSON
    event carries it as a field, so that the plugin can name its own field instead)."""
    option = fields.get("option")
    return f"{message} [{option}]" if option else message


def make_reporter(kind: str) -> Reporter:
    """The reporter for a `--progress` value: `bar`, `json` or `none`."""
    if kind == "json":  # its `hello` is said once the run's signal handlers are in place
        return JsonLinesReporter()
    if kind == "bar":
        return TerminalReporter()
    if kind == "none":
        return LoggingReporter()
    raise ValueError(f"unknown progress kind {kind!r}; use bar, json or none")
