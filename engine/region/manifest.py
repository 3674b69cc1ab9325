"""The manifest of a region run: one record per block, in the output folder, always consistent.

It is rewritten after every block that ends (write to a temporary, rename: `engine.io
.destination`), so a crash of the client, of a worker or of the whole cluster leaves either the
previous manifest or the next one, never a torn file. A block counts as done on a later run only
when its record says so, every output it names still exists with the recorded SHA-256, and the
settings hash is the same; changed settings are refused unless the run restarts, naming each
change (an input file's size or time, the mask, `--tile-size 512 was 1024`). The model and the
mask are part of the settings by content (the SHA-256 of the weights, of the card file, of the
mask's files), so files replaced at the same path between two runs are refused too: a resume
never mixes two models or two areas in one map. Input tiles are recorded by size and time, and
by their SHA-256 taken once when the manifest is made: a tile whose time changed (copied again,
touched) but whose content is the same resumes; one whose content changed is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.classes import N_CODES  # a record's counts: pixels of each code 0..19
from engine.digest import file_sha256
from engine.errors import InvalidInput, OutputError
from engine.failures import is_gdal_path
from engine.grid import Window
from engine.io.destination import Destinations
from engine.region.settings_change import describe_change

MANIFEST_NAME = "manifest.json"
# the inputs' SHA-256, beside the mosaics: written when taken, not with every block's record
INPUT_SHA256_NAME = "inputs/sha256.json"
VERSION = 1
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
STATES = (DONE, FAILED, SKIPPED)
BLOCKS_DIR = "blocks"
SHAPEFILE_PARTS = (".shp", ".dbf", ".shx", ".prj")  # what a shapefile mask is recorded by


def mask_content(mask: Path | str | None) -> dict[str, Any] | None:
    """The mask as the manifest records it: the SHA-256 of its file (of a shapefile's .shp,
    .dbf, .shx and .prj; of every file in a folder such as a FileGDB), keyed by suffix or name
    inside the folder so the same file moved or renamed resumes; a GDAL path or URL by its
    string, unread."""
    if mask is None:
        return None
    if isinstance(mask, str) and is_gdal_path(mask):
        return {"gdal": mask}
    path = Path(mask)
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}
    elif path.suffix.lower() == ".shp":
        files = {
            p.suffix.lower(): p
            for p in sorted(path.parent.iterdir())
            if p.stem == path.stem and p.suffix.lower() in SHAPEFILE_PARTS and p.is_file()
        }
    else:
        files = {path.suffix.lower() or path.name: path}
    return {"sha256": {name: file_sha256(p) for name, p in files.items()}}


def settings_hash(key: dict[str, Any]) -> str:
    """A stable hash of the settings that decide the outputs."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class BlockRecord:
    """What the manifest knows of one block."""

    id: str
    window: Window  # on the processing grid; in the file: [col_off, row_off, width, height]
    state: str  # done, failed or skipped
    run: int  # the run (1, 2, ...) that computed it
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> file, sha256
    counts: tuple[int, ...] = ()  # pixels of each code 0..19
    reason: str = ""  # why it failed
    seconds: float = 0.0
    worker: str = ""

    @classmethod
    def from_dict(cls, d: Any) -> BlockRecord:
        """A record as `asdict` wrote it; ValueError says what is missing or wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"a block record is a {type(d).__name__}, not an object")
        name = d.get("id", "?")
        missing = [k for k in ("id", "window", "state", "run") if k not in d]
        if missing:
            raise ValueError(f"block record {name} lacks {', '.join(missing)}")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"block record {name} has unknown field(s) {', '.join(unknown)}")
        if d["state"] not in STATES:
            raise ValueError(f"block record {name} has state {d['state']!r}")
        window = tuple(d["window"])
        if len(window) != 4 or not all(isinstance(v, int) for v in window):
            raise ValueError(f"block record {name} has window {d['window']!r}")
        outputs = d.get("outputs", {})
        if not isinstance(outputs, dict) or not all(
            isinstance(e, dict)
            and isinstance(e.get("file"), str)
            and isinstance(e.get("sha256"), str)
            for e in outputs.values()
        ):
            raise ValueError(f"block record {name} has outputs {outputs!r}")
        counts = tuple(d.get("counts", ()))
        if counts and (len(counts) != N_CODES or not all(isinstance(c, int) for c in counts)):
            raise ValueError(f"block record {name} has counts {list(counts)!r}")
        return cls(**{**d, "window": Window(*window), "counts": counts})

    def to_dict(self) -> dict[str, Any]:
        """The record as the manifest file holds it (`from_dict` reads it back)."""
        w = self.window
        window = [int(w.col_off), int(w.row_off), int(w.width), int(w.height)]
        return {**asdict(self), "window": window}

    def intact(self, out_dir: Path) -> bool:
        """Done, and every output still there with its recorded checksum."""
        if self.state != DONE:
            return False
        for entry in self.outputs.values():
            path = out_dir / entry["file"]
            if not path.is_file() or file_sha256(path) != entry["sha256"]:
                return False
        return True


class Manifest:
    """The block records of one output folder (read, updated, saved atomically)."""

    def __init__(self, path: Path, key_hash: str, settings: dict[str, Any], runs: int = 0) -> None:
        self.path = path
        self.settings_hash = key_hash
        self.settings = settings
        self.runs = runs
        self.blocks: dict[str, BlockRecord] = {}
        self.input_sha256: dict[str, str] = {}  # input path -> SHA-256 when the manifest was made
        self._input_sha256_saved = False

    @classmethod
    def open(
        cls,
        out_dir: Path,
        key: dict[str, Any],
        restart: bool,
        files: dict[str, str | None] | None = None,
    ) -> Manifest:
        """The folder's manifest for a new run of these settings; a fresh one when there is
        none or `restart`. Other settings than the recorded ones are refused, naming each
        change (`settings_change.describe_change`; `files` names the model's files and the
        mask there). A manifest that recorded only the settings' hash (an earlier engine) resumes
        when the hash is the same and is refused otherwise. Nothing is written here."""
        path = out_dir / MANIFEST_NAME
        key = json.loads(json.dumps(key, default=str))  # as it reads back from the file
        wanted = settings_hash(key)
        if restart or not path.exists():
            manifest = cls(path, wanted, key)
            manifest.input_sha256 = {f["path"]: file_sha256(Path(f["path"])) for f in _files(key)}
        else:
            old_hash, old_settings, runs, records = _read(path)
            recorded = _read_input_sha256(out_dir / INPUT_SHA256_NAME)
            if old_hash != wanted and not _same_content(key, old_settings, recorded):
                done = sum(r.state == DONE for r in records)
                raise InvalidInput(describe_change(out_dir, key, old_settings, done, files or {}))
            manifest = cls(path, wanted, key, runs)
            manifest.blocks = {r.id: r for r in records}
            manifest.input_sha256 = recorded
            manifest._input_sha256_saved = old_hash == wanted
        manifest.runs += 1
        return manifest

    def done(self) -> set[str]:
        """The blocks recorded as done."""
        return {k for k, r in self.blocks.items() if r.state == DONE}

    def record(self, record: BlockRecord) -> None:
        """Set a block's record and save at once."""
        self.blocks[record.id] = record
        self.save()

    def save(self) -> None:
        """Write the whole manifest under a temporary name and rename it into place."""
        data = {
            "version": VERSION,
            "settings_hash": self.settings_hash,
            "settings": self.settings,
            "runs": self.runs,
            "blocks": {k: v.to_dict() for k, v in sorted(self.blocks.items())},
        }
        try:
            with Destinations(overwrite=True) as dest:
                if not self._input_sha256_saved:  # new, or a tile's time changed: once
                    sidecar = self.path.parent / INPUT_SHA256_NAME
                    sidecar.parent.mkdir(exist_ok=True)
                    hashes = dest.claim(sidecar, "input SHA-256")
                    hashes.write_text(json.dumps(self.input_sha256, indent=0))
                temp = dest.claim(self.path, "region manifest", (".json",))
                temp.write_text(json.dumps(data, indent=1))
                dest.commit()
            self._input_sha256_saved = True
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot write the manifest {self.path}: {exc}") from None


