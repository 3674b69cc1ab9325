"""The FLAIR U-Net: segmentation_models_pytorch `Unet` with a ResNet-34 encoder."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.models.checkpoint import describe_state_mismatch, strip_wrapper_prefix

ANCHOR_KEY = "encoder.conv1.weight"
HEAD_KEY = "segmentation_head.0.weight"


def unet_shape(state: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(input channels, logits) of an unprefixed smp U-Net state dict."""
    if HEAD_KEY not in state:
        raise ModelError("the checkpoint has an encoder but no segmentation head: not an smp U-Net")
    return int(state[ANCHOR_KEY].shape[1]), int(state[HEAD_KEY].shape[0])


def build_unet(card: ModelCard, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """An eval-mode smp U-Net carrying the checkpoint's weights, checked against `card`.

    `state` may carry any wrapper prefix. ImageNet weights are never fetched
    (`encoder_weights=None`): every tensor comes from the checkpoint.
    """
    import segmentation_models_pytorch as smp

    state = strip_wrapper_prefix(state, ANCHOR_KEY)
    in_channels, n_logits = unet_shape(state)
    if in_channels != len(card.channels):
        raise ModelError(
            f"model {card.name}: the checkpoint takes {in_channels} input channels but the card "
            f"lists {len(card.channels)} ({','.join(card.channels)}); use a card or --channels "
            f"with {in_channels} channels"
        )
    if card.num_logits and n_logits != card.num_logits:
        raise ModelError(
            f"model {card.name}: the checkpoint has {n_logits} logits but the card maps "
            f"{card.num_logits}; check --classes or the card"
        )
    network = smp.Unet(
        encoder_name=card.encoder, encoder_weights=None, in_channels=in_channels, classes=n_logits
    )
    mismatch = describe_state_mismatch(network.state_dict(), state)
    if mismatch:
        raise ModelError(
            f"model {card.name}: the checkpoint is not a {card.encoder} U-Net: {mismatch}"
        )
    network.load_state_dict(state, strict=True)
    return network.eval()
