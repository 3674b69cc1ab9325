"""Runtimes side by side for registry models: torch fp32, OpenVINO fp32 and OpenVINO bf16.

For each model (a generated checkpoint in its published layout, random weights, the card's
default tiling unless `--tile` says otherwise), through the engine's own `Predictor` and runtime
layer (engine.runtime), in this process:

- seconds per tile and km2/h of map (the tile's core) for torch fp32, OpenVINO fp32 and, where
  the CPU has AMX or AVX512_BF16, OpenVINO bf16; "network" is the forward alone, "predict" adds
  normalisation, argmax and the code lookup (the per-tile work outside the network), and
  the network's share of `predict` is its time inside those same calls;
- agreement with torch fp32: % of pixels with the same class, largest logit difference over the
  logit scale;
- conversion time (trace, convert, check, into a fresh cache) and load time from the cache
  (hash of the checkpoint, read and compile of the IR);
- with `--end-to-end SIZE`: `engine predict` of a SIZE x SIZE raster in a fresh process for each
  runtime (the cache already filled: a run that converted is run again, timed the second
  time), wall seconds, km2/h and peak RSS (`/usr/bin/time -v`), and the peak RSS of a first
  OpenVINO run that converts (`--cold`).

    .venv/bin/python benchmarks/bench_runtimes.py [--models NAME,...] [--tile PX] [--reps 2]
        [--threads 2] [--end-to-end 2048] [--cold] [--schemes 512/128] [--openvino-only]

The end-to-end runs use this script's Python: run it from another engine environment (one
with the CPU build of torch, as the plugin's installer installs by default) to measure that.
`--schemes T/M,...` adds end-to-end torch runs at other tilings (IGN's flair-detect: 512/128).
Random weights exaggerate near-ties, so the agreement of reduced precisions is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_models import (  # noqa: E402
    add_common_arguments,
    make_checkpoint,
    tiling,
)
from engine.inference import Predictor  # noqa: E402
from engine.models.loader import load_model  # noqa: E402
from engine.progress import Reporter  # noqa: E402
from engine.runtime.cpu_features import read_cpu_features  # noqa: E402
from tests.fixtures.flairhub_checkpoint import make_irc_orthophoto, registry_card  # noqa: E402
from tests.fixtures.generate import make_orthophoto  # noqa: E402

DEFAULT_MODELS = (
    "flair-inc-rgbie-15cl",
    "flair-inc-rgb-15cl-resnet34-fpn",
    "flair-inc-rgb-15cl-resnet34-deeplabv3",
    "flair-inc-rgb-15cl-mitb5-unet",
    "flair-hub-ir-convnextv2tiny-upernet",
    "flair-hub-rgb-swintiny-upernet",
    "flair-hub-ir-convnextv2base-unet",
    "flair-hub-ir-swinbase-unet",
)
RES_M = 0.2


class Quiet(Reporter):
    """Keeps the log lines instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def log(self, message: str, level: str = "INFO") -> None:
        self.lines.append(message)


def timed(call, reps: int) -> tuple[float, object]:
    """Mean seconds of `call()` over `reps` runs after one warm-up, and its last result."""
    result = call()
    started = time.perf_counter()
    for _ in range(reps):
        result = call()
    if not reps:  # the warm-up is the only run
        return time.perf_counter() - started, result
    return (time.perf_counter() - started) / reps, result


def one_runtime(
    ckpt: Path, backend: str, precision: str, images: np.ndarray, threads: int, reps: int
) -> dict:
    """A fresh Predictor for `backend`: its preparation, network and predict seconds, logits."""
    quiet = Quiet()
    loaded = load_model(str(ckpt), say=lambda *a: None)
    predictor = Predictor(loaded, "cpu", threads, precision, backend=backend, reporter=quiet)
    started = time.perf_counter()
    choice = predictor.runtime_for(images.shape[-2:])
    prepare_s = time.perf_counter() - started
    if choice.runtime != backend:
        raise SystemExit(f"{ckpt.name}: {backend} {precision} did not run: {choice.reason}")
    network_s, logits = timed(lambda: predictor.logits(images), reps)
    in_network = time_network_calls(predictor, tuple(images.shape[-2:]))
    predict_s, batch = timed(lambda: predictor.predict(images), reps)
    out = {
        "prepare_s": prepare_s,
        "network_s": network_s,
        "predict_s": predict_s,
        # the network's seconds inside the same predict calls: timing the two apart on shared
        # cores gave shares from 48 to 110 %
        "network_share_pct": 100 * sum(in_network[-reps:]) / (predict_s * max(reps, 1)),
        "logits": logits,
        "codes": batch.codes,
    }
    if choice.check:
        out["conversion_s"] = choice.check.get("conversion_s")
        out["converted"] = any(line.startswith("converting") for line in quiet.lines)

    return out


