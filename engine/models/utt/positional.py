"""Sinusoidal encoding of acquisition dates, as the L-TAE of U-TAE uses it.

Each date is a day offset (FLAIR-2: days from the reference date 15 May, positive before it). For
a block of `d` channels, channel `j` divides the offset by `period ** (2 * floor(j / 2) / d)` and
takes the sine on even `j`, the cosine on odd `j`; the block is then tiled `repeat` times, one copy
per attention head, so that every head's value chunk carries the same date code.
"""

from __future__ import annotations

import torch


def date_divisors(d: int, period: float = 1000.0) -> torch.Tensor:
    """The `d` divisors `period ** (2 * floor(j / 2) / d)`, float32 (as the official encoder)."""
    exponents = 2.0 * torch.div(torch.arange(d, dtype=torch.float32), 2, rounding_mode="floor") / d
    return torch.pow(torch.tensor(float(period), dtype=torch.float32), exponents)


def encode_dates(
    positions: torch.Tensor, d: int, period: float = 1000.0, repeat: int = 1
) -> torch.Tensor:
    """Sinusoidal code of day offsets.

    Args:
        positions: Day offsets, any shape `[...]`, float.
        d: Channels of one code block (FLAIR-2: d_model / n_head = 16).
        period: The period `T` of the encoding (1000 in L-TAE).
        repeat: How many times the block is tiled along the channels (the number of heads).

    Returns:
        Tensor `[..., d * repeat]`, same dtype as `positions`.
    """
    divisors = date_divisors(d, period).to(device=positions.device, dtype=positions.dtype)
    angles = positions.unsqueeze(-1) / divisors
    code = torch.empty_like(angles)
    code[..., 0::2] = torch.sin(angles[..., 0::2])
    code[..., 1::2] = torch.cos(angles[..., 1::2])
    return code.repeat(*([1] * positions.dim()), repeat)
