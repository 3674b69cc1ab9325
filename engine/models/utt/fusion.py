"""The pieces of U-T&T that join the Sentinel-2 branch to the aerial U-Net.

* `CroppedFusion` (`fm_utae_featmap_cropped`): the centre of U-TAE's last map, 1x1 convolution
  per U-Net level, bilinear resize to that level's size.
* `CollapsedFusion` (`fm_utae_featmap_collapsed`): U-TAE's last map averaged over space, one
  small MLP per U-Net level, broadcast over the level's size.
* `MetadataMLP` (`mtd_mlp`): the aerial-metadata vector to one value per row of the deepest
  U-Net map.
* `center_crop`: the crop torchvision's `CenterCrop` makes (the offset rounds half to even).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

CROP_PX = 10
"""Side of the centre crop of U-TAE's 40 x 40 map: 10 px x 10 m, about the 102.4 m aerial tile."""


def crop_offset(size: int, crop: int = CROP_PX) -> int:
    """First kept index of a centre crop, as torchvision computes it: `round((size - crop) / 2)`."""
    return int(round((size - crop) / 2.0))


def center_crop(x: torch.Tensor, crop: int = CROP_PX) -> torch.Tensor:
    """Centre crop of the last two axes to `crop x crop` (40 -> rows and columns 15..24)."""
    h, w = x.shape[-2:]
    if h < crop or w < crop:
        raise ValueError(f"cannot centre-crop a {h}x{w} map to {crop}x{crop}")
    top, left = crop_offset(h, crop), crop_offset(w, crop)
    return x[..., top : top + crop, left : left + crop]


class CroppedFusion(nn.Module):
    """Per U-Net level: 1x1 convolution of the cropped map, then bilinear resize."""

    def __init__(self, in_channels: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        self.conv_list = nn.ModuleList(
            nn.Conv2d(in_channels, c, kernel_size=1) for c in out_channels
        )

    def forward(self, crop: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
        """`[B, in, h, w]` -> one `[B, C_k, S_k, S_k]` per level (align_corners False)."""
        return [
            F.interpolate(conv(crop), size=(s, s), mode="bilinear", align_corners=False)
            for conv, s in zip(self.conv_list, sizes, strict=True)
        ]


def collapsed_hidden_widths(in_channels: int, out_channels: int) -> tuple[int, int]:
    """Hidden widths of a collapsed-fusion MLP: steps of `floor(|in - out| / 3)`, or `2 * in`."""
    step = abs(in_channels - out_channels) // 3
    if in_channels < out_channels:
        return in_channels + step, in_channels + 2 * step
    if in_channels > out_channels:
        return in_channels - step, in_channels - 2 * step
    return 2 * in_channels, 2 * in_channels


class CollapsedFusion(nn.Module):
    """Per U-Net level: an MLP (Linear, Dropout 0.3, ReLU, x3 without the last two) of a vector."""

    def __init__(self, in_channels: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        mlps = []
        for c in out_channels:
            h1, h2 = collapsed_hidden_widths(in_channels, c)
            mlps.append(
                nn.Sequential(
                    nn.Linear(in_channels, h1),
                    nn.Dropout(0.3),
                    nn.ReLU(),
                    nn.Linear(h1, h2),
                    nn.Dropout(0.3),
                    nn.ReLU(),
                    nn.Linear(h2, c),
                )
            )
        self.mlps = nn.ModuleList(mlps)

    def forward(self, vec: torch.Tensor) -> list[torch.Tensor]:
        """`[B, in]` -> one `[B, C_k, 1, 1]` per level, to be broadcast over the level's size."""
        return [mlp(vec)[:, :, None, None] for mlp in self.mlps]


class MetadataMLP(nn.Module):
    """Aerial metadata `[B, n_in]` -> `[B, n_out]` (Linear, Dropout 0.5, ReLU, ..., Linear)."""

    def __init__(self, n_in: int = 45, n_out: int = 16) -> None:
        super().__init__()
        self.enc_mlp = nn.Sequential(
            nn.Linear(n_in, 64),
            nn.Dropout(0.5),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.Dropout(0.5),
            nn.ReLU(),
            nn.Linear(32, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_mlp(x)