def time_network_calls(predictor: Predictor, shape: tuple[int, int]) -> list[float]:
    """From now on, the seconds of each call of the predictor's network (OpenVINO's compiled
    one, or torch's forward), in a list that grows as `predict` runs; `timed`'s warm-up call
    is the first."""
    spent: list[float] = []

    def timing(call):
        def timed_call(*args):
            started = time.perf_counter()
            result = call(*args)
            spent.append(time.perf_counter() - started)
            return result

        return timed_call

    runtime = predictor._runtimes[shape]
    if runtime.forward is not None:
        predictor._runtimes[shape] = replace(runtime, forward=timing(runtime.forward))
    else:
        architecture = predictor.architecture
        predictor.architecture = replace(architecture, forward=timing(architecture.forward))
    return spent


def in_process(name: str, ckpt: Path, tile: int, margin: int, args: argparse.Namespace) -> dict:
    """torch fp32, OpenVINO fp32 (converted, then loaded from the cache) and bf16 on one tile."""
    card = registry_card(name)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, len(card.channels), tile, tile)).astype(np.uint8)
    core_km2 = ((tile - 2 * margin) * RES_M) ** 2 / 1e6
    row: dict = {"model": name, "tile_px": tile, "margin_px": margin}
    runs = {"torch_fp32": ("torch", "fp32"), "openvino_fp32": ("openvino", "fp32")}
    if read_cpu_features().native_bf16 and not args.no_bf16:
        runs["openvino_bf16"] = ("openvino", "bf16")
    reference = None
    for label, (backend, precision) in runs.items():
        result = one_runtime(ckpt, backend, precision, images, args.threads, args.reps)
        row[f"{label}_s_per_tile"] = result["predict_s"]
        row[f"{label}_network_s"] = result["network_s"]
        row[f"{label}_network_share_pct"] = result["network_share_pct"]
        row[f"{label}_km2_per_h"] = core_km2 * 3600 / result["predict_s"]
        if reference is None:
            reference = result
            continue
        scale = float(np.abs(reference["logits"]).max())
        row[f"{label}_same_class_pct"] = float((result["codes"] == reference["codes"]).mean() * 100)
        row[f"{label}_max_diff_of_scale"] = float(
            np.abs(result["logits"] - reference["logits"]).max() / scale
        )
        row[f"{label}_speedup"] = reference["predict_s"] / result["predict_s"]
        row[f"{label}_conversion_s"] = result["conversion_s"]
        row[f"{label}_first_prepare_s"] = result["prepare_s"]  # conversion, check, compile
        cached = one_runtime(ckpt, backend, precision, images, args.threads, 0)
        assert not cached["converted"], "the second run converted again"
        row[f"{label}_cache_load_s"] = cached["prepare_s"]  # hash, read, compile
    return row


