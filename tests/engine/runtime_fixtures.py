"""Generated checkpoints (published layouts, sidecar cards for small tiles) for the runtime tests.

One per architecture the registry holds: FLAIR-INC U-Net, FPN, DeepLabV3 and MiT-B5 U-Net, and
the FLAIR-HUB UPerNet and U-Net over ConvNeXt-V2 and Swin. Tiles are small (conversion costs a
few seconds at these sizes, 20 to 40 s at the cards' own).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tests.fixtures.flairhub_checkpoint import make_flairhub_checkpoint, registry_card
from tests.fixtures.generate import make_unet_checkpoint

SWIN_TINY = "swin_tiny_patch4_window7_224"


def flairhub_file(path: Path, name: str, encoder: str, tile_px: int, seed: int) -> Path:
    """A FLAIR-HUB file of registry model `name` over `encoder`, with a card for `tile_px`."""
    card = replace(
        registry_card(name), name=path.stem, encoder=encoder, tile_size_px=tile_px, margin_px=16
    )
    make_flairhub_checkpoint(path, card, seed=seed)
    path.with_name(path.name + ".card.json").write_text(json.dumps(card.to_dict()))
    return path


# case -> (writer of the checkpoint into a folder, tile size in px)
CASES: dict[str, tuple[Callable[[Path], Path], int]] = {
    "unet": (lambda d: make_unet_checkpoint(d / "unet.pth", 5, 19, "flair-inc", seed=3), 64),
    "fpn": (lambda d: make_unet_checkpoint(d / "fpn.pth", 3, 19, seed=7, decoder="fpn"), 64),
    "deeplabv3": (
        lambda d: make_unet_checkpoint(d / "deeplab.pth", 3, 19, seed=8, decoder="deeplabv3"),
        64,
    ),
    "mitb5-unet": (
        lambda d: make_unet_checkpoint(d / "mitb5.pth", 3, 19, seed=9, encoder="mit_b5"),
        64,
    ),
    "flairhub-upernet-convnextv2": (
        lambda d: flairhub_file(
            d / "hub_upernet_cnx.safetensors",
            "flair-hub-ir-convnextv2tiny-upernet",
            "convnextv2_tiny",
            128,
            5,
        ),
        128,
    ),
    "flairhub-upernet-swin": (
        lambda d: flairhub_file(
            d / "hub_upernet_swin.safetensors", "flair-hub-rgb-swintiny-upernet", SWIN_TINY, 128, 6
        ),
        128,
    ),
    "flairhub-unet-convnextv2": (
        lambda d: flairhub_file(
            d / "hub_unet_cnx.safetensors",
            "flair-hub-ir-convnextv2base-unet",
            "convnextv2_tiny",
            128,
            7,
        ),
        128,
    ),
    "flairhub-unet-swin": (
        lambda d: flairhub_file(
            d / "hub_unet_swin.safetensors", "flair-hub-ir-swinbase-unet", SWIN_TINY, 128, 8
        ),
        128,
    ),
}
