"""A region worker's block: its warnings reach the run's reporter, naming the block.

A real `predict` of a real raster with a generated U-Net checkpoint, run by the worker's own
`compute_block`, as a Dask worker runs it.
"""

from __future__ import annotations

from pathlib import Path

from engine.io.destination import OutputPaths
from engine.progress import Reporter
from engine.region.worker import BlockJob, compute_block, forward_warnings
from engine.settings import PredictSettings
from tests.fixtures.generate import make_orthophoto, make_unet_checkpoint


class Recorder(Reporter):
    """Keeps every line said, with its level."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def log(self, message: str, level: str = "INFO") -> None:
        self.lines.append((level, message))


def test_a_blocks_warnings_reach_the_runs_reporter(tmp_path: Path) -> None:
    # every pixel is the nodata value: predict maps nothing and warns
    ortho = make_orthophoto(tmp_path / "empty.tif", 64, 64, bands=3, nodata=0)
    import rasterio

    with rasterio.open(ortho, "r+") as dst:
        dst.write(dst.read() * 0)
    checkpoint = make_unet_checkpoint(tmp_path / "unet.pth", 3, 19, "flair-inc", seed=1)
    out = tmp_path / "region"
    (out / "blocks").mkdir(parents=True)
    settings = PredictSettings(
        input=ortho,
        outputs=OutputPaths(out / "blocks" / "b.tif"),
        model=str(checkpoint),
        threads=1,
        tile_size_px=64,
        margin_px=16,
        stats=out / "blocks" / "b.json",
    )
    job = BlockJob("r000_c000", settings, out, (("output", "blocks/b.tif"),))

    result = compute_block(job)

    assert result["state"] == "done"
    assert [w for w in result["warnings"] if w.startswith("no valid pixel in the area")]
    reporter = Recorder()
    forward_warnings(result, "r000_c000", reporter)
    assert reporter.lines == [("WARNING", f"block r000_c000: {w}") for w in result["warnings"]]
    assert result["counts"][0] == 64 * 64  # the block's pixels, all no data
