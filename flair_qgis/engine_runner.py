"""Running the engine as a subprocess and turning its JSON lines into QGIS feedback.

The engine prints one JSON object per line on stdout (`--progress json`): the events of
engine/protocol.py, which this module loads from the engine source the plugin ships and uses to
check every line. The first event is `hello` with the protocol version: an engine too old or
too new for this plugin (or one that stops before saying) is refused with the fix, the
"Install or repair the FLAIR engine" algorithm. Errors are said in the dialog's words from
their code and fields (`fields.error_words`), never by parsing the engine's prose.

A reader thread queues the lines so the loop here can poll `feedback.isCanceled()` between
them; cancel sends SIGTERM (the engine stops within 2 s and removes its temporaries), kills
after a grace period, and after a kill asks the engine (`cleanup`) to remove what the killed
run left beside the destinations: only the engine knows how its working files are named.

A cancel raises a plain QgsProcessingException: QGIS 3.22's dialog prints a clean message for
that class only, and a traceback for any subclass.
"""

from __future__ import annotations

import json
import math
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from .engine_locator import diagnose_failure, engine_environment, start_engine_process
from .engine_progress import (
    CREEP_S,
    LOADING_TEXT,
    PHASE_TEXTS,
    PHASE_TITLES,
    ProgressMapper,
    plural,
    remaining_text,
)
from .engine_shared import engine_module
from .fields import REPAIR, Words, error_words, log_words, option_words, words_of

# the engine stops within 2 s of SIGTERM (it runs its work in a worker thread)
TERMINATE_GRACE_S = 3.0
CANCELLED_MESSAGE = "FLAIR run cancelled; no output was left behind."
CLEANUP_TIMEOUT_S = 60.0
_EOF = object()


def protocol():
    """engine/protocol.py, as the plugin ships it: the events this plugin understands."""
    return engine_module("protocol")


