"""U-T&T evaluated on a generated FLAIR #2 folder with its Sentinel-2 super-patches."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.evaluation import cli
from engine.models.utt.inputs import stack_series
from engine.progress import Reporter
from engine.sentinel2.prepare import PreparedSeries
from tests.engine.evaluation_fixtures import add_flair2_sentinel, make_flair_folder
from tests.fixtures.utt_checkpoint import make_utt_checkpoint

UTT_CARD = {
    "name": "test-utt",
    "architecture": "utt",
    "channels": ["R", "G", "B", "NIR", "E"],
    "normalization": {"divisor": 255.0},
    "logit_codes": [*range(1, 13), 19],
    "inactive_codes": [19],
    "sentinel2": {"use_metadata": False},
}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_stack_series_pads_with_zero_frames():
    a = PreparedSeries(np.ones((2, 10, 4, 4), np.float32), np.array([10.0, 20.0], np.float32))
    b = PreparedSeries(np.full((3, 10, 4, 4), 2, np.float32), np.array([1.0, 2.0, 3.0], np.float32))
    s2, dates = stack_series([a, None, b], 10, 4)
    assert s2.shape == (3, 3, 10, 4, 4) and dates.shape == (3, 3)
    assert (s2[0, 2] == 0).all() and dates[0].tolist() == [10.0, 20.0, 0.0]
    assert (s2[1] == 0).all() and (dates[1] == 0).all()
    assert (s2[2] == 2).all()


def test_utt_end_to_end_with_flair_sentinel2(tmp_path):
    root = tmp_path / "flair2"
    make_flair_folder(root, domains=("D022_2021", "D026_2020"), patches_per_domain=1, size_px=64)
    add_flair2_sentinel(root, cloudy=(1,))
    ckpt = make_utt_checkpoint(tmp_path / "utt.ckpt", metadata=False)
    card = tmp_path / "utt.card.json"
    card.write_text(json.dumps(UTT_CARD))
    out = tmp_path / "report"
    args = _parse(
        [
            "evaluate",
            "--data",
            str(root),
            "--model",
            str(ckpt),
            "--card",
            str(card),
            "--sentinel2",
            f"flair:{root}",
            "--report",
            str(out),
            "--device",
            "cpu",
            "--batch-size",
            "2",
            "--no-plots",
        ]
    )
    result = args.func(args, Reporter())
    assert result["stats"]["patches"] == 2 and result["stats"]["pixels"] == 2 * 64 * 64
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["context"]["sentinel2"] == f"flair:{root}"
    # the same Sentinel-2 figures as predict reports: every patch counted
    usage = result["stats"]["sentinel2"]
    assert usage["patches"] == 2 and 0 <= usage["patches_without_sentinel2"] <= 2
    assert doc["context"]["sentinel2_usage"] == usage
    # U-T&T without Sentinel-2 is refused with the fix in the message
    args = _parse(
        [
            "evaluate",
            "--data",
            str(root),
            "--model",
            str(ckpt),
            "--card",
            str(card),
            "--report",
            str(out),
            "--device",
            "cpu",
        ]
    )
    with pytest.raises(InvalidInput, match="--sentinel2 flair:PATH"):
        args.func(args, Reporter())