def _read(path: Path) -> tuple[str, dict[str, Any] | None, int, list[BlockRecord]]:
    """The settings hash, settings (None when only their hash was recorded), run count and
    records of a manifest file; InvalidInput when it is not one this engine wrote (torn by
    hand, another program's, another version)."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("blocks", {}), dict):
            raise ValueError("not an object with a blocks object")
        old_hash, old_settings = data["settings_hash"], data.get("settings")
        if not isinstance(old_hash, str):
            raise ValueError("its settings hash is not a string")
        if old_settings is not None and not isinstance(old_settings, dict):
            raise ValueError("its settings are not an object")
        runs = int(data.get("runs", 0))
        records = [BlockRecord.from_dict(d) for d in data.get("blocks", {}).values()]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidInput(
            f"{path} is not a manifest this engine wrote ({what}); rerun with --restart to map "
            "the region again (its blocks are mapped anew)"
        ) from None
    return old_hash, old_settings, runs, records


def _inputs(key: dict[str, Any] | None) -> list[dict[str, Any]]:
    inputs = (key or {}).get("inputs") or []
    return [f for f in inputs if isinstance(f, dict) and "path" in f]


def _files(key: dict[str, Any]) -> list[dict[str, Any]]:
    """The input files of a settings key that are local files (GDAL paths are not hashed)."""
    return [f for f in _inputs(key) if not is_gdal_path(f["path"])]


def _read_input_sha256(path: Path) -> dict[str, str]:
    """The inputs' SHA-256 recorded beside the mosaics, by path ({} when there are none)."""
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def _same_content(
    key: dict[str, Any], old: dict[str, Any] | None, recorded: dict[str, str]
) -> bool:
    """True when the settings differ from the recorded ones only by input files whose size or
    time changed while their content (SHA-256, read now) is the one recorded."""
    if old is None or not recorded:
        return False
    if {k: v for k, v in key.items() if k != "inputs"} != {
        k: v for k, v in old.items() if k != "inputs"
    }:
        return False
    then = {f.get("path"): f for f in old.get("inputs") or [] if isinstance(f, dict)}
    now = key.get("inputs") or []
    if len(now) != len(then) or any(f["path"] not in then for f in now):
        return False
    for f in now:
        if f == then[f["path"]]:
            continue
        if f["path"] not in recorded or is_gdal_path(f["path"]):
            return False
        if file_sha256(Path(f["path"])) != recorded[f["path"]]:
            return False
    return True


def cancel_message(out_dir: Path) -> str:
    """What a cancelled region run leaves: its finished blocks, kept on purpose for the next
    run (read from the manifest on disk, which is the truth after any stop)."""
    out_dir = Path(out_dir).absolute()
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        return "cancelled; no output was left behind"
    try:
        _, _, _, records = _read(path)
    except InvalidInput:
        return f"cancelled; {path} could not be read back"
    done = sum(r.state == DONE for r in records)
    if not done:
        return (
            f"cancelled before any block finished; {path} records none done, so the next run "
            "maps them all"
        )
    return (
        f"cancelled; the {done} block(s) finished are kept in {out_dir / BLOCKS_DIR} and the "
        "next run of the same command resumes from them"
    )
