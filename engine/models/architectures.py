"""The table of architecture families: the one place that knows how each family differs.

The loader, the pipeline, the predictor and evaluation ask this table (by the card's
`architecture` or by a checkpoint's key layout); none of them tests for a family by name. A new
family (FLAIR-HUB UPerNet, other smp decoders) is one more `Architecture` entry, and the
contract test in tests/engine/test_architectures.py runs every entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ModelError
from engine.models.card import ModelCard


@dataclass(frozen=True)
class ExtraInputs:
    """Inputs besides the aerial tile, batch first (U-T&T: the Sentinel-2 series).

    `s2` (B, T, C, H, W) reflectances, `dates` (B, T) day offsets, `metadata` (B, M) the
    encoded acquisition; None for the aerial branch alone.
    """

    s2: np.ndarray | None = None
    dates: np.ndarray | None = None
    metadata: np.ndarray | None = None


@dataclass(frozen=True)
class Architecture:
    """What differs between families.

    Attributes:
        name: the card's `architecture` value.
        title: for messages ("a U-Net", "a U-T&T network").
        holds: does a state dict's key layout belong to this family?
        build: card + state dict -> eval-mode network, strictly loaded.
        card_from_tensors: the card of a checkpoint given without one (tensors + options).
        num_logits: the network's output logits.
        fixed_tile: True when the network runs on the card's tile size only.
        uses_sentinel2: whether runs need a Sentinel-2 source (extra inputs).
        forward: network + normalised tiles + extra inputs -> the map's logits (B, K, H, W).
    """

    name: str
    title: str
    holds: Callable[[Iterable[str]], bool]
    build: Callable[[ModelCard, Mapping[str, torch.Tensor]], torch.nn.Module]
    card_from_tensors: Callable[[Path, Mapping[str, torch.Tensor], Any], ModelCard]
    num_logits: Callable[[torch.nn.Module], int]
    fixed_tile: bool
    uses_sentinel2: bool
    forward: Callable[[torch.nn.Module, torch.Tensor, ExtraInputs | None], torch.Tensor]

    def uses_metadata(self, network: torch.nn.Module) -> bool:
        """Whether this network also takes the acquisition metadata vector."""
        return bool(getattr(network, "uses_metadata", False))


# --- FLAIR-INC smp networks: U-Net (also FLAIR-1, plain smp), FPN, DeepLabV3 ------------------


def _single_output(network: torch.nn.Module, x: torch.Tensor, extras: ExtraInputs | None):
    return network(x)


def _smp(decoder: str, title: str) -> Architecture:
    """An smp decoder on a ResNet-34 or MiT-B5 encoder (engine.models.smp_networks)."""

    def holds(keys: Iterable[str]) -> bool:
        from engine.models.smp_networks import holds as smp_holds

        return smp_holds(keys, decoder)

    def build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
        from engine.models.smp_networks import build_smp

        return build_smp(card, state, decoder)

    def card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
        from engine.models.loader import smp_card_from_tensors

        return smp_card_from_tensors(path, state, overrides, decoder)

    return Architecture(
        name=decoder,
        title=title,
        holds=holds,
        build=build,
        card_from_tensors=card,
        num_logits=lambda network: network.segmentation_head[0].out_channels,
        fixed_tile=False,
        uses_sentinel2=False,
        forward=_single_output,
    )


UNET = _smp("unet", "a U-Net")
FPN = _smp("fpn", "an FPN")
DEEPLABV3 = _smp("deeplabv3", "a DeepLabV3")


# --- U-T&T (FLAIR-2: aerial U-Net fused with a U-TAE over Sentinel-2) ---------------------------


def _utt_holds(keys: Iterable[str]) -> bool:
    from engine.models.utt import is_utt_state_dict

    return is_utt_state_dict(keys)


def _utt_build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    from engine.models.utt import build_utt_network

    return build_utt_network(card, state)


def _utt_card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
    from engine.models.loader import apply_overrides
    from engine.models.utt import default_utt_card

    return apply_overrides(default_utt_card(path.stem), overrides)


def _utt_forward(network: torch.nn.Module, x: torch.Tensor, extras: ExtraInputs | None):
    extras = extras or ExtraInputs()
    device = x.device

    def tensor(value: np.ndarray | None) -> torch.Tensor | None:
        return None if value is None else torch.as_tensor(value, dtype=torch.float32).to(device)

    # the fused output is the map; the aerial and Sentinel-2 branches' own logits are auxiliary
    return network(
        x, s2=tensor(extras.s2), dates=tensor(extras.dates), metadata=tensor(extras.metadata)
    )[1]


UTT = Architecture(
    name="utt",
    title="a U-T&T network",
    holds=_utt_holds,
    build=_utt_build,
    card_from_tensors=_utt_card,
    num_logits=lambda network: network.config.num_classes,
    fixed_tile=True,
    uses_sentinel2=True,
    forward=_utt_forward,
)


# --- FLAIR-HUB (IGN 2025): timm encoder with a UPerNet (smp 0.4.0 layout) or U-Net decoder ---


def _flairhub(decoder: str, title: str) -> Architecture:
    def holds(keys: Iterable[str]) -> bool:
        from engine.models.flairhub import holds as flairhub_holds

        return flairhub_holds(keys, decoder)

    def build(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
        from engine.models.flairhub import build_flairhub

        return build_flairhub(card, state, decoder)

    def card(path: Path, state: Mapping[str, torch.Tensor], overrides: Any) -> ModelCard:
        from engine.models.flairhub import card_from_tensors

        return card_from_tensors(path, state, overrides, decoder)

    return Architecture(
        name=f"flairhub-{decoder}",
        title=title,
        holds=holds,
        build=build,
        card_from_tensors=card,
        num_logits=lambda network: network.segmentation_head[0].out_channels,
        # Swin is built for one tile size, and all of them depend on the whole tile: every tile
        # runs at the card's size (edge tiles padded), chosen by measurement (README)
        fixed_tile=True,
        uses_sentinel2=False,
        forward=_single_output,
    )


FLAIRHUB_UPERNET = _flairhub("upernet", "a FLAIR-HUB UPerNet")
FLAIRHUB_UNET = _flairhub("unet", "a FLAIR-HUB U-Net")

# Most specific first: a U-T&T checkpoint also holds a U-Net encoder key under `arch_vhr.`.
ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (UTT, UNET, FPN, DEEPLABV3, FLAIRHUB_UPERNET, FLAIRHUB_UNET)
}


def architecture_of(card: ModelCard) -> Architecture:
    """The family of a card."""
    try:
        return ARCHITECTURES[card.architecture]
    except KeyError:
        raise ModelError(
            f"model {card.name}: architecture {card.architecture!r} is not one of "
            f"{', '.join(ARCHITECTURES)}"
        ) from None


def detect_architecture(keys: Iterable[str], path: Path) -> Architecture:
    """The family whose key layout a checkpoint holds, or ModelError naming the known ones."""
    keys = list(keys)
    for architecture in ARCHITECTURES.values():
        if architecture.holds(keys):
            return architecture
    raise ModelError(
        f"{path.name} holds no network this engine knows (looked for the key layouts of "
        f"{', '.join(a.title for a in ARCHITECTURES.values())}); check the file"
    )
