"""Running the engine as a subprocess and turning its JSON lines into QGIS feedback.

The engine prints one JSON object per line on stdout (`--progress json`): start, progress, log,
done and error events. A reader thread queues the lines so the loop here can poll
`feedback.isCanceled()` between them; cancel sends SIGTERM (the engine then removes partial
outputs), then kills after a grace period, and removes anything left at the output paths.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .engine_locator import engine_environment, neutral_cwd, subprocess_flags

# Share of the progress bar each engine phase fills; unknown phases use the whole bar.
PHASE_RANGES: dict[str, tuple[float, float]] = {
    "sentinel2": (0.0, 30.0),
    "inference": (30.0, 92.0),
    "overviews": (92.0, 96.0),
    "polygons": (96.0, 100.0),
}
# What the toolbox's progress text says during each phase; other phases show their name.
PHASE_TEXTS: dict[str, str] = {
    "sentinel2": "Loading Sentinel-2 time series\u2026",
    "inference": "Running the model on the tiles\u2026",
    "overviews": "Writing the land-cover map and its overviews\u2026",
    "polygons": "Building polygons\u2026",
}
TERMINATE_GRACE_S = 10.0
_EOF = object()


class EngineCancelled(QgsProcessingException):
    """The user cancelled the run; the engine was stopped and partial outputs removed."""


def _pump(stream: Any, sink: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        sink.put(line)
    sink.put(_EOF)


def _collect(stream: Any, tail: deque) -> None:
    for line in iter(stream.readline, ""):
        tail.append(line.rstrip())


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


class ProgressMapper:
    """Maps (phase, fraction) to a 0..100 bar; U-Net runs without Sentinel-2 use 0..95."""

    def __init__(self, ranges: dict[str, tuple[float, float]] | None = None) -> None:
        self.ranges = dict(PHASE_RANGES if ranges is None else ranges)
        self.seen_sentinel2 = False

    def percent(self, phase: str, fraction: float) -> float | None:
        if phase == "sentinel2":
            self.seen_sentinel2 = True
        if phase == "inference" and not self.seen_sentinel2 and phase in self.ranges:
            low, high = 0.0, self.ranges[phase][1]
        elif phase in self.ranges:
            low, high = self.ranges[phase]
        else:
            low, high = 0.0, 100.0
        return low + (high - low) * max(0.0, min(1.0, fraction))


def format_command(command: Sequence[str]) -> str:
    """The command line as a user could paste it into a shell."""
    return " ".join(f'"{a}"' if (" " in a or not a) else a for a in command)


class EngineRun:
    """One engine subprocess, driven to completion or cancellation."""

    def __init__(
        self,
        command: Sequence[str],
        feedback: QgsProcessingFeedback,
        cleanup_paths: Iterable[str | Path] = (),
        mapper: ProgressMapper | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env if env is not None else engine_environment()
        self.command = [str(c) for c in command]
        self.feedback = feedback
        self.cleanup_paths = [Path(p) for p in cleanup_paths if p]
        self._before = {p: _stamp(p) for p in self.cleanup_paths}
        self.mapper = mapper or ProgressMapper()
        self.process: subprocess.Popen | None = None
        self.done_event: dict[str, Any] | None = None
        self.error_event: dict[str, Any] | None = None
        self.stderr_tail: deque = deque(maxlen=40)

    def run(self) -> dict[str, Any]:
        """Run the engine; return its done event or raise QgsProcessingException."""
        self.feedback.pushCommandInfo(format_command(self.command))
        try:
            self.process = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                bufsize=1, env=self.env, cwd=neutral_cwd(), creationflags=subprocess_flags(),
            )
        except OSError as exc:
            raise QgsProcessingException(f"Cannot start the FLAIR engine: {exc}") from exc
        lines: queue.Queue = queue.Queue()
        threads = [
            threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True),
            threading.Thread(target=_collect, args=(self.process.stderr, self.stderr_tail),
                             daemon=True),
        ]
        for t in threads:
            t.start()
        while True:
            if self.feedback.isCanceled():
                self._stop()
                raise EngineCancelled("FLAIR run cancelled; no output was left behind.")
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is _EOF:
                break
            self._handle_line(line)
        code = self.process.wait()
        for t in threads:
            t.join(timeout=5)
        return self._result(code)

    # events ----------------------------------------------------------------------------------
    def _handle_line(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            self.feedback.pushConsoleInfo(text)
            return
        if not isinstance(event, dict):
            self.feedback.pushConsoleInfo(text)
            return
        kind = event.get("event")
        if kind == "start":
            self._on_start(event)
        elif kind == "progress":
            percent = self.mapper.percent(str(event.get("phase", "")),
                                          float(event.get("fraction", 0.0)))
            if percent is not None:
                self.feedback.setProgress(percent)
        elif kind == "log":
            self._on_log(event)
        elif kind == "done":
            self.done_event = event
            self.feedback.setProgress(100.0)
        elif kind == "error":
            self.error_event = event
        else:
            self.feedback.pushDebugInfo(text)

    def _on_start(self, event: dict[str, Any]) -> None:
        phase = event.get("phase", "")
        extras = {k: v for k, v in event.items()
                  if k not in ("event", "phase", "total", "unit")}
        details = ", ".join(f"{k}: {v}" for k, v in extras.items())
        message = f"{phase}: {event.get('total', '?')} {event.get('unit', 'items')}"
        self.feedback.pushInfo(f"{message} ({details})" if details else message)
        self.feedback.setProgressText(PHASE_TEXTS.get(str(phase), str(phase)))
        percent = self.mapper.percent(str(phase), 0.0)
        if percent is not None:
            self.feedback.setProgress(percent)

    def _on_log(self, event: dict[str, Any]) -> None:
        level = str(event.get("level", "INFO")).upper()
        message = str(event.get("message", ""))
        if level in ("WARNING", "WARN"):
            self.feedback.pushWarning(message)
        elif level in ("ERROR", "CRITICAL"):
            self.feedback.reportError(message, False)
        elif level == "DEBUG":
            self.feedback.pushDebugInfo(message)
        else:
            self.feedback.pushInfo(message)

    # endings ---------------------------------------------------------------------------------
    def _result(self, code: int) -> dict[str, Any]:
        if self.error_event is not None:
            message = str(self.error_event.get("message", "")).strip() or "unknown engine error"
            raise QgsProcessingException(message)
        if code != 0 or self.done_event is None:
            tail = [ln for ln in self.stderr_tail if ln.strip()]
            reason = tail[-1] if tail else f"exit code {code}"
            for ln in tail[-15:]:
                self.feedback.pushConsoleInfo(ln)
            raise QgsProcessingException(f"The FLAIR engine failed: {reason}")
        return self.done_event

    def _stop(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            self.feedback.pushInfo("Stopping the FLAIR engine...")
            proc.terminate()
            try:
                proc.wait(timeout=TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=TERMINATE_GRACE_S)
        self._remove_outputs()

    def _remove_outputs(self) -> None:
        """After a cancel: remove output files this run created or changed, never older ones."""
        deadline = time.monotonic() + 5.0
        for path in self.cleanup_paths:
            before = self._before.get(path)
            while path.exists() and (before is None or _stamp(path) != before):
                try:
                    path.unlink()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)


def run_engine(
    command: Sequence[str],
    feedback: QgsProcessingFeedback,
    cleanup_paths: Iterable[str | Path] = (),
    mapper: ProgressMapper | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the engine command and return its done event (outputs and stats)."""
    return EngineRun(command, feedback, cleanup_paths, mapper, env).run()
