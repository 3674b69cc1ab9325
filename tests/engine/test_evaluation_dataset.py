"""FLAIR-format folders: discovery, and a generated checkpoint evaluated end to end."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import rasterio

from engine.errors import InputNotFound, InvalidInput
from engine.evaluation import cli
from engine.evaluation.datasets import COSIA_TO_FLAIR, discover_patches, labels_to_codes
from engine.evaluation.plots import CONFUSION_PNG_SIZE_PX, IOU_PNG_SIZE_PX
from engine.progress import Reporter
from tests.engine.evaluation_fixtures import (
    DOMAINS,
    blob_codes,
    make_flair_folder,
    make_hub_folder,
    write_codes,
)
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint


@pytest.fixture(scope="module")
def flair_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flair")
    make_flair_folder(root, patches_per_domain=2, size_px=64)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_unet_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "unet_weights.pth", channels=5, logits=19
    )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_discover_flair1_layout(flair_folder):
    patches = discover_patches(flair_folder)
    assert len(patches) == 6
    assert [p.domain for p in patches] == [d for d in DOMAINS for _ in range(2)]
    assert patches[0].zone == "Z1_UN" and patches[0].patch_id == "IMG_000001"
    assert patches[0].label.name == "MSK_000001.tif" and patches[0].label_encoding == "flair"
    assert patches[0].band_indexes(("R", "G", "B", "NIR", "E")) == [1, 2, 3, 4, 5]
    assert patches[0].band_indexes(("R", "G", "B")) == [1, 2, 3]
    kept = discover_patches(flair_folder, domains=["D026", "D064_2021"])
    assert {p.domain for p in kept} == {"D026_2020", "D064_2021"}
    assert len(discover_patches(flair_folder, limit=3)) == 3
    with pytest.raises(InvalidInput, match="domains found: D022_2021, D026_2020, D064_2021"):
        discover_patches(flair_folder, domains=["D099"])


def test_discover_separate_label_root(tmp_path):
    make_flair_folder(tmp_path, domains=("D022_2021",), separate_labels=True)
    patches = discover_patches(tmp_path)
    assert len(patches) == 2
    assert "labels" in patches[0].label.parts and patches[0].domain == "D022_2021"


def test_discover_flair_hub_layout_and_cosia_labels(tmp_path):
    label_paths = make_hub_folder(tmp_path)
    patches = discover_patches(tmp_path)
    assert len(patches) == 2
    p = patches[0]
    assert (p.domain, p.zone, p.label_encoding) == ("D004-2021", "AB-S1-01", "cosia")
    assert p.channels == ("R", "G", "B", "NIR")
    with pytest.raises(InvalidInput, match="missing \\['E'\\]"):
        p.band_indexes(("R", "G", "B", "NIR", "E"))
    with rasterio.open(label_paths[0]) as src:
        raw = src.read(1)
    codes = labels_to_codes(raw, "cosia")
    assert codes[raw == 0].tolist() == [1] * int((raw == 0).sum())  # building
    assert set(np.unique(codes)) <= set(range(1, 20))
    assert sorted(COSIA_TO_FLAIR) == list(range(1, 20))


def test_discover_flat_layout(tmp_path):
    (tmp_path / "aerial").mkdir()
    (tmp_path / "labels").mkdir()
    for n, domain in enumerate(("D022_2021", "D026_2020")):
        make_orthophoto(tmp_path / "aerial" / f"{domain}_Z1_IMG_{n}.tif", 32, 32, seed=n)
        write_codes(
            tmp_path / "labels" / f"{domain}_Z1_MSK_{n}.tif", blob_codes(32, 32, n), nodata=None
        )
    make_orthophoto(tmp_path / "aerial" / "D030_2021_same.tif", 32, 32)
    write_codes(tmp_path / "labels" / "D030_2021_same.tif", blob_codes(32, 32, 9), nodata=None)
    make_orthophoto(tmp_path / "aerial" / "D031_2021_unlabelled.tif", 32, 32)
    patches = discover_patches(tmp_path)
    assert [(p.domain, p.label.parent.name) for p in patches] == [
        ("D022_2021", "labels"),
        ("D026_2020", "labels"),
        ("D030_2021", "labels"),
    ]
    assert patches[2].label.name == "D030_2021_same.tif"


def test_discover_errors(tmp_path):
    with pytest.raises(InputNotFound):
        discover_patches(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="no FLAIR image patches"):
        discover_patches(tmp_path)
    (tmp_path / "D001_2020" / "Z1" / "img").mkdir(parents=True)
    make_orthophoto(tmp_path / "D001_2020" / "Z1" / "img" / "IMG_000001.tif", 32, 32)
    with pytest.raises(InvalidInput, match="has a label file"):
        discover_patches(tmp_path)


def test_evaluate_generated_folder_end_to_end(flair_folder, checkpoint, tmp_path):
    from PIL import Image

    out = tmp_path / "report"
    args = _parse(
        [
            "evaluate",
            "--data",
            str(flair_folder),
            "--model",
            str(checkpoint),
            "--report",
            str(out),
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--worst",
            "3",
        ]
    )
    reporter = Reporter()
    result = args.func(args, reporter)
    stats, outputs = result["stats"], result["outputs"]
    assert reporter.total == 6 and reporter.done == 6
    assert stats["patches"] == 6 and stats["pixels"] == 6 * 64 * 64
    assert stats["nomenclature"] == "model"
    assert 0.0 <= stats["miou"] <= 1.0 and 0.0 <= stats["overall_accuracy"] <= 1.0
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["nomenclatures"]) == {"model", "flair19", "baseline13"}
    assert doc["context"]["domains"] == list(DOMAINS)
    assert len(doc["worst_patches"]) == 3
    worst = (out / "worst_patches.csv").read_text().splitlines()
    assert len(worst) == 4 and worst[0].startswith("patch_id,domain")
    with Image.open(outputs["confusion_png"]) as im:
        assert im.size == CONFUSION_PNG_SIZE_PX
    with Image.open(outputs["iou_png"]) as im:
        assert im.size == IOU_PNG_SIZE_PX
    # the same numbers as running the Predictor by hand on every patch
    from engine.evaluation.confusion import ConfusionMatrix
    from engine.inference import Predictor
    from engine.models.loader import load_model

    predictor = Predictor(load_model(str(checkpoint)), device="cpu")
    expected = ConfusionMatrix()
    for patch in discover_patches(flair_folder):
        with rasterio.open(patch.image) as src:
            image = src.read()
        with rasterio.open(patch.label) as src:
            labels = src.read(1)
        expected.add(ConfusionMatrix.from_arrays(labels, predictor.predict(image[None]).codes[0]))
    assert np.array_equal(np.array(doc["confusion_matrix_codes"]), expected.for_codes())


def test_evaluate_with_domains_limit_and_baseline13(flair_folder, checkpoint, tmp_path):
    args = _parse(
        [
            "evaluate",
            "--data",
            str(flair_folder),
            "--model",
            str(checkpoint),
            "--report",
            str(tmp_path / "r"),
            "--domains",
            "D026,D064",
            "--limit",
            "3",
            "--nomenclature",
            "baseline13",
            "--device",
            "cpu",
            "--no-plots",
        ]
    )
    result = args.func(args, Reporter())
    assert result["stats"]["patches"] == 3 and result["stats"]["nomenclature"] == "baseline13"
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert doc["context"]["domains"] == ["D026_2020", "D064_2021"]
    assert "confusion_png" not in result["outputs"]


def test_evaluate_rejects_a_model_needing_missing_channels(tmp_path, checkpoint):
    make_hub_folder(tmp_path / "hub")
    args = _parse(
        [
            "evaluate",
            "--data",
            str(tmp_path / "hub"),
            "--model",
            str(checkpoint),
            "--report",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ]
    )
    with pytest.raises(InvalidInput, match="missing"):
        args.func(args, Reporter())
    make_flair_folder(tmp_path / "flair", domains=("D022_2021",), patches_per_domain=1)
    args = _parse(
        [
            "evaluate",
            "--data",
            str(tmp_path / "flair"),
            "--model",
            str(checkpoint),
            "--sentinel2",
            "flair:" + str(tmp_path),
            "--report",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ]
    )
    with pytest.raises(InvalidInput, match="drop --sentinel2"):
        args.func(args, Reporter())
