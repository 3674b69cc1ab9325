"""Registry models on this machine: GFLOP per 512 px patch, speed, peak memory, bf16.

For the FLAIR-HUB models and the FLAIR-INC architectures beyond the ResNet-34 U-Net (whose
figures come from bench_predict.py). For each model (a generated checkpoint in its published
layout, random weights):

- GFLOP per 512 x 512 patch (torch's FLOP counter on one forward, multiply-adds x 2);
- the model alone on one tile of the card's size through the engine's Predictor: seconds,
  512-patch equivalents per second and km2/h of map at the card's tiling (core area per tile);
- bf16 autocast on the same tile: speed-up and % of pixels with the same class as fp32;
- with `--end-to-end`: `predict` on a generated raster in a fresh process, wall time and peak RSS
  (`/usr/bin/time -v`), the process start, model load and overviews included.

    .venv/bin/python benchmarks/bench_models.py [--models NAME,...] [--end-to-end 1024] [--no-bf16]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from engine.inference import Predictor  # noqa: E402
from engine.models.card import ModelCard  # noqa: E402
from engine.models.flairhub import build_network  # noqa: E402
from engine.models.loader import load_model  # noqa: E402
from engine.settings import DEFAULT_MARGIN_PX, DEFAULT_TILE_SIZE_PX  # noqa: E402
from tests.fixtures.flairhub_checkpoint import (  # noqa: E402
    make_flairhub_checkpoint,
    make_irc_orthophoto,
    registry_card,
)
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint  # noqa: E402

DEFAULT_MODELS = (
    "flair-hub-ir-convnextv2tiny-upernet",
    "flair-hub-rgb-swintiny-upernet",
    "flair-hub-ir-convnextv2base-upernet",
    "flair-hub-rgb-swinbase-upernet",
)
PATCH = 512
RES_M = 0.2


def is_flairhub(card: ModelCard) -> bool:
    return card.architecture.startswith("flairhub-")


def tiling(card: ModelCard, tile_px: int = 0) -> tuple[int, int]:
    """The tile and margin `predict` uses for the card by default (engine.planning's rule),
    or `tile_px` for a flexible-tile model."""
    if is_flairhub(card):
        tile = card.tile_size_px
    else:
        tile = tile_px or card.default_tile_px or DEFAULT_TILE_SIZE_PX
    margin = card.margin_px if card.margin_px is not None else DEFAULT_MARGIN_PX
    return tile, margin


def make_checkpoint(folder: Path, card: ModelCard) -> Path:
    """A checkpoint in the card's published layout (FLAIR-HUB safetensors or FLAIR-INC .pth)."""
    path = folder / card.source.filename
    if is_flairhub(card):
        return make_flairhub_checkpoint(path, card, seed=1)
    return make_unet_checkpoint(
        path,
        len(card.channels),
        19,
        "flair-inc",
        1,
        decoder=card.architecture,
        encoder=card.encoder,
    )


def gflop_per_patch(name: str, ckpt: Path) -> float:
    """GFLOP of one forward on a 512 px patch (a FLAIR-HUB Swin built for 512)."""
    from torch.utils.flop_counter import FlopCounterMode

    card = registry_card(name, tile_size_px=PATCH)
    if is_flairhub(card):
        network = build_network(card, card.architecture.removeprefix("flairhub-"), 19).eval()
    else:
        network = load_model(str(ckpt)).network
    x = torch.zeros(1, len(card.channels), PATCH, PATCH)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        network(x)
    return counter.get_total_flops() / 1e9


def model_alone(
    name: str, ckpt: Path, threads: int, reps: int, bf16: bool = True, tile_px: int = 0
) -> dict:
    """fp32 (and bf16) on one tile of the card's size: seconds, throughput, agreement."""
    card = registry_card(name)
    tile, margin = tiling(card, tile_px)
    images = (
        np.random.default_rng(0)
        .integers(0, 256, (1, len(card.channels), tile, tile))
        .astype(np.uint8)
    )
    out = {"tile_px": tile, "margin_px": margin}
    codes = {}
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        predictor = Predictor(load_model(str(ckpt)), "cpu", threads, precision)
        predictor.predict(images)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            codes[precision] = predictor.predict(images).codes
        out[f"{precision}_s_per_tile"] = (time.perf_counter() - t0) / reps
        del predictor
    seconds = out["fp32_s_per_tile"]
    core_km2 = ((tile - 2 * margin) * RES_M) ** 2 / 1e6
    out["patches_per_s"] = (tile / PATCH) ** 2 / seconds
    out["km2_per_h"] = core_km2 * 3600 / seconds
    if bf16:
        out["bf16_speedup"] = seconds / out["bf16_s_per_tile"]
        out["bf16_same_class_pct"] = float((codes["fp32"] == codes["bf16"]).mean() * 100)
    return out


def end_to_end(ckpt: Path, channels: tuple[str, ...], size: int, threads: int, tmp: Path) -> dict:
    """`predict` of a size x size raster in a fresh process: seconds, km2/h, peak RSS."""
    if channels[0] == "NIR":  # an IRC orthophoto, bands described NIR, R, G
        raster = make_irc_orthophoto(tmp / f"irc{size}.tif", size, seed=3)
    else:
        raster = make_orthophoto(tmp / f"rgb{size}.tif", size, size, 3, seed=3)
    out = tmp / f"map_{ckpt.stem}.tif"
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "engine",
        "predict",
        str(raster),
        str(out),
        "--model",
        str(ckpt),
        "--threads",
        str(threads),
        "--progress",
        "none",
        "--overwrite",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    km2 = (size * RES_M) ** 2 / 1e6
    return {
        "e2e_px": size,
        "e2e_s": seconds,
        "e2e_km2_per_h": km2 * 3600 / seconds,
        "peak_rss_mb": peak_kb / 1024,
    }


def add_common_arguments(parser: argparse.ArgumentParser, models: Sequence[str]) -> None:
    """The options every model benchmark takes: which models, threads, repetitions, the
    end-to-end raster and whether bf16 is timed (also read by bench_runtimes.py)."""
    parser.add_argument("--models", default=",".join(models))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--end-to-end", type=int, default=0, help="raster side in px; 0: skip")
    parser.add_argument("--no-bf16", action="store_true", help="time fp32 only")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, DEFAULT_MODELS)
    parser.add_argument("--tile", type=int, default=0, help="model alone: this tile (FLAIR-INC)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.models.split(","):
            card = registry_card(name)
            ckpt = make_checkpoint(tmp, card)
            row = {"model": name, "gflop_per_512": gflop_per_patch(name, ckpt)}
            row.update(
                model_alone(name, ckpt, args.threads, args.reps, not args.no_bf16, args.tile)
            )
            print(json.dumps(row), flush=True)
            if args.end_to_end:
                row.update(end_to_end(ckpt, card.channels, args.end_to_end, args.threads, tmp))
            ckpt.unlink()
            print(
                json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
                flush=True,
            )


if __name__ == "__main__":
    main()
