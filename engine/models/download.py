"""Finding and fetching official weights: a local folder, the Hugging Face cache, the hub.

The engine never downloads without being asked (`allow_download`), and says when it does.
Weights are looked up, in order, in `$FLAIR_WEIGHTS_DIR/<official file name>`, in the Hugging
Face cache, and then (only when allowed) on the hub, through `huggingface_hub` so that
`HF_ENDPOINT`, `HF_HUB_CACHE` and proxies behave as users of the hub expect.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from engine.digest import file_sha256
from engine.errors import DownloadError, ModelError, WeightsNotAvailable
from engine.models.card import ModelCard, WeightsSource
from engine.progress import LoggingReporter

WEIGHTS_DIR_ENV = "FLAIR_WEIGHTS_DIR"


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


def download_url(card: ModelCard) -> str:
    """The direct link of the weights file (the hub's `resolve` URL; `HF_ENDPOINT` honoured)."""
    source = _source(card)
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"
    return f"{endpoint}/{source.repo_id}/resolve/{source.revision}/{source.filename}"


def weights_folders(card: ModelCard) -> list[str]:
    """Where the engine looks for a card's weights, the folder to put a downloaded file in
    first: the weights folder when one is set, then the Hugging Face cache of its repository."""
    from huggingface_hub import constants

    source = _source(card)
    cache = _hub_kwargs().get("cache_dir") or constants.HF_HUB_CACHE
    repo = "models--" + source.repo_id.replace("/", "--")
    folders = [os.environ[WEIGHTS_DIR_ENV]] if os.environ.get(WEIGHTS_DIR_ENV) else []
    return [*folders, str(Path(cache) / repo)]


def human_size(size_bytes: int | None) -> str:
    """ "346 MB" (decimal units, as download pages give them); "size not known" for None."""
    if size_bytes is None:
        return "size not known"
    if size_bytes >= 10**9:
        return f"{size_bytes / 1e9:.1f} GB"
    return f"{max(1, round(size_bytes / 1e6))} MB"


def how_to_get(card: ModelCard, plain: bool = False) -> str:
    """The sentence that tells a user how to obtain a model's weights by hand: the file, its
    size, its link, and the folder to put it in.

    `plain`: for a log line the plugin shows as it is, the weights folder without the name of
    the variable that sets it on the command line (the plugin sets it from its own setting)."""
    source = _source(card)
    folders = weights_folders(card)
    if os.environ.get(WEIGHTS_DIR_ENV):
        where = f"put it in the weights folder {folders[0]}"
    elif plain:
        where = "put it in a folder and choose that folder as the weights folder"
    else:
        where = f"put it in a folder and set that folder as the weights folder ({WEIGHTS_DIR_ENV})"
    return (
        f"download {source.filename} ({human_size(source.size_bytes)}) from "
        f"{download_url(card)} and {where}"
    )


def weights_fields(card: ModelCard) -> dict[str, object]:
    """The `weights_missing` fields: model, file, size_bytes, url, folders (first: where to put
    the file)."""
    source = _source(card)
    return {
        "model": card.name,
        "file": source.filename,
        "size_bytes": source.size_bytes,
        "url": download_url(card),
        "folders": weights_folders(card),
    }


def hub_offline() -> bool:
    """Whether the Hugging Face client is told not to reach the hub (`HF_HUB_OFFLINE`)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def missing_weights(card: ModelCard, why: str = "") -> WeightsNotAvailable:
    """The one error for weights that are not here and will not be fetched: what to download,
    how large, from where, and where to put it (message and fields)."""
    return WeightsNotAvailable(
        f"the weights of {card.name} are not on this machine{why}: {how_to_get(card)}; or, "
        f"where the Internet is reachable, run `flair-landcover models download {card.name}`",
        **weights_fields(card),
    )


def download_weights(card: ModelCard, say: Callable[..., None] | None = None) -> Path:
    """Fetch a registry model's weights into the hub cache and verify their hash.

    `say(message)` (`Reporter.log`; by default `logging`) tells the user a download starts.
    The client's own exception text goes to `logging` only: it is long, and cut short it says
    half a sentence; the error names the cause in a few words and how to get the file by hand.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    source = _source(card)
    say = say or LoggingReporter().log
    say(
        f"downloading {source.filename} ({human_size(source.size_bytes)}) from the Hugging Face "
        f"hub ({source.repo_id})"
    )
    try:
        path = Path(
            hf_hub_download(
                source.repo_id, source.filename, revision=source.revision, **_hub_kwargs()
            )
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        logging.getLogger(__name__).info("download of %s failed: %s", card.name, exc)
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status:
            cause = f"the hub answered HTTP {status}"
        elif isinstance(exc, LocalEntryNotFoundError):
            cause = "the hub could not be reached"
        else:
            cause = f"{type(exc).__name__} while downloading"
        raise DownloadError(
            f"could not download the weights of {card.name} ({cause}); {how_to_get(card)}",
            **weights_fields(card),
        ) from exc
    verify_hash(card, path)
    return path


def verify_hash(card: ModelCard, path: Path) -> None:
    """Refuse (and remove from the cache) a file whose SHA-256 differs from the card's."""
    expected = _source(card).sha256
    if not expected:
        return
    actual = file_sha256(path)
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
        raise missing_weights(card)
    if hub_offline():
        raise missing_weights(card, " and the hub is off (offline mode)")
    return download_weights(card, say)


def check_weights(card: ModelCard, allow_download: bool) -> None:
    """Fail at once, before any model code loads, when a registry model's weights are neither
    here nor to be fetched (`resolve_weights` would fail the same way, only later)."""
    if card.source is None or local_weights(card) is not None:
        return
    if not allow_download:
        raise missing_weights(card)
    if hub_offline():
        raise missing_weights(card, " and the hub is off (offline mode)")
