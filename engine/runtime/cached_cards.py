"""Cards resolved from checkpoints, remembered beside the converted networks.

A run that may use OpenVINO asks here before it reads a checkpoint: the card a checkpoint
resolved to before (its logits counted from the built network, or inferred from its tensors)
is read back, so the network is not built in the run (a conversion builds its own, in a child
process: engine.runtime.torch_child, which also resolves a card the first time). Such a run
never imports torch: it starts seconds sooner and leaves out the 0.5 to 0.8 GB that torch's
libraries take once imported.

A record is `<cache>/cards/<digest>.json`. The digest hashes what the resolution depends on:
the checkpoint's content and file name (a card inferred from tensors is named after the file),
the card asked for (registry, card file and options applied; None where the tensors decide),
the card options and `RESOLUTION_VERSION`. A record that cannot be read or is for another
request is ignored, and written again once the checkpoint is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.overrides import CardOverrides
from engine.runtime.cache import cache_root

RESOLUTION_VERSION = 1  # raise when the loader resolves the same checkpoint to another card


@dataclass(frozen=True)
class CardRequest:
    """What a checkpoint's card is resolved from."""

    weights_path: Path
    weights_sha256: Callable[[], str]
    asked: ModelCard | None  # None: inferred from the tensors
    overrides: CardOverrides

    def fields(self) -> dict[str, Any]:
        return {
            "file_name": self.weights_path.name,
            "weights_sha256": self.weights_sha256(),
            "asked": self.asked.to_dict() if self.asked is not None else None,
            "overrides": asdict(self.overrides),
            "resolution_version": RESOLUTION_VERSION,
        }

    @property
    def digest(self) -> str:
        text = json.dumps(self.fields(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RememberedCard:
    """A card resolved before, and what the loader said while resolving it (said again)."""

    card: ModelCard
    notes: tuple[str, ...]


class CachedCards:
    """The remembered cards under one cache root."""

    def __init__(self, root: Path | None = None) -> None:
        self.folder = (root or cache_root()) / "cards"

    def path(self, request: CardRequest) -> Path:
        return self.folder / f"{request.digest}.json"

    def find(self, request: CardRequest) -> RememberedCard | None:
        """The card `request` resolved to before, or None (never seen, unreadable, stale)."""
        try:
            record = json.loads(self.path(request).read_text())
            if record.get("request") != json.loads(json.dumps(request.fields())):
                return None
            card = ModelCard.from_dict(record["card"])
            notes = tuple(str(note) for note in record.get("notes", ()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, ModelError):
            return None
        return RememberedCard(card, notes)

    def remember(self, request: CardRequest, card: ModelCard, notes: tuple[str, ...]) -> None:
        """Write the record atomically (a temporary file renamed into place)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(request)
        temporary = final.with_name(f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        record = {"request": request.fields(), "card": card.to_dict(), "notes": list(notes)}
        try:
            temporary.write_text(json.dumps(record, indent=1))
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