def version_message(version: int | None) -> str:
    """What to tell the user when the engine speaks another protocol version (None: it said
    none, so it predates the versioned protocol)."""
    proto = protocol()
    if version is None or version < proto.OLDEST_READ:
        said = "an older protocol" if version is None else f"protocol {version}"
        return (
            f"The FLAIR engine is older than this plugin (it speaks {said}, the plugin "
            f"protocol {proto.VERSION}): {REPAIR} to update it."
        )
    return (
        f"The FLAIR engine is newer than this plugin (it speaks protocol {version}, the plugin "
        f"reads up to {proto.VERSION}): update the plugin, or {REPAIR} to install the engine "
        "that matches it."
    )


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
        words: Mapping[str, str] | None = None,
        engine: Sequence[str] | None = None,
        loading_text: str = LOADING_TEXT,
    ) -> None:
        self.loading_text = loading_text
        self.env = env if env is not None else engine_environment()
        self.command = [str(c) for c in command]
        # the engine's own command (`python -m engine`), to ask it to clean up after a kill
        self.engine = [str(c) for c in engine] if engine is not None else _engine_of(self.command)
        self.feedback = feedback
        self.cleanup_paths = [Path(p) for p in cleanup_paths if p]
        self._before = {p: _stamp(p) for p in self.cleanup_paths}
        self.mapper = mapper or ProgressMapper()
        self.words: Words = words_of(words) if words is not None else option_words
        self.protocol = protocol()
        self.version: int | None = None  # the engine's protocol, once its hello is read
        self.mismatch = ""  # why the engine was refused (its protocol version)
        self.killed = False
        self._left_by_kill: list[Path] = []
        self.process: subprocess.Popen | None = None
        self.done_event: dict[str, Any] | None = None
        self.error_event: dict[str, Any] | None = None
        self.stderr_tail: deque = deque(maxlen=40)
        self.messages: list[str] = []  # the engine's log lines, also kept in the done event
        self._shown = 0.0
        self._phase = ""
        self._fraction = 0.0
        self._unit = 1.0
        self._phase_t0 = self._event_t = time.monotonic()

    def run(self) -> dict[str, Any]:
        """Run the engine; return its done event or raise QgsProcessingException."""
        self.feedback.pushCommandInfo(format_command(self.command))
        self.feedback.setProgressText(self.loading_text)
        try:
            self.process = start_engine_process(self.command, self.env)
        except OSError as exc:
            raise QgsProcessingException(f"Cannot start the FLAIR engine: {exc}") from exc
        with self.process:  # closes both pipes, whatever happens (no ResourceWarning)
            return self._drive(self.process)

    def _drive(self, process: subprocess.Popen) -> dict[str, Any]:
        lines: queue.Queue = queue.Queue()
        threads = [
            threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True),
            threading.Thread(target=_collect, args=(process.stderr, self.stderr_tail), daemon=True),
        ]
        for t in threads:
            t.start()
        while True:
            if self.feedback.isCanceled():
                self._stop()
                raise QgsProcessingException(self._cancel_message())
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                self._creep()
                continue
            if line is _EOF:
                break
            self._handle_line(line)
            if self.mismatch:  # nothing it says can be read reliably: stop it, say why
                self._stop(quiet=True)
                raise QgsProcessingException(self.mismatch)
        code = process.wait()
        for t in threads:
            t.join(timeout=5)
        return self._result(code)

    # progress --------------------------------------------------------------------------------
    def _set_progress(self, percent: float) -> None:
        """The bar never moves back (a creeping estimate is overtaken by the next event)."""
        if percent >= self._shown:
            self._shown = percent
            self.feedback.setProgress(percent)

    def _creep(self) -> None:
        """Between events, move the bar towards the end of the unit in progress (or of model
        loading), never reaching it: a long single tile no longer sits on a busy indicator."""
        now = time.monotonic()
        if not self._phase:
            share = 1.0 - math.exp(-(now - self._phase_t0) / CREEP_S)
            self._set_progress(self.mapper.loading * share * 0.95)
            return
        done_units = self._fraction / self._unit if self._unit else 0.0
        per_unit = (self._event_t - self._phase_t0) / done_units if done_units >= 1 else CREEP_S
        share = 1.0 - math.exp(-(now - self._event_t) / max(per_unit, 0.5))
        fraction = min(self._fraction + self._unit * share * 0.95, 1.0)
        self._set_progress(self.mapper.percent(self._phase, fraction))

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
        if self.version is None:  # the handshake comes first, or the engine predates it
            self._handshake(event)
            return
        try:
            self.protocol.validate(event)
        except self.protocol.ProtocolError as exc:
            self.feedback.pushDebugInfo(f"FLAIR engine event not understood ({exc}): {text}")
            return
        kind = event.get("event")
        if kind == "start":
            self._on_start(event)
        elif kind == "progress":
            self._fraction = max(0.0, min(1.0, float(event.get("fraction", 0.0))))
            self._event_t = time.monotonic()
            self._set_progress(self.mapper.percent(str(event.get("phase", "")), self._fraction))
            self._show_remaining(event)
        elif kind == "log":
            self._on_log(event)
        elif kind == "done":
            self.done_event = {**event, "log": self.messages}
            self._set_progress(100.0)
        elif kind == "error":
            self.error_event = event
        else:
            self.feedback.pushDebugInfo(text)

    def _handshake(self, event: dict[str, Any]) -> None:
        version = event.get("protocol") if event.get("event") == "hello" else None
        if not isinstance(version, int) or not self.protocol.compatible(version):
            self.mismatch = version_message(version if isinstance(version, int) else None)
            return
        self.version = version
        self.feedback.pushDebugInfo(f"FLAIR engine {event.get('engine', '?')}, protocol {version}")

    def _on_start(self, event: dict[str, Any]) -> None:
        phase = str(event.get("phase", ""))
        total = event.get("total", "?")
        extras = {k: v for k, v in event.items() if k not in ("event", "phase", "total", "unit")}
        details = ", ".join(
            f"area {v} km\u00b2" if k == "area_km2" else f"{k}: {v}" for k, v in extras.items()
        )
        unit = str(event.get("unit", "items"))
        message = f"{PHASE_TITLES.get(phase, phase)}: {plural(total, unit)}"
        self.feedback.pushInfo(f"{message} ({details})" if details else message)
        self.feedback.setProgressText(PHASE_TEXTS.get(phase, phase))
        self._phase, self._fraction = phase, 0.0
        self._unit = 1.0 / total if isinstance(total, int) and total > 0 else 1.0
        self._phase_t0 = self._event_t = time.monotonic()
        self._set_progress(self.mapper.percent(phase, 0.0))

    def _show_remaining(self, event: dict[str, Any]) -> None:
        """The phase's text with the time left, for phases of more than one tile or block."""
        total, eta = event.get("total"), event.get("eta_s")
        if not isinstance(total, int) or total < 2 or not isinstance(eta, (int, float)):
            return
        if eta <= 0 or not event.get("done"):
            return
        phase = str(event.get("phase", ""))
        self.feedback.setProgressText(
            f"{PHASE_TEXTS.get(phase, phase)} {remaining_text(float(eta))}"
        )

    def _on_log(self, event: dict[str, Any]) -> None:
        level = str(event.get("level", "INFO")).upper()
        self.messages.append(str(event.get("message", "")))
        message = log_words(event, self.words)  # the field it is about, in the dialog's words
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
        tail = [ln for ln in self.stderr_tail if ln.strip()]
        failed = code != 0 or self.done_event is None
        unforeseen = self.error_event is None or self.error_event.get("code") == "internal_error"
        if failed and unforeseen and self.engine:
            # a broken installation shows only when its packages are imported: ask the engine's
            # full check (seconds), and say what to repair rather than the failure it caused
            problem = diagnose_failure(self.engine[0], self.env.get("PYTHONPATH", ""))
            if problem:
                raise QgsProcessingException(problem)
        if self.error_event is not None:
            event = self.error_event
            # the engine's own words and particulars, for the log's detail level
            self.feedback.pushDebugInfo(
                f"FLAIR engine error {event.get('code')}: {event.get('message')} "
                f"{json.dumps(event.get('fields') or {}, default=str)}"
            )
            raise QgsProcessingException(error_words(event, self.words))
        if code != 0 or self.done_event is None:
            reason = tail[-1] if tail else f"exit code {code}"
            for ln in tail[-15:]:
                self.feedback.pushConsoleInfo(ln)
            if self.version is None:  # it stopped before the handshake
                raise QgsProcessingException(
                    f"The FLAIR engine stopped before saying which protocol it speaks "
                    f"({reason}); it may be older than this plugin, or broken: {REPAIR}."
                )
            raise QgsProcessingException(f"The FLAIR engine failed: {reason}")
        return self.done_event

    def _stop(self, quiet: bool = False) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            if not quiet:
                self.feedback.pushInfo("Stopping the FLAIR engine...")
            proc.terminate()
            try:
                proc.wait(timeout=TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                self.feedback.pushWarning(
                    f"The FLAIR engine did not stop within {TERMINATE_GRACE_S:g} s: killed."
                )
                proc.kill()
                proc.wait(timeout=TERMINATE_GRACE_S)
                self.killed = True
        self._remove_outputs()

    def _ask_cleanup(self) -> list[Path]:
        """After a kill: the engine removes what the killed run left beside the destinations
        (`cleanup`, which names what is still there). Without an engine command (a stand-in
        in tests) or when it cannot answer, nothing is claimed removed: [] and a warning."""
        if not self.engine or not self.cleanup_paths:
            return []
        command = [*self.engine, "cleanup", *map(str, self.cleanup_paths), "--progress", "json"]
        self.feedback.pushCommandInfo(format_command(command))
        try:
            answer = subprocess.run(
                command,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=CLEANUP_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.feedback.pushWarning(f"The FLAIR engine could not clean up: {exc}")
            return []
        for line in answer.stdout.splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") == "done":
                remaining = (event.get("stats") or {}).get("remaining") or []
                return [Path(p) for p in remaining]
        self.feedback.pushWarning(
            "The FLAIR engine could not clean up after the stopped run: "
            + (answer.stderr.strip().splitlines() or [f"exit code {answer.returncode}"])[-1]
        )
        return []

    def _cancel_message(self) -> str:
        """The cancel message, after checking the destinations: what is still there is named."""
        left = [p for p in self.cleanup_paths if p.exists() and _stamp(p) != self._before.get(p)]
        left += self._left_by_kill
        if not left:
            return CANCELLED_MESSAGE
        return "FLAIR run cancelled, but these files could not be removed: " + ", ".join(
            str(p) for p in dict.fromkeys(left)
        )

    def _remove_outputs(self) -> None:
        """After a cancel: remove output files this run created or changed (never older
        ones), and ask the engine to remove the working files of a run that had to be killed."""
        deadline = time.monotonic() + 5.0
        self._left_by_kill = self._ask_cleanup() if self.killed else []
        for path in self.cleanup_paths:
            before = self._before.get(path)
            targets = [path] if before is None or _stamp(path) != before else []
            for target in targets:
                while target.exists():
                    try:
                        target.unlink()
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.1)


def _engine_of(command: list[str]) -> list[str]:
    """`python -m engine` of a command built by `engine_command`, else [] (a stand-in)."""
    return command[:3] if command[1:3] == ["-m", "engine"] else []


def run_engine(
    command: Sequence[str],
    feedback: QgsProcessingFeedback,
    cleanup_paths: Iterable[str | Path] = (),
    mapper: ProgressMapper | None = None,
    env: dict[str, str] | None = None,
    words: Mapping[str, str] | None = None,
    engine: Sequence[str] | None = None,
    loading_text: str = LOADING_TEXT,
) -> dict[str, Any]:
    """Run the engine command and return its done event (outputs, stats and the run record).

    `words`: the dialog's words for the engine's options (default: `flair:landcover`'s fields);
    `engine`: the engine's own command, to ask it to clean up after a kill (default: the
    `python -m engine` that starts `command`); `loading_text`: what the progress says until the
    engine's first phase starts."""
    return EngineRun(
        command, feedback, cleanup_paths, mapper, env, words, engine, loading_text
    ).run()
