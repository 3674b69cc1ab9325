"""Build a U-T&T network from a model card and a checkpoint's state dict.

Official FLAIR-2 checkpoints are Lightning checkpoints: the network's keys start with `model.`
and two loss weights (`criterion.0.weight`, `criterion.1.weight`) come along. Both are handled
here; everything else must match the architecture exactly, and any difference is reported at
once, in one error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.checkpoint import describe_state_mismatch
from engine.models.utt.metadata import metadata_length
from engine.models.utt.network import UTTConfig, UTTNetwork
from engine.progress import LoggingReporter
from engine.sentinel2.settings import FLAIR2

LIGHTNING_PREFIX = "model."
IGNORED_PREFIXES = ("criterion.",)
UTT_ROOTS = ("arch_vhr.", "arch_hr.")
HEAD_KEY = "arch_vhr.segmentation_head.0.weight"
AERIAL_KEY = "arch_vhr.encoder.conv1.weight"
S2_KEY = "arch_hr.in_conv.conv.conv.0.weight"
METADATA_KEY = "mtd_mlp.enc_mlp.0.weight"


def _strip(key: str) -> str:
    return key[len(LIGHTNING_PREFIX) :] if key.startswith(LIGHTNING_PREFIX) else key


def is_utt_state_dict(keys: Iterable[str]) -> bool:
    """Whether a state dict's keys are U-T&T's (`arch_vhr.*` / `arch_hr.*`, `model.` or not)."""
    return any(_strip(k).startswith(UTT_ROOTS) for k in keys)


def network_state_dict(state_dict: Mapping[str, object]) -> dict[str, object]:
    """The network's entries: Lightning's `model.` prefix removed, `criterion.*` left out."""
    return {_strip(k): v for k, v in state_dict.items() if not k.startswith(IGNORED_PREFIXES)}


def _shape(value: object) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _hints(card: ModelCard, config: UTTConfig, given: Mapping[str, object]) -> list[str]:
    """What a mismatch of the first-layer or head shapes means in the card's terms."""
    hints = []
    aerial, s2, head = (_shape(given.get(k)) for k in (AERIAL_KEY, S2_KEY, HEAD_KEY))
    if aerial and len(aerial) > 1 and aerial[1] != config.aerial_channels:
        hints.append(
            f"the checkpoint takes {aerial[1]} aerial channels, the card lists "
            f"{config.aerial_channels} ({', '.join(card.channels)})"
        )
    if s2 and len(s2) > 1 and s2[1] != config.s2_bands:
        hints.append(
            f"the checkpoint takes {s2[1]} Sentinel-2 bands, the card lists {config.s2_bands}"
        )
    if head and head[0] != config.num_classes:
        hints.append(f"the checkpoint has {head[0]} logits, the card {config.num_classes}")
    mtd = _shape(given.get(METADATA_KEY))
    if mtd and len(mtd) > 1 and mtd[1] != config.metadata_size:
        hints.append(
            f"the checkpoint's metadata vector has {mtd[1]} values; the card's metadata_years "
            f"give {config.metadata_size}"
        )
    return hints


def utt_config_for(
    card: ModelCard, state_dict: Mapping[str, object], say: Callable[..., None]
) -> UTTConfig:
    """The network configuration a card describes, with the metadata MLP as the checkpoint has it.

    Args:
        card: The model card (architecture "utt").
        state_dict: The checkpoint's network entries (see `network_state_dict`).
        say: Where a card that disagrees with the checkpoint is said, `say(message, level)`.

    Returns:
        The configuration; the number of logits comes from the checkpoint when the card leaves
        it open.
    """
    settings = card.sentinel2 or FLAIR2
    has_metadata = any(k.startswith("mtd_mlp.") for k in state_dict)
    if has_metadata != settings.use_metadata:
        say(
            f"model {card.name}: the card says use_metadata={settings.use_metadata} but the "
            f"checkpoint {'has' if has_metadata else 'lacks'} the metadata MLP; following the "
            "checkpoint",
            "WARNING",
        )
    num_classes = card.num_logits
    if not num_classes:
        head = _shape(state_dict.get(HEAD_KEY))
        num_classes = head[0] if head else 13
    return UTTConfig(
        num_classes=num_classes,
        aerial_channels=len(card.channels),
        s2_bands=len(settings.bands),
        metadata_size=metadata_length(len(settings.metadata_years)) if has_metadata else None,
        encoder=card.encoder,
    )


def build_utt_network(
    card: ModelCard,
    state_dict: Mapping[str, torch.Tensor],
    say: Callable[..., None] | None = None,
) -> torch.nn.Module:
    """A U-T&T network with a checkpoint's weights, in eval mode.

    Args:
        card: The model card (architecture "utt"; channels, Sentinel-2 bands and metadata years
            fix the expected shapes).
        state_dict: The checkpoint's `state_dict`, as saved by the official Lightning training
            (keys `model.*`, plus `criterion.*`, which are ignored) or already stripped.
        say: Where warnings for the user go, `say(message, level)` (`Reporter.log`); by
            default `logging`.

    Returns:
        The `UTTNetwork`, eval mode, on the CPU, weights loaded with `strict=True`.

    Raises:
        ModelError: The card is not a U-T&T card, or the state dict does not fit: one message
            lists the missing and unexpected keys and the shape mismatches.
    """
    if card.architecture != "utt":
        raise ModelError(
            f"model {card.name}: architecture {card.architecture!r} is not U-T&T ('utt')"
        )
    given = network_state_dict(state_dict)
    if not is_utt_state_dict(given):
        raise ModelError(
            f"model {card.name}: the checkpoint has no U-T&T keys (arch_vhr.*, arch_hr.*); "
            "is it a U-Net checkpoint? Use a U-Net model card for it"
        )
    config = utt_config_for(card, given, say or LoggingReporter().log)
    try:
        network = UTTNetwork(config)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"model {card.name}: cannot build U-T&T with {config}: {exc}") from exc
    mismatch = describe_state_mismatch(network.state_dict(), given)
    if mismatch:
        hints = "; ".join(_hints(card, config, given))
        raise ModelError(
            f"model {card.name}: the checkpoint does not fit the FLAIR-2 U-T&T architecture: "
            + mismatch
            + (". " + hints[0].upper() + hints[1:] if hints else "")
            + ". Use an official FLAIR-2 U-T&T checkpoint (Lightning .ckpt) with a card that "
            "matches it"
        )
    network.load_state_dict(given, strict=True)
    return network.eval()
