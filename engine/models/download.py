"""Finding and fetching official weights: a local folder, the Hugging Face cache, the hub.

The engine never downloads without being asked (`allow_download`), and says when it does.
Weights are looked up, in order, in `$FLAIR_WEIGHTS_DIR/<official file name>`, in the Hugging
Face cache, and then (only when allowed) on the hub, through `huggingface_hub` so that
`HF_ENDPOINT`, `HF_HUB_CACHE` and proxies behave as users of the hub expect.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from engine.errors import DownloadError, ModelError, WeightsNotAvailable
from engine.models.card import ModelCard, WeightsSource
from engine.progress import LoggingReporter

WEIGHTS_DIR_ENV = "FLAIR_WEIGHTS_DIR"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _hub_kwargs() -> dict[str, str]:
    """Endpoint and cache read at call time, so a changed environment is honoured."""
    kwargs = {}
    if os.environ.get("HF_ENDPOINT"):
        kwargs["endpoint"] = os.environ["HF_ENDPOINT"].rstrip("/")
    if os.environ.get("HF_HUB_CACHE"):
        kwargs["cache_dir"] = os.environ["HF_HUB_CACHE"]
    return kwargs


def _source(card: ModelCard) -> WeightsSource:
    if card.source is None:
        raise ModelError(f"model {card.name} names no weights source; give a checkpoint path")
    return card.source


def local_weights(card: ModelCard) -> Path | None:
    """The weights file if it is already on this machine (weights folder or hub cache)."""
    source = _source(card)
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if folder:
        candidate = Path(folder) / source.filename
        if candidate.is_file():
            return candidate
    from huggingface_hub import try_to_load_from_cache

    kwargs = {k: v for k, v in _hub_kwargs().items() if k == "cache_dir"}
    cached = try_to_load_from_cache(
        source.repo_id, source.filename, revision=source.revision, **kwargs
    )
    return Path(cached) if isinstance(cached, str) and Path(cached).is_file() else None


def how_to_get(card: ModelCard) -> str:
    """The sentence that tells a user how to obtain a model's weights by hand."""
    source = _source(card)
    return (
        f"run `flair-landcover models download {card.name}` where https://huggingface.co is "
        f"reachable, or download {source.filename} from "
        f"https://huggingface.co/{source.repo_id} into a folder and set {WEIGHTS_DIR_ENV} to it"
    )


def download_weights(card: ModelCard, say: Callable[..., None] | None = None) -> Path:
    """Fetch a registry model's weights into the hub cache and verify their hash.

    `say(message)` (`Reporter.log`; by default `logging`) tells the user a download starts.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    source = _source(card)
    say = say or LoggingReporter().log
    say(f"downloading {source.filename} from the Hugging Face hub ({source.repo_id})")
    try:
        path = Path(
            hf_hub_download(
                source.repo_id, source.filename, revision=source.revision, **_hub_kwargs()
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DownloadError(
            f"could not download the weights of {card.name} ({detail}); {how_to_get(card)}"
        ) from exc
    verify_hash(card, path)
    return path


def verify_hash(card: ModelCard, path: Path) -> None:
    """Refuse (and remove from the cache) a file whose SHA-256 differs from the card's."""
    expected = _source(card).sha256
    if not expected:
        return
    actual = sha256_of(path)
    if actual != expected:
        with contextlib.suppress(OSError):
            Path(os.path.realpath(path)).unlink()
        raise DownloadError(
            f"the weights of {card.name} have SHA-256 {actual}, not the published {expected}; "
            "the corrupt file was removed, download again"
        )


def resolve_weights(
    card: ModelCard, allow_download: bool, say: Callable[..., None] | None = None
) -> Path:
    """A local path to the card's weights, downloading only when allowed (said through `say`)."""
    path = local_weights(card)
    if path is not None:
        return path
    if not allow_download:
        raise WeightsNotAvailable(
            f"the weights of {card.name} are not on this machine; {how_to_get(card)} "
            "(or add --download to fetch them now)"
        )
    return download_weights(card, say)
