"""Agreement and speed of reduced precision against fp32 (bf16 on CPU; bf16/fp16 on CUDA).

.venv/bin/python benchmarks/compare_precision.py [--device cpu] [--tile 1024] [--tiles 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.inference import Predictor
from engine.models.loader import load_model
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint


def timed(predictor: Predictor, images: np.ndarray) -> tuple[np.ndarray, float]:
    predictor.predict(images[:1])  # warm-up (kernel selection)
    t0 = time.perf_counter()
    codes = np.concatenate([predictor.predict(images[i : i + 1]).codes for i in range(len(images))])
    return codes, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--tiles", type=int, default=3)
    args = parser.parse_args()
    precisions = ["bf16"] if args.device == "cpu" else ["bf16", "fp16"]
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_unet_checkpoint(Path(tmp) / "m.pth", 5, 19, seed=31)
        ortho = make_orthophoto(Path(tmp) / "o.tif", args.tile, args.tile * args.tiles, 5, seed=32)
        import rasterio

        with rasterio.open(ortho) as ds:
            raw = ds.read()
        images = np.stack([raw[:, i * args.tile : (i + 1) * args.tile] for i in range(args.tiles)])
        loaded = load_model(str(ckpt))
        reference, t_ref = timed(Predictor(loaded, args.device, precision="fp32"), images)
        print(f"fp32: {args.tiles} tiles of {args.tile} px in {t_ref:.1f} s")
        for precision in precisions:
            codes, seconds = timed(Predictor(loaded, args.device, precision=precision), images)
            agree = 100 * float((codes == reference).mean())
            print(
                f"{precision}: {seconds:.1f} s ({t_ref / seconds:.2f}x fp32 speed), {agree:.2f} % of pixels equal to fp32"
            )


if __name__ == "__main__":
    main()
