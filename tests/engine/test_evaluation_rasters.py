"""Prediction raster against reference raster: grids, nodata, mask, blocks, CLI, report."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from engine.errors import Cancelled, InputNotFound, InvalidInput
from engine.evaluation import cli
from engine.evaluation.compare_rasters import compare_rasters
from engine.evaluation.plots import CONFUSION_PNG_SIZE_PX, IOU_PNG_SIZE_PX
from engine.progress import Reporter
from tests.engine.evaluation_fixtures import ORIGIN_XY, blob_codes, write_codes


class Recorder(Reporter):
    """Keeps what the evaluation reported."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, int, str]] = []
        self.lines: list[str] = []

    def _emit_start(self, phase, total, unit, extra):
        self.starts.append((phase, total, unit))

    def log(self, message, level="INFO", **fields):
        self.lines.append(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_same_grid_with_nodata_and_small_blocks(tmp_path):
    ref = blob_codes(40, 50, seed=1, codes=(1, 2, 3))
    ref[:5] = 0  # no label
    pred = ref.copy()
    pred[5:10] = np.where(pred[5:10] == 1, 2, pred[5:10])  # some errors
    pred[-3:] = 0  # no data in the map
    rp, pp = write_codes(tmp_path / "ref.tif", ref), write_codes(tmp_path / "pred.tif", pred)
    reporter = Recorder()
    result = compare_rasters(pp, rp, reporter=reporter, block_px=16)
    cm = result.confusion
    assert reporter.starts == [("evaluation", 4 * 3, "blocks")]  # ceil(50 / 16) x ceil(40 / 16)
    assert reporter.done == reporter.total
    assert cm.excluded.reference_nodata == 5 * 50
    assert cm.excluded.prediction_nodata == 3 * 50
    assert cm.total == 32 * 50
    inner_ref, inner_pred = ref[5:37], pred[5:37]
    assert np.trace(cm.counts) == int((inner_ref == inner_pred).sum())
    assert not result.context["reference_resampled"]


def test_reference_on_a_coarser_shifted_grid_is_resampled_nearest(tmp_path):
    # reference at 0.4 m starting 2 m west and north of the prediction (0.2 m)
    ref = blob_codes(40, 40, seed=2, codes=(1, 5, 7, 10), cell_px=4)
    rp = write_codes(
        tmp_path / "ref.tif", ref, res_m=0.4, origin_xy=(ORIGIN_XY[0] - 2.0, ORIGIN_XY[1] + 2.0)
    )
    # the prediction is the reference seen on its own grid: offset 5 px, each pixel 2 x 2
    pred = np.kron(ref, np.ones((2, 2), dtype=ref.dtype))[10:70, 10:70]
    pp = write_codes(tmp_path / "pred.tif", pred, res_m=0.2)
    result = compare_rasters(pp, rp, block_px=32)
    assert result.context["reference_resampled"]
    counts = result.confusion.counts
    assert counts.sum() == 60 * 60
    assert np.trace(counts) == counts.sum()  # perfect once aligned


def test_reference_partly_outside_counts_as_nodata(tmp_path):
    ref = np.full((20, 20), 3, dtype=np.uint8)
    rp = write_codes(tmp_path / "ref.tif", ref, origin_xy=(ORIGIN_XY[0] + 2.0, ORIGIN_XY[1]))
    pp = write_codes(tmp_path / "pred.tif", np.full((20, 20), 3, dtype=np.uint8))
    cm = compare_rasters(pp, rp).confusion
    assert cm.total == 10 * 20 and cm.excluded.reference_nodata == 10 * 20


def test_polygon_mask_limits_the_area(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    ref = blob_codes(40, 40, seed=4, codes=(1, 2))
    rp, pp = write_codes(tmp_path / "ref.tif", ref), write_codes(tmp_path / "pred.tif", ref)
    x0, y0 = ORIGIN_XY
    # left half of the raster (4 m wide at 0.2 m = 20 px), given in WGS84 to test reprojection
    area = gpd.GeoDataFrame(geometry=[box(x0, y0 - 8.0, x0 + 4.0, y0)], crs="EPSG:2154")
    mask = tmp_path / "area.gpkg"
    area.to_crs("EPSG:4326").to_file(mask)
    cm = compare_rasters(pp, rp, mask=mask, block_px=16).confusion
    assert abs(cm.total - 20 * 40) <= 40  # reprojected edge may shift one pixel column
    assert cm.excluded.outside_mask == 40 * 40 - cm.total


def test_cancellation_and_input_errors(tmp_path):
    ref = np.ones((10, 10), dtype=np.uint8)
    rp, pp = write_codes(tmp_path / "ref.tif", ref), write_codes(tmp_path / "pred.tif", ref)
    reporter = Reporter()
    reporter.cancel()
    with pytest.raises(Cancelled):
        compare_rasters(pp, rp, reporter=reporter)
    with pytest.raises(InputNotFound, match="missing.tif"):
        compare_rasters(tmp_path / "missing.tif", rp)
    empty = write_codes(tmp_path / "empty.tif", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(InvalidInput, match="no pixel"):
        compare_rasters(pp, empty)


def test_cli_rasters_writes_the_report(tmp_path):
    from PIL import Image

    ref = blob_codes(48, 48, seed=5, codes=(1, 2, 3, 7, 13, 14))
    pred = np.where(ref == 13, 14, ref)
    rp, pp = write_codes(tmp_path / "ref.tif", ref), write_codes(tmp_path / "pred.tif", pred)
    out = tmp_path / "report"
    args = _parse(
        [
            "evaluate",
            "--prediction",
            str(pp),
            "--reference",
            str(rp),
            "--report",
            str(out),
            "--nomenclature",
            "baseline13",
        ]
    )
    result = args.func(args, Recorder())
    stats, outputs = result["stats"], result["outputs"]
    assert stats["nomenclature"] == "baseline13"
    assert stats["miou"] == pytest.approx(1.0) and stats["overall_accuracy"] == pytest.approx(1.0)
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["primary_nomenclature"] == "baseline13"
    assert "codes 13-19 merged" in doc["primary_description"]
    assert set(doc["nomenclatures"]) == {"baseline13", "flair19"}
    assert doc["nomenclatures"]["flair19"]["miou"] < 1.0  # 13 vs 14 wrong in 19 classes
    lines = (out / "per_class.csv").read_text().splitlines()
    assert lines[0].startswith("nomenclature,class,codes")
    assert len(lines) == 1 + 13 + 19
    matrix = (out / "confusion_matrix.csv").read_text().splitlines()
    assert len(matrix) == 14 and matrix[0].split(",")[1] == "building"
    assert (out / "confusion_matrix_flair19.csv").exists()
    with Image.open(outputs["confusion_png"]) as im:
        assert im.size == CONFUSION_PNG_SIZE_PX
    with Image.open(outputs["iou_png"]) as im:
        assert im.size == IOU_PNG_SIZE_PX
    assert not list(out.glob(".*"))  # no temporary or lock left
    assert outputs["report"] == str(out)


def test_cli_argument_errors(tmp_path):
    args = _parse(["evaluate", "--report", str(tmp_path / "r")])
    with pytest.raises(InvalidInput, match="either --prediction"):
        args.func(args, Reporter())
    args = _parse(["evaluate", "--prediction", "a.tif", "--report", str(tmp_path / "r")])
    with pytest.raises(InvalidInput, match="give both"):
        args.func(args, Reporter())
    args = _parse(
        [
            "evaluate",
            "--prediction",
            "a.tif",
            "--reference",
            "b.tif",
            "--nomenclature",
            "model",
            "--report",
            str(tmp_path / "r"),
        ]
    )
    with pytest.raises(InputNotFound):
        args.func(args, Reporter())


def test_a_grid_assumption_reaches_the_plugin_as_a_warning_of_a_successful_run(tmp_path, capsys):
    """The one message channel: a warning of the engine is a JSON `log` event with level
    WARNING before the `done` event, not a `logging` line the plugin never reads."""
    import rasterio

    from engine.cli import main

    codes = blob_codes(32, 32, seed=6, codes=(1, 2, 3))
    pp = write_codes(tmp_path / "pred.tif", codes)
    rp = tmp_path / "ref_without_crs.tif"
    with rasterio.open(
        rp, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8", nodata=0
    ) as dst:
        dst.write(codes.astype(np.uint8), 1)
    argv = ["evaluate", "--prediction", pp, "--reference", rp, "--report", tmp_path / "r"]
    code = main([str(a) for a in argv] + ["--no-plots", "--progress", "json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and events[-1]["event"] == "done"
    warnings = [e for e in events if e["event"] == "log" and e["level"] == "WARNING"]
    assert [w["message"] for w in warnings] == [
        "a raster has no CRS; assuming both share the same grid"
    ]


@pytest.mark.parametrize("share", [0.18, 1.0])
def test_iou_chart_in_percent_with_its_miou_label_inside_the_figure(share):
    """The chart's axis, bars, dashed mIoU line and its label all say percent, and the label
    stays whole inside the figure, clear of the title, for a low and a perfect mIoU."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from engine.evaluation.metrics import compute_metrics
    from engine.evaluation.nomenclature import flair19
    from engine.evaluation.plots import iou_bars_figure

    counts = np.zeros((20, 20), dtype=np.int64)
    for code in range(1, 20):  # each class: a share right, the rest taken for the next class
        counts[code, code] = round(1000 * share)
        counts[code, code % 19 + 1] += 1000 - round(1000 * share)
    metrics = compute_metrics(counts, flair19())
    fig = iou_bars_figure(metrics)
    try:
        ax = fig.axes[0]
        assert ax.get_ylim() == (0.0, 110.0) and ax.get_ylabel() == "IoU (%)"
        assert list(ax.get_yticks()) == [0, 20, 40, 60, 80, 100]
        heights = [p.get_height() for p in ax.patches]
        assert heights == pytest.approx([100 * c.iou for c in metrics.classes])
        miou = 100 * metrics.miou
        (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert line.get_ydata()[0] == pytest.approx(miou)
        label = f"mIoU {miou:.2f} % (dashed line)"
        assert ax.get_title(loc="right") == label
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (shown,) = [t for t in fig.findobj(Text) if t.get_text() == label]
        (title,) = [t for t in fig.findobj(Text) if t.get_text() == ax.get_title()]
        box = shown.get_window_extent(renderer)
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
        assert not box.overlaps(title.get_window_extent(renderer))
        assert box.y0 >= ax.get_window_extent(renderer).y1  # above the bars and their labels
    finally:
        plt.close(fig)
