"""Stopping a run at any phase within two seconds of SIGINT or SIGTERM, leaving nothing behind.

Python runs signal handlers in the main thread, and only between bytecodes: a thread stuck in
one long GDAL or torch call (a 1280 px forward pass, overviews, a Sentinel-2 load) would hold a
handler back for many seconds. So the work runs in a worker thread and the main thread only
waits. The first signal asks the work to stop at its next check (`Reporter.cancel`); if it has
not stopped `GRACE_S` later, or on a second signal, every output in progress is removed
(`engine.io.destination.abort_all`) and the process ends at once with 130 (SIGINT) or 143
(SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from engine.io.destination import abort_all
from engine.progress import Reporter

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
GRACE_S = 0.25
POLL_S = 0.05

T = TypeVar("T")


def run_interruptible(
    work: Callable[[], T],
    reporter: Reporter,
    received: dict[int, int],
    on_hard_stop: Callable[[int], None],
) -> T:
    """Run `work` in a worker thread and return its result (or raise its exception here).

    `received` gets the exit code of the first signal. `on_hard_stop(code)` is called just
    before a hard exit (once the outputs are removed) to tell the user.
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc

    def hard_stop(code: int) -> None:
        if abort_all() or worker_done():  # the outputs were committed: let the run finish
            return
        on_hard_stop(code)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def worker_done() -> bool:
        return not worker.is_alive()

    def handler(signum: int, frame: object) -> None:
        code = EXIT_SIGNAL.get(signum, 1)
        if received:  # a second signal: do not wait for the work any longer
            hard_stop(next(iter(received.values())))
            return
        received[signum] = code
        reporter.cancel()

    previous = {sig: signal.signal(sig, handler) for sig in EXIT_SIGNAL}
    worker = threading.Thread(target=target, name="flair-run", daemon=True)
    try:
        worker.start()
        first_signal_at: float | None = None
        while worker.is_alive():
            worker.join(POLL_S)
            if received and first_signal_at is None:
                first_signal_at = time.monotonic()
            if first_signal_at is not None and time.monotonic() - first_signal_at > GRACE_S:
                hard_stop(next(iter(received.values())))
                worker.join()  # committed while we looked: it returns at once
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