def end_to_end(
    ckpt: Path, channels: tuple[str, ...], size: int, threads: int, tmp: Path, options: list[str]
) -> dict:
    """`engine predict` of a size x size raster in a fresh process: seconds, km2/h, peak RSS."""
    raster = tmp / f"raster{size}_{channels[0]}.tif"
    if not raster.exists():
        if channels[0] == "NIR":
            make_irc_orthophoto(raster, size, seed=3)
        else:
            make_orthophoto(raster, size, size, len(channels), seed=3)
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "engine", "predict", str(raster)]
    command += [str(tmp / "map.tif"), "--model", str(ckpt), "--threads", str(threads)]
    command += ["--device", "cpu", "--progress", "json", "--overwrite", *options]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events: list[tuple[float, dict]] = []  # each event with the time it came
    for line in process.stdout:
        if line.startswith("{"):
            events.append((time.perf_counter(), json.loads(line)))
    stderr = process.stderr.read()
    seconds = time.perf_counter() - started
    if process.wait():
        raise SystemExit(f"predict failed: {stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    last = events[-1][1]
    runtime = (last.get("run") or {}).get("runtime") or {}
    inference = [(t, e) for t, e in events if e.get("phase") == "inference"]
    tiles = inference[0][1]["total"] if inference else 0
    phase_s = inference[-1][0] - inference[0][0] if inference else 0.0
    return {
        "converted": any(e.get("phase") == "conversion" for _, e in events),
        "s": seconds,
        "km2_per_h": (size * RES_M) ** 2 / 1e6 * 3600 / seconds,
        "peak_rss_mb": peak_kb / 1024,
        "runtime": f"{runtime.get('name')} {runtime.get('precision')}",
        "tiles": tiles,
        "inference_phase_s_per_tile": phase_s / tiles if tiles else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, DEFAULT_MODELS)
    parser.add_argument("--tile", type=int, default=0, help="tile in px (default: the card's)")
    parser.add_argument("--cold", action="store_true", help="also a converting OpenVINO run")
    parser.add_argument("--schemes", default="", help="torch end to end at T/M,... tilings")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument(
        "--openvino-only",
        action="store_true",
        help="end to end: the OpenVINO runs only (with --cold: the converting run's peak RSS "
        "beside a cached run's, without the minutes of a torch run)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = read_cpu_features()
    print(json.dumps({"cpu": cpu.model, "native_bf16": cpu.native_bf16}), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["FLAIR_CACHE_DIR"] = str(tmp / "cache")
        for name in args.models.split(","):
            card = registry_card(name)
            ckpt = make_checkpoint(tmp, card)
            tile, margin = tiling(card, args.tile)
            if card.architecture.startswith("flairhub-") and args.tile:
                tile = args.tile
            row = {"model": name}
            if not args.skip_in_process:
                row = in_process(name, ckpt, tile, margin, args)
                print(json.dumps(_rounded(row)), flush=True)
            if args.end_to_end:
                sizes = ["--tile-size", str(tile), "--margin", str(margin)]
                runs = {} if args.openvino_only else {"e2e_torch_fp32": ["--backend", "torch"]}
                runs["e2e_openvino_fp32"] = ["--backend", "openvino"]
                runs = {name: [*options, *sizes] for name, options in runs.items()}
                if read_cpu_features().native_bf16 and not args.no_bf16:
                    runs["e2e_openvino_bf16"] = ["--backend", "openvino", "--precision", "bf16"]
                    runs["e2e_openvino_bf16"] += sizes
                if args.cold:  # a fresh cache: this run converts
                    cold = ["--backend", "openvino", *sizes]
                    os.environ["FLAIR_CACHE_DIR"] = str(tmp / f"cold-{name}")
                    row["e2e_openvino_fp32_converting"] = end_to_end(
                        ckpt, card.channels, args.end_to_end, args.threads, tmp, cold
                    )
                    os.environ["FLAIR_CACHE_DIR"] = str(tmp / "cache")
                schemes = [] if args.openvino_only else args.schemes.split(",")
                for scheme in filter(None, schemes):
                    t, m = scheme.split("/")
                    runs[f"e2e_torch_fp32_{t}_{m}"] = ["--backend", "torch", "--tile-size", t]
                    runs[f"e2e_torch_fp32_{t}_{m}"] += ["--margin", m]
                for label, options in runs.items():
                    result = end_to_end(
                        ckpt, card.channels, args.end_to_end, args.threads, tmp, options
                    )
                    if result["converted"]:  # the cache was not filled (--skip-in-process)
                        result = end_to_end(
                            ckpt, card.channels, args.end_to_end, args.threads, tmp, options
                        )
                    row[label] = result
                print(json.dumps(_rounded(row)), flush=True)
            ckpt.unlink()


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    main()
