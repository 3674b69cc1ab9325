"""A CPU run's torch work, in a child process: resolving a checkpoint's card, converting it.

A run that may use OpenVINO needs torch only the first time it meets a checkpoint: to resolve
the card (the tensors read, the network built to count its logits) and to convert the network
(the trace, the reference logits on the probe). Once imported, torch's libraries and allocator
keep 0.5 to 0.8 GB that no `del` gives back, and the compiled OpenVINO network and its
activations then sat beside them: the ConvNeXt-V2-B UPerNet peaked at 2.6 GB in its converting
run where its cached runs stay under 1.8 GB. Here that work runs in a child Python, so the run
itself never imports torch; the child ends, and its memory with it, before the run compiles.

The child is this Python, with this process's module path. The exchange is JSON lines: the
request on the child's stdin, which stays open (the child ends when it closes, so a run killed
outright takes its child with it); on the child's stdout what it says (`log`), its steps
(`advance`), then `result` or `error`. An `EngineError` raised there is raised here with its
class, message and fields. What the libraries print goes to the child's stderr, kept in a file
and quoted if the child fails.

`SEPARATE_PROCESS = False` runs the same work in this process; the tests that patch the
conversion's internals set it (a patch does not reach a child).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

import engine.errors
from engine.errors import EngineError
from engine.memory import release_large_buffers
from engine.models.card import ModelCard
from engine.models.overrides import CardOverrides
from engine.progress import Reporter

SEPARATE_PROCESS = True

# the probe, and torch's logits on it, pass through the entry's temporary folder (then removed)
REFERENCE_FILE = "reference.npy"
PROBE_FILE = "probe.npy"

# the child finds its modules where this process found them (a source tree, a venv, a path a
# launcher added), then runs `main`; engine.runtime, imported first, keeps telemetry off
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from engine.runtime.torch_child import main; sys.exit(main())"
)


def resolve_card(
    weights_path: Path, asked: ModelCard | None, overrides: CardOverrides, reporter: Reporter
) -> tuple[ModelCard, tuple[str, ...]]:
    """The card `weights_path` resolves to (as `engine.models.loader.load_resolved` gives
    it) and what the loader said on the way, said to `reporter` as it came."""
    request = {
        "job": "card",
        "weights_path": str(weights_path),
        "asked": asked.to_dict() if asked is not None else None,
        "overrides": asdict(overrides),
    }
    reply = _ask(request, reporter, f"reading {weights_path.name}")
    return ModelCard.from_dict(reply["card"]), tuple(reply["notes"])


def trace(
    card: ModelCard,
    weights_path: Path,
    probe: np.ndarray,
    folder: Path,
    small: bool,
    with_reference: bool,
    threads: int | None,
    reporter: Reporter,
) -> tuple[np.ndarray | None, float, bool]:
    """Build the network from its checkpoint, write its OpenVINO IR into `folder`
    (`engine.runtime.conversion.trace_network`); returns torch's logits on `probe` (if
    `with_reference`), the seconds the conversion took and whether it traced a smaller tile."""
    np.save(folder / PROBE_FILE, probe)
    request = {
        "job": "trace",
        "card": card.to_dict(),
        "weights_path": str(weights_path),
        "folder": str(folder),
        "small": small,
        "with_reference": with_reference,
        "threads": threads,
    }
    try:
        reply = _ask(request, reporter, f"converting {card.name}")
        reference = np.load(folder / REFERENCE_FILE) if with_reference else None
    finally:
        for name in (PROBE_FILE, REFERENCE_FILE):
            (folder / name).unlink(missing_ok=True)
    return reference, float(reply["seconds"]), bool(reply["traced_small"])


def _ask(request: dict[str, Any], reporter: Reporter, doing: str) -> dict[str, Any]:
    """Run `request` in a child (or here, without `SEPARATE_PROCESS`) and return its result."""
    if not SEPARATE_PROCESS:
        return _work(request, reporter)
    with tempfile.TemporaryFile("w+", prefix="flair-torch-child-") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(json.dumps(request) + "\n")
            child.stdin.flush()
            reply = _relay(child.stdout, reporter)
            returncode = child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if reply is None or "error" in reply:
            stderr.seek(0)
            _raise(reply, returncode, stderr.read(), doing)
        return reply["result"]


def _relay(lines: IO[str], reporter: Reporter) -> dict[str, Any] | None:
    """Pass the child's log lines and steps on to `reporter`; its last word (result or
    error), or None if it ended without one."""
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "log" in message:
            reporter.log(message["log"], message.get("level", "INFO"))
        elif "advance" in message:
            reporter.advance(int(message["advance"]))
        elif "result" in message or "error" in message:
            return message
    return None


def _raise(reply: dict[str, Any] | None, returncode: int, stderr: str, doing: str) -> None:
    """The child's error raised here: an `EngineError` as itself, anything else as a
    RuntimeError that quotes it (and the end of the child's stderr)."""
    if reply is not None:
        error = reply["error"]
        cls = getattr(engine.errors, error["class"], None)
        if isinstance(cls, type) and issubclass(cls, EngineError):
            raise cls(error["message"], **error["fields"])
        raise RuntimeError(
            f"{doing} failed: {error['class']}: {error['message']}\n{_last_lines(stderr)}"
        )
    if returncode < 0:
        how = f"was killed by {signal.Signals(-returncode).name}"
        if returncode == -signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"ended with exit status {returncode}"
    raise RuntimeError(
        f"{doing}: the child process {how} before it answered; it said:\n{_last_lines(stderr)}"
    )


def _last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


class _PipeReporter(Reporter):
    """The child's reporter: its log lines and steps as JSON lines to the parent."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__()
        self._out = out

    def send(self, **message: Any) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    def log(self, message: str, level: str = "INFO", **fields: Any) -> None:
        self.send(log=message, level=level)

    def advance(self, n: int = 1, **extra: Any) -> None:
        self.send(advance=n)


def _work(request: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    """Do one request (in the child, or here): the `result` it answers."""
    if request["job"] == "card":
        return _card(request, reporter)
    if request["job"] == "trace":
        return _trace(request, reporter)
    raise ValueError(f"unknown job {request['job']!r}")


def _card(request: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    from engine.models.loader import load_resolved

    asked = request["asked"]
    overrides = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in request["overrides"].items()
    }
    notes: list[str] = []

    def say(message: str) -> None:
        notes.append(message)
        reporter.log(message)

    loaded = load_resolved(
        ModelCard.from_dict(asked) if asked is not None else None,
        Path(request["weights_path"]),
        CardOverrides(**overrides),
        say,
    )
    return {"card": loaded.card.to_dict(), "notes": notes}


def _trace(request: dict[str, Any], reporter: Reporter) -> dict[str, Any]:
    import torch

    from engine.models.loader import LoadedModel, build_network
    from engine.runtime import conversion

    if request["threads"]:
        torch.set_num_threads(int(request["threads"]))
    loaded = LoadedModel(ModelCard.from_dict(request["card"]), None, Path(request["weights_path"]))
    network = build_network(loaded).eval().to(memory_format=torch.channels_last)
    folder = Path(request["folder"])

    def keep(reference: np.ndarray) -> None:
        np.save(folder / REFERENCE_FILE, reference)
        reporter.advance(1)

    seconds, traced_small = conversion.trace_network(
        network,
        loaded.architecture,
        np.load(folder / PROBE_FILE),
        folder,
        small=request["small"],
        keep_reference=keep if request["with_reference"] else None,
    )
    return {"seconds": seconds, "traced_small": traced_small}


def _end_with_parent(stdin: IO[str]) -> None:
    """End this child when its parent's end of stdin closes (the parent ended, even killed)."""

    def watch() -> None:
        stdin.read()
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    """The child: one request from stdin, its answer on the protocol's stdout."""
    release_large_buffers()  # as the CLI does; without it a Swin-B trace peaked at 4.8 GB, not 2.6
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # what libraries print goes to stderr
    request = json.loads(sys.stdin.readline())
    _end_with_parent(sys.stdin)
    reporter = _PipeReporter(protocol)
    try:
        reporter.send(result=_work(request, reporter))
    except EngineError as exc:
        reporter.send(
            error={"class": type(exc).__name__, "message": str(exc), "fields": exc.fields}
        )
    except Exception as exc:  # told to the parent, which raises it; the traceback to stderr
        import traceback

        traceback.print_exc()
        reporter.send(error={"class": type(exc).__name__, "message": str(exc), "fields": {}})
    return 0


if __name__ == "__main__":  # engine.runtime, imported first, keeps OpenVINO's telemetry off
    sys.exit(main())
