"""The product and output tables: plain Python the plugin can read, one entry per product or
output, and every part of the engine that names products or outputs reads them from there."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import pytest

import engine
from engine.cli import build_parser
from engine.io import output_table
from engine.io.map_writer import RASTER_SUFFIXES
from engine.outputs import WRITERS
from engine.polygons import POLYGON_DRIVERS
from engine.region import products
from engine.region.settings import ProductInputs
from engine.stats import STATS_SUFFIXES

ENGINE_DIR = Path(engine.__file__).parent
SHARED_TABLES = ("io/output_table.py", "region/products.py")


@pytest.mark.parametrize("relative", SHARED_TABLES)
def test_a_shared_table_imports_the_standard_library_only(relative: str) -> None:
    """The plugin loads these files in QGIS's Python (`engine_shared.engine_module`)."""
    tree = ast.parse((ENGINE_DIR / relative).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    outside = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
    assert not outside, outside


def _options(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {o: a for a in sub.choices[command]._actions for o in a.option_strings}


# ---- outputs ----


def test_every_output_has_one_writer_and_every_writer_an_output() -> None:
    assert list(WRITERS) == [o.key for o in output_table.OUTPUTS]


def test_the_table_names_the_files_each_writer_takes() -> None:
    by_key = output_table.BY_KEY
    assert by_key["stats"].suffixes == STATS_SUFFIXES
    assert set(by_key["polygons"].suffixes) == set(POLYGON_DRIVERS)
    for key in ("output", "confidence", "probabilities"):
        assert by_key[key].suffixes == RASTER_SUFFIXES


def test_predict_and_region_take_their_output_options_from_the_table() -> None:
    predict, region = _options("predict"), _options("region")
    for entry in output_table.OUTPUTS:
        if entry.option:
            assert entry.option in predict, entry.option
            if entry.key != "zones":
                assert predict[entry.option].help == entry.help
    for entry in output_table.region_outputs():
        assert region[entry.option].help == entry.region_help
        assert entry.region_file, entry.key
    assert {o.field for o in output_table.plugin_outputs()} == {
        "OUTPUT",
        "CONFIDENCE",
        "STATS",
        "POLYGONS",
    }


def test_a_refused_destination_is_named_by_the_table(tmp_path: Path) -> None:
    from engine.errors import OutputError
    from engine.io.destination import Destinations, OutputPaths
    from engine.outputs import claim_outputs
    from engine.settings import PredictSettings

    settings = PredictSettings(
        tmp_path / "in.tif",
        OutputPaths(tmp_path / "map.tif"),
        "m",
        stats=tmp_path / "stats.txt",
    )
    with Destinations() as dest, pytest.raises(OutputError, match=r"the --stats output must be"):
        claim_outputs(settings, dest)


# ---- products ----


def test_the_products_have_one_base_one_elevation_and_their_options() -> None:
    roles = [p.role for p in products.PRODUCTS]
    assert roles.count(products.BASE) == 1 and roles.count(products.ELEVATION) == 1
    assert len({p.key for p in products.PRODUCTS}) == len(products.PRODUCTS)
    region = _options("region")
    for product in products.PRODUCTS:
        assert region[product.option].help == product.help
        assert product.min_bands >= max(b.band for b in product.bands)


def test_product_inputs_name_the_products_of_the_table() -> None:
    from engine.errors import InvalidInput

    with pytest.raises(
        InvalidInput, match=r"say what to map: --rgb 'RVB/\*\*/\*\.\{jp2,tif,tiff\}'"
    ):
        ProductInputs({"irc": ("IRC/*.jp2",)})
    with pytest.raises(InvalidInput, match="give either --input or --rgb/--irc, not both"):
        ProductInputs({"rgb": ("RVB/*.jp2",)}, "one.vrt")
    with pytest.raises(InvalidInput, match="unknown region product"):
        ProductInputs({"swir": ("SWIR/*.jp2",)})
    assert ProductInputs({"elevation": ("E/*.tif",)}, "one.vrt").of("elevation") == ("E/*.tif",)


def test_the_mosaic_bands_come_from_the_table(tmp_path: Path) -> None:
    """The input mosaic's bands: each image product's bands, as the table says, then alpha."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from engine.region.inputs import gather
    from engine.region.vrt import product_bands

    for name, count in (("RVB", 3), ("IRC", 3)):
        folder = tmp_path / name
        folder.mkdir()
        profile = {
            "driver": "GTiff",
            "width": 64,
            "height": 64,
            "count": count,
            "dtype": "uint8",
            "crs": "EPSG:2154",
            "transform": from_origin(700_000, 6_600_000, 0.2, 0.2),
        }
        with rasterio.open(folder / "tile_a.tif", "w", **profile) as dst:
            dst.write(np.full((count, 64, 64), 100, dtype="uint8"))
    inputs = gather(
        ProductInputs({"rgb": (str(tmp_path / "RVB"),), "irc": (str(tmp_path / "IRC"),)})
    )
    mosaic = product_bands(inputs.files)
    expected = [
        product.band_label(band) for product in products.image_products() for band in product.bands
    ]
    assert [b.description for b in mosaic.bands] == [*expected, "data present"]
    assert expected == ["R (RVB 1)", "G (RVB 2)", "B (RVB 3)", "NIR (IRC 1)"]


# ---- windows ----


def test_a_block_record_keeps_its_window_through_the_manifest_file() -> None:
    import json

    from engine.grid import Window
    from engine.region.manifest import DONE, BlockRecord

    record = BlockRecord("r000_c001", Window(1024, 0, 2048, 1536), DONE, 1)
    text = json.dumps(record.to_dict())
    assert json.loads(text)["window"] == [1024, 0, 2048, 1536]
    assert BlockRecord.from_dict(json.loads(text)) == record
