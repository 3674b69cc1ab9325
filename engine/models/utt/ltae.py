"""Lightweight Temporal Attention Encoder (L-TAE), per pixel, as U-TAE's temporal encoder.

Attribute names reproduce the official state-dict keys (`temporal_encoder.inconv`,
`.attention_heads.Q`, `.attention_heads.fc1_k`, `.in_norm`, `.mlp.0/.1`, `.out_norm`).

One deliberate difference from the official code: with padded dates in a batch, the input
GroupNorm's statistics are taken over the sample's real dates only. The official norm also
averages over the all-zero padded frames, so a padded sample's output depended on how many
dates its batch-mates had. Without padding (official inference, batch size 1) the plain
GroupNorm runs, unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.models.utt.positional import encode_dates

PAD_SCORE = -1000.0
"""Attention score given to padded dates before the softmax (the official fill value)."""


class MasterQueryAttention(nn.Module):
    """Multi-head attention with one learned query per head (no query projection).

    Keys are a linear projection of the input; values are the input itself, split into
    `n_head` contiguous chunks, head `h` attending over chunk `h`.
    """

    def __init__(self, n_head: int, d_k: int, d_in: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_k = d_k
        self.d_in = d_in
        self.Q = nn.Parameter(torch.empty(n_head, d_k))
        nn.init.normal_(self.Q, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.fc1_k = nn.Linear(d_in, n_head * d_k)
        nn.init.normal_(self.fc1_k.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.dropout = nn.Dropout(0.1)

    def forward(
        self, v: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend over the time axis.

        Args:
            v: Sequences `[N, T, d_in]`.
            pad_mask: `[N, T]`, True where the date is padding, or None.

        Returns:
            Output `[N, d_in]` (heads concatenated in order) and attention `[n_head, N, T]`.
        """
        n, t, _ = v.shape
        keys = self.fc1_k(v).view(n, t, self.n_head, self.d_k)
        scores = torch.einsum("hd,nthd->hnt", self.Q, keys) / math.sqrt(self.d_k)
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask.unsqueeze(0), PAD_SCORE)
        attn = self.dropout(torch.softmax(scores, dim=-1))
        values = v.view(n, t, self.n_head, self.d_in // self.n_head)
        out = torch.einsum("hnt,nthc->nhc", attn, values).reshape(n, self.d_in)
        return out, attn


def masked_group_norm(x: torch.Tensor, valid: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """GroupNorm over channels x real dates of each sequence.

    Args:
        x: `[N, T, C]` sequences.
        valid: `[N, T]` bool, True for real (not padded) dates.
        norm: The GroupNorm whose groups, eps and affine parameters are used.

    Returns:
        `[N, T, C]`; values at padded dates are normalised too but meaningless.
    """
    n, t, c = x.shape
    g = norm.num_groups
    xg = x.view(n, t, g, c // g)
    m = valid.to(x.dtype).view(n, t, 1, 1)
    count = (m.sum(dim=1) * (c // g)).clamp_min(1.0).view(n, 1)
    mean = (xg * m).sum(dim=(1, 3)) / count
    centred = xg - mean.view(n, 1, g, 1)
    var = ((centred * m) ** 2).sum(dim=(1, 3)) / count
    y = (centred / torch.sqrt(var.view(n, 1, g, 1) + norm.eps)).view(n, t, c)
    if norm.affine:
        y = y * norm.weight + norm.bias
    return y


class LTAE2d(nn.Module):
    """L-TAE applied independently at every pixel of a feature-map time series.

    Args:
        in_channels: Channels of the input maps (128).
        n_head: Attention heads (16).
        d_k: Key and query size (4).
        d_model: Width after the 1x1 input convolution (256); also the MLP input.
        dropout: Dropout after the MLP.
        period: Period of the date encoding (1000).
    """

    def __init__(
        self,
        in_channels: int = 128,
        n_head: int = 16,
        d_k: int = 4,
        d_model: int = 256,
        dropout: float = 0.2,
        period: float = 1000.0,
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.d_model = d_model
        self.period = period
        self.inconv = nn.Conv1d(in_channels, d_model, 1)
        self.attention_heads = MasterQueryAttention(n_head=n_head, d_k=d_k, d_in=d_model)
        self.in_norm = nn.GroupNorm(num_groups=n_head, num_channels=in_channels)
        self.out_norm = nn.GroupNorm(num_groups=n_head, num_channels=in_channels)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, in_channels), nn.BatchNorm1d(in_channels), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, dates: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Collapse the time axis.

        Args:
            x: `[B, T, C, H, W]` feature maps.
            dates: `[B, T]` day offsets.
            pad_mask: `[B, T]` bool, True at padded dates, or None.

        Returns:
            Maps `[B, C, H, W]` and attention `[n_head, B, T, H, W]`.
        """
        b, t, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        pix_mask = None
        if pad_mask is not None and bool(pad_mask.any()):
            pix_mask = pad_mask[:, None, None, :].expand(b, h, w, t).reshape(b * h * w, t)
            seq = masked_group_norm(seq, ~pix_mask, self.in_norm)
        else:
            seq = self.in_norm(seq.permute(0, 2, 1)).permute(0, 2, 1)
        seq = self.inconv(seq.permute(0, 2, 1)).permute(0, 2, 1)
        code = encode_dates(dates, self.d_model // self.n_head, self.period, self.n_head)
        seq = seq + code[:, None, None].expand(b, h, w, t, self.d_model).reshape(
            b * h * w, t, self.d_model
        )
        out, attn = self.attention_heads(seq, pad_mask=pix_mask)
        out = self.out_norm(self.dropout(self.mlp(out)))
        out = out.view(b, h, w, -1).permute(0, 3, 1, 2)
        attn = attn.view(self.n_head, b, h, w, t).permute(0, 1, 4, 2, 3)
        return out, attn
