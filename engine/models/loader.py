"""Turning a model name or checkpoint path into a card plus a ready network.

torch is imported where tensors are read (`read_state_dict`) and networks built: the card of a
registry name or of a checkpoint with a card file is known without it (`known_card`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.digest import sha256_once
from engine.errors import InputNotFound, ModelError
from engine.models.architectures import Architecture, architecture_of, detect_architecture
from engine.models.card import ModelCard
from engine.models.checkpoint import read_state_dict
from engine.models.checkpoint_cards import apply_overrides, named_normalization
from engine.models.download import resolve_weights
from engine.models.overrides import CardOverrides
from engine.models.registry import load_registry

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its card (logits resolved) and its eval-mode network.

    `network` is None where it was not built (a CPU run whose converted network is cached:
    engine.runtime.cached_cards) or was let go once OpenVINO ran; `build_network` builds it from the
    checkpoint. `weights_sha256` gives the checkpoint's SHA-256, computed once.
    """

    card: ModelCard
    network: torch.nn.Module | None
    weights_path: Path
    weights_sha256: Callable[[], str] = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.weights_sha256 is None:
            object.__setattr__(self, "weights_sha256", sha256_once(self.weights_path))

    @property
    def architecture(self) -> Architecture:
        """The card's family in the architecture table."""
        return architecture_of(self.card)

    @property
    def uses_metadata(self) -> bool:
        """Whether the network also takes the acquisition metadata vector (some U-T&T)."""
        return self.architecture.uses_metadata(self.network)


def sidecar_card_path(checkpoint: Path) -> Path | None:
    """`<checkpoint>.card.json` or `<stem>.json` beside a checkpoint, if present."""
    for candidate in (
        checkpoint.with_name(checkpoint.name + ".card.json"),
        checkpoint.with_suffix(".json"),
    ):
        if candidate.is_file():
            return candidate
    return None


def known_card(
    name_or_path: str, *, card_path: Path | None = None, overrides: CardOverrides | None = None
) -> ModelCard | None:
    """The card of a registry name or of a checkpoint with a card file, without reading any
    weights (so bands can be checked before a download); None when only the tensors can say."""
    overrides = overrides or CardOverrides()
    registry = load_registry()
    if name_or_path in registry:
        return apply_overrides(registry.get(name_or_path), overrides)
    path = Path(name_or_path).expanduser()
    card_file = card_path or (sidecar_card_path(path) if path.exists() else None)
    if card_file is None:
        return None
    return apply_overrides(ModelCard.from_json(card_file), overrides)


def resolve_card(
    name_or_path: str,
    *,
    card_path: Path | None = None,
    overrides: CardOverrides | None = None,
    allow_download: bool = False,
    say: Callable[[str], None] = log.info,
) -> tuple[ModelCard | None, Path]:
    """The card (None: infer it from the tensors) and the weights file of a name or path.

    Registry weights are resolved (and downloaded when allowed) before any other work, so a
    missing download stops the run at once.
    """
    overrides = overrides or CardOverrides()
    registry = load_registry()
    if name_or_path in registry:
        card = apply_overrides(registry.get(name_or_path), overrides)
        return card, resolve_weights(card, allow_download, say)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        if path.suffix or "/" in name_or_path or "\\" in name_or_path:
            raise InputNotFound(f"checkpoint {path} does not exist")
        registry.get(name_or_path)  # raises, listing the known names
    card_file = card_path or sidecar_card_path(path)
    if card_file is None:
        return None, path
    return apply_overrides(ModelCard.from_json(card_file), overrides), path


def load_model(
    name_or_path: str,
    *,
    card_path: Path | None = None,
    overrides: CardOverrides | None = None,
    allow_download: bool = False,
    say: Callable[[str], None] = log.info,
) -> LoadedModel:
    """Card plus eval-mode network for a registry name or checkpoint path, checked together."""
    overrides = overrides or CardOverrides()
    card, path = resolve_card(
        name_or_path,
        card_path=card_path,
        overrides=overrides,
        allow_download=allow_download,
        say=say,
    )
    return load_resolved(card, path, overrides, say)


def load_resolved(
    card: ModelCard | None,
    path: Path,
    overrides: CardOverrides,
    say: Callable[[str], None] = log.info,
) -> LoadedModel:
    """`load_model` once `resolve_card` has answered: the checkpoint read, the card inferred
    from its tensors where none was given, both checked together and the network built."""
    state = read_state_dict(path)
    found = detect_architecture(state.keys(), path)
    if card is None:
        card = found.card_from_tensors(path, state, overrides)
        if card.source is not None and card.source.filename == path.name:
            say(f"{path.name}: the registry's {card.name}, known by its file name")
        else:
            say(
                f"no model card for {path.name}: assuming {found.title} with channels "
                f"{','.join(card.channels)}, logits -> FLAIR codes {list(card.logit_codes)}, "
                f"normalisation {_normalization_name(card)} (give a model card to "
                "change these)"
            )
    expected = architecture_of(card)
    if found is not expected:
        raise ModelError(
            f"{path.name} holds {found.title} but model {card.name} is {expected.title}"
        )
    network = expected.build(card, state)
    card = card.resolved_for_logits(expected.num_logits(network))
    return LoadedModel(card=card, network=network, weights_path=path)


def build_network(loaded: LoadedModel) -> torch.nn.Module:
    """The eval-mode network of a model whose card is resolved, built from its checkpoint
    (a model loaded without it, or let go once OpenVINO ran)."""
    return loaded.architecture.build(loaded.card, read_state_dict(loaded.weights_path))


def _normalization_name(card: ModelCard) -> str:
    """How the card normalises, named as `--normalization` would set it where it matches."""
    norm = card.normalization
    if norm.divisor == 255.0 and not norm.mean:
        return "'unit' (/255)"
    reference = named_normalization("flair-inc", len(card.channels))
    stats = f"mean {list(norm.mean)}, std {list(norm.std)}"
    return f"'flair-inc' ({stats})" if norm == reference else f"the card's own ({stats})"
