"""Compare tiling schemes with whole-image inference: agreement and CPU time.

Whole-image inference (the raster in one forward pass, no seams) is the reference; each scheme
is run through the engine's own pipeline. Prints agreement (% of pixels equal to the
reference) and seconds, plus the speed-up over IGN's 512/128 scheme.

    .venv/bin/python benchmarks/compare_tilings.py --size 2048 --threads 2
    .venv/bin/python benchmarks/compare_tilings.py --flairhub flair-hub-ir-convnextv2tiny-upernet

With `--flairhub NAME` the network is a generated checkpoint in the layout of that registry
model (3 bands); FLAIR-HUB networks run on their card's tile size only, so each scheme gets a
card with its tile and margin, and the whole image a card of the raster's size (Swin is built
for it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.cli import main as cli
from engine.inference import Predictor
from engine.models.loader import load_model
from tests.fixtures.flairhub_checkpoint import (
    make_flairhub_checkpoint,
    make_irc_orthophoto,
    registry_card,
)
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint

SCHEMES = [(512, 128), (512, 64), (768, 128), (1024, 64), (1024, 128), (1024, 192), (1536, 128)]


def _card_args(card, tmp: Path, tile: int, margin: int) -> list[str]:
    """`--card` for a FLAIR-HUB card at this tile and margin (nothing for U-Nets)."""
    if card is None:
        return []
    path = tmp / f"card_{tile}_{margin}.json"
    fields = replace(card, name=f"{card.name}-{tile}", tile_size_px=tile, margin_px=margin)
    path.write_text(json.dumps(fields.to_dict()))
    return ["--card", str(path)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=2048, help="raster side in px")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1, help="rasters/checkpoints to average over")
    parser.add_argument(
        "--init",
        choices=("plain", "varied-bn"),
        default="plain",
        help="random checkpoint: smp's initial BatchNorm statistics, or varied ones",
    )
    parser.add_argument("--flairhub", help="registry name of a FLAIR-HUB model to imitate")
    parser.add_argument(
        "--schemes",
        default=",".join(f"{t}/{m}" for t, m in SCHEMES),
        help="tile/margin pairs to compare, e.g. 512/128,1024/128",
    )
    parser.add_argument(
        "--border",
        type=int,
        default=128,
        help="px excluded at the raster edge "
        "for the interior figure (the outside is padded differently)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schemes = [tuple(int(v) for v in s.split("/")) for s in args.schemes.split(",")]
    if (512, 128) not in schemes:
        schemes.insert(0, (512, 128))  # the reference scheme of the speed-up column
    rows = {s: [] for s in schemes}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seed in range(args.seeds):
            if args.flairhub:
                card = registry_card(args.flairhub)
                ckpt = make_flairhub_checkpoint(tmp / f"m{seed}.safetensors", card, 100 + seed)
                bands = 3
            else:
                ckpt = make_unet_checkpoint(
                    tmp / f"m{seed}.pth",
                    5,
                    19,
                    seed=100 + seed,
                    realistic_bn=args.init == "varied-bn",
                )
                bands, card = 5, None

            def card_file(tile: int, margin: int, card=card) -> list[str]:
                return _card_args(card, tmp, tile, margin)

            if card is not None and card.channels[0] == "NIR":  # bands described NIR, R, G
                ortho = make_irc_orthophoto(tmp / f"o{seed}.tif", args.size, seed=200 + seed)
            else:
                ortho = make_orthophoto(
                    tmp / f"o{seed}.tif", args.size, args.size, bands, seed=200 + seed
                )
            with rasterio.open(ortho) as ds:
                raw = ds.read()
            whole_card = card_file(args.size, 0)
            card_path = Path(whole_card[1]) if whole_card else None
            predictor = Predictor(load_model(str(ckpt), card_path=card_path), "cpu", args.threads)
            t0 = time.perf_counter()
            whole = predictor.predict(raw[None]).codes[0]
            t_whole = time.perf_counter() - t0
            del predictor
            print(f"seed {seed}: whole image {args.size} px in one pass: {t_whole:.1f} s")
            for tile, margin in schemes:
                out = tmp / f"{seed}_{tile}_{margin}.tif"
                t0 = time.perf_counter()
                code = cli(
                    [
                        "predict",
                        str(ortho),
                        str(out),
                        "--model",
                        str(ckpt),
                        *card_file(tile, margin),
                        "--tile-size",
                        str(tile),
                        "--margin",
                        str(margin),
                        "--threads",
                        str(args.threads),
                        "--progress",
                        "none",
                    ]
                )
                seconds = time.perf_counter() - t0
                assert code == 0
                with rasterio.open(out) as ds:
                    same = ds.read(1) == whole
                b = args.border
                rows[(tile, margin)].append(
                    (float(same.mean()), float(same[b:-b, b:-b].mean()), seconds)
                )
                print(
                    f"  {tile}/{margin}: {int((~same).sum())} pixels differ, "
                    f"{int((~same[b:-b, b:-b]).sum())} in the interior, {seconds:.1f} s"
                )
    ign = np.mean([s for *_, s in rows[(512, 128)]])
    print(f"\ncheckpoint init: {args.init}; agreement with whole-image inference, % of pixels")
    print(f"{'tile/margin':>12} {'all':>7} {'interior':>9} {'seconds':>8} {'speed vs 512/128':>17}")
    for (tile, margin), values in rows.items():
        agree = 100 * np.mean([a for a, _, _ in values])
        inner = 100 * np.mean([i for _, i, _ in values])
        seconds = np.mean([s for *_, s in values])
        print(
            f"{tile:>7}/{margin:<4} {agree:7.2f} {inner:9.2f} {seconds:8.1f} {ign / seconds:16.2f}x"
        )


if __name__ == "__main__":
    main()
