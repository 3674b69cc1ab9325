"""U-TAE (U-Net with temporal attention encoder) over a Sentinel-2 super-patch time series.

Built with FLAIR-2's U-T&T hyper-parameters by default (input 10 bands, encoder and decoder
widths 64, 64, 128, 128, strided 4/2/1 convolutions, GroupNorm(4) in the encoder, BatchNorm in
the decoder, reflect padding, L-TAE with 16 heads, `att_group` skip aggregation). Attribute names
reproduce the official state-dict keys (`in_conv.conv.conv.0`, `down_blocks.i.down.conv.0`,
`up_blocks.i.skip_conv.0`, `temporal_encoder.*`, `out_conv.conv.conv.*`).

The network returns the decoder's feature maps only. The official U-TAE also runs its class head
(`out_conv`) and U-T&T throws that output away; its weights are kept here so checkpoints load
strict, but it is never run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.utt.ltae import LTAE2d


def _norm_layer(norm: str, channels: int, n_groups: int) -> nn.Module:
    if norm == "group":
        return nn.GroupNorm(num_groups=n_groups, num_channels=channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unsupported norm {norm!r}: use 'group' or 'batch'")


class ConvLayer(nn.Module):
    """Convolution, norm, ReLU, for each consecutive pair of `widths`, in one `conv` Sequential."""

    def __init__(
        self,
        widths: Sequence[int],
        norm: str = "batch",
        kernel: int = 3,
        stride: int = 1,
        padding: int = 1,
        n_groups: int = 4,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(
                nn.Conv2d(
                    c_in, c_out, kernel, stride=stride, padding=padding, padding_mode=padding_mode
                )
            )
            layers.append(_norm_layer(norm, c_out, n_groups))
            layers.append(nn.ReLU())
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ConvBlock(nn.Module):
    """A ConvLayer wrapped once more (the official `ConvBlock`, hence keys `*.conv.conv.*`)."""

    def __init__(self, widths: Sequence[int], norm: str = "batch", padding_mode: str = "reflect"):
        super().__init__()
        self.conv = ConvLayer(widths, norm=norm, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DownConvBlock(nn.Module):
    """Strided convolution, then a convolution and a residual convolution."""

    def __init__(
        self, d_in: int, d_out: int, k: int, s: int, p: int, norm: str, padding_mode: str
    ) -> None:
        super().__init__()
        self.down = ConvLayer([d_in, d_in], norm, k, s, p, padding_mode=padding_mode)
        self.conv1 = ConvLayer([d_in, d_out], norm, padding_mode=padding_mode)
        self.conv2 = ConvLayer([d_out, d_out], norm, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.down(x))
        return y + self.conv2(y)


class UpConvBlock(nn.Module):
    """Transposed convolution, concatenation with the processed skip, two convolutions."""

    def __init__(
        self, d_in: int, d_out: int, d_skip: int, k: int, s: int, p: int, padding_mode: str
    ) -> None:
        super().__init__()
        self.skip_conv = nn.Sequential(
            nn.Conv2d(d_skip, d_skip, kernel_size=1), nn.BatchNorm2d(d_skip), nn.ReLU()
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(d_in, d_out, kernel_size=k, stride=s, padding=p),
            nn.BatchNorm2d(d_out),
            nn.ReLU(),
        )
        self.conv1 = ConvLayer([d_out + d_skip, d_out], "batch", padding_mode=padding_mode)
        self.conv2 = ConvLayer([d_out, d_out], "batch", padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.up(x), self.skip_conv(skip)], dim=1)
        y = self.conv1(y)
        return y + self.conv2(y)


def padded_frames(x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
    """`[B, T]` bool: True where a frame of `[B, T, C, H, W]` equals `pad_value` everywhere."""
    return (x == pad_value).flatten(2).all(dim=-1)


def per_frame(block: nn.Module, x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
    """Apply a 2-D block to every frame of `[B, T, C, H, W]`; padded frames give `pad_value`.

    As the official `smart_forward`: which frames are padding is decided from this block's own
    input, and only the other frames go through the block.
    """
    b, t = x.shape[:2]
    frames = x.reshape(b * t, *x.shape[2:])
    pad = padded_frames(x, pad_value).reshape(b * t)
    if not bool(pad.any()) or bool(pad.all()):
        out = block(frames)
        if bool(pad.all()):
            out = torch.full_like(out, pad_value)
    else:
        kept = block(frames[~pad])
        out = kept.new_full((b * t, *kept.shape[1:]), pad_value)
        out[~pad] = kept
    return out.reshape(b, t, *out.shape[1:])


def aggregate_att_group(x: torch.Tensor, attn: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Attention-weighted temporal sum of a skip feature map, one channel group per head.

    Args:
        x: Skip maps `[B, T, C, H, W]`; C must be divisible by the number of heads.
        attn: L-TAE attention `[n_head, B, T, h, w]`, resampled bilinearly (align_corners
            False) to `H x W` when larger, average-pooled when smaller.
        valid: `[B, T]` bool, False at padded dates (their weight is set to 0).

    Returns:
        `[B, C, H, W]`: channel group `g` (contiguous) is weighted by head `g`'s attention.
    """
    n_head, b, t, h, w = attn.shape
    size = x.shape[-2:]
    flat = attn.reshape(n_head * b, t, h, w)
    if size[0] > h:
        flat = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    else:
        flat = F.avg_pool2d(flat, kernel_size=w // size[0])
    weights = flat.view(n_head, b, t, 1, *size) * valid.to(x.dtype)[None, :, :, None, None, None]
    c = x.shape[2]
    groups = x.view(b, t, n_head, c // n_head, *size).permute(2, 0, 1, 3, 4, 5)
    out = (weights * groups).sum(dim=2)
    return out.permute(1, 0, 2, 3, 4).reshape(b, c, *size)


class UTAE(nn.Module):
    """U-TAE returning its decoder feature maps.

    Args:
        input_dim: Sentinel-2 bands (10).
        encoder_widths: Encoder widths, top to bottom.
        decoder_widths: Decoder widths, top to bottom (last equals the encoder's last).
        out_conv: Widths of the (unused) class head.
        str_conv_k: Kernel of the strided convolutions.
        str_conv_s: Stride of the strided convolutions.
        str_conv_p: Padding of the strided convolutions.
        encoder_norm: "group" or "batch" for the encoder.
        n_head: L-TAE heads.
        d_model: L-TAE width.
        d_k: L-TAE key size.
        pad_value: Value of padded frames.
        padding_mode: Spatial padding of the 3x3 convolutions.
    """

    def __init__(
        self,
        input_dim: int = 10,
        encoder_widths: Sequence[int] = (64, 64, 128, 128),
        decoder_widths: Sequence[int] = (64, 64, 128, 128),
        out_conv: Sequence[int] = (32, 13),
        str_conv_k: int = 4,
        str_conv_s: int = 2,
        str_conv_p: int = 1,
        encoder_norm: str = "group",
        n_head: int = 16,
        d_model: int = 256,
        d_k: int = 4,
        pad_value: float = 0.0,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        enc, dec = list(encoder_widths), list(decoder_widths)
        n = len(enc)
        self.encoder_widths = enc
        self.pad_value = pad_value
        self.in_conv = ConvBlock([input_dim, enc[0], enc[0]], encoder_norm, padding_mode)
        self.down_blocks = nn.ModuleList(
            DownConvBlock(
                enc[i], enc[i + 1], str_conv_k, str_conv_s, str_conv_p, encoder_norm, padding_mode
            )
            for i in range(n - 1)
        )
        self.up_blocks = nn.ModuleList(
            UpConvBlock(
                dec[i], dec[i - 1], enc[i - 1], str_conv_k, str_conv_s, str_conv_p, padding_mode
            )
            for i in range(n - 1, 0, -1)
        )
        self.temporal_encoder = LTAE2d(in_channels=enc[-1], n_head=n_head, d_k=d_k, d_model=d_model)
        self.out_conv = ConvBlock([dec[0], *out_conv], "batch", padding_mode)

    def forward(self, x: torch.Tensor, dates: torch.Tensor) -> list[torch.Tensor]:
        """Encode a time series.

        Args:
            x: `[B, T, C, H, W]` frames; a frame equal to `pad_value` everywhere is padding.
            dates: `[B, T]` day offsets.

        Returns:
            Decoder maps, coarsest first: for FLAIR-2, 128@5, 128@10, 64@20, 64@40.
        """
        pad = padded_frames(x, self.pad_value)
        features = [per_frame(self.in_conv, x, self.pad_value)]
        for block in self.down_blocks:
            features.append(per_frame(block, features[-1], self.pad_value))
        out, attn = self.temporal_encoder(features[-1], dates, pad_mask=pad)
        maps = [out]
        for i, block in enumerate(self.up_blocks):
            skip = aggregate_att_group(features[-(i + 2)], attn, ~pad)
            out = block(out, skip)
            maps.append(out)
        return maps
