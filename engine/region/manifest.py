"""The manifest of a region run: one record per block, in the output folder, always consistent.

It is rewritten after every block that ends (write to a temporary, rename: `engine.io
.destination`), so a crash of the client, of a worker or of the whole cluster leaves either the
previous manifest or the next one, never a torn file. A block counts as done on a later run only
when its record says so, every output it names still exists with the recorded SHA-256, and the
settings hash is the same; changed settings are refused unless the run restarts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput, OutputError
from engine.io.destination import Destinations

MANIFEST_NAME = "manifest.json"
VERSION = 1
DONE, FAILED, SKIPPED = "done", "failed", "skipped"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def settings_hash(key: dict[str, Any]) -> str:
    """A stable hash of the settings that decide the outputs."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class BlockRecord:
    """What the manifest knows of one block."""

    id: str
    window: tuple[int, int, int, int]  # col_off, row_off, width, height (processing grid)
    state: str  # done, failed or skipped
    run: int  # the run (1, 2, ...) that computed it
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> file, sha256
    counts: tuple[int, ...] = ()  # pixels of each code 0..19
    reason: str = ""  # why it failed
    seconds: float = 0.0
    worker: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlockRecord:
        d = dict(d)
        d["window"] = tuple(d["window"])
        d["counts"] = tuple(d.get("counts", ()))
        return cls(**d)

    def intact(self, out_dir: Path) -> bool:
        """Done, and every output still there with its recorded checksum."""
        if self.state != DONE:
            return False
        for entry in self.outputs.values():
            path = out_dir / entry["file"]
            if not path.is_file() or sha256_file(path) != entry["sha256"]:
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

    @classmethod
    def open(cls, out_dir: Path, key: dict[str, Any], restart: bool) -> Manifest:
        """The folder's manifest for a new run of these settings; a fresh one when there is
        none or `restart`. Other settings than the recorded ones are refused, naming them."""
        path = out_dir / MANIFEST_NAME
        key = json.loads(json.dumps(key, default=str))  # as it reads back from the file
        wanted = settings_hash(key)
        if restart or not path.exists():
            manifest = cls(path, wanted, key)
        else:
            try:
                data = json.loads(path.read_text())
                old_hash, old_settings = data["settings_hash"], data["settings"]
            except (OSError, ValueError, KeyError) as exc:
                raise InvalidInput(
                    f"{path} is not a manifest this engine wrote ({exc}); add --restart to start "
                    "the region again"
                ) from None
            if old_hash != wanted:
                changed = sorted(
                    k for k in set(key) | set(old_settings) if key.get(k) != old_settings.get(k)
                )
                raise InvalidInput(
                    f"{out_dir} holds a region mapped with other settings (changed: "
                    f"{', '.join(changed)}); rerun with the same settings to resume, add "
                    "--restart to map it again with these, or choose another folder"
                )
            manifest = cls(path, wanted, key, int(data.get("runs", 0)))
            for d in data.get("blocks", {}).values():
                record = BlockRecord.from_dict(d)
                manifest.blocks[record.id] = record
        manifest.runs += 1
        return manifest

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
            "blocks": {k: asdict(v) for k, v in sorted(self.blocks.items())},
        }
        try:
            with Destinations(overwrite=True) as dest:
                temp = dest.claim(self.path, "region manifest", (".json",))
                temp.write_text(json.dumps(data, indent=1))
                dest.commit()
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot write the manifest {self.path}: {exc}") from None
