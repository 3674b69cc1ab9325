"""Band defaults from the layer: colour interpretation first, then 1, 2, 3, 4, 5."""

from __future__ import annotations

from osgeo import gdal
from qgis.core import QgsRasterLayer

from flair_qgis.bands import BandMapping, default_bands, resolve_bands


def _gray_raster(path, bands: int) -> str:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 8, 8, bands, gdal.GDT_Byte)
    ds.SetGeoTransform((652000, 0.2, 0, 6862000, 0, -0.2))
    for b in range(1, bands + 1):
        ds.GetRasterBand(b).SetColorInterpretation(gdal.GCI_GrayIndex)
    ds = None
    return str(path)


def test_five_band_layer(qgis_app, raster5):
    layer = QgsRasterLayer(str(raster5), "five")
    assert layer.isValid()
    assert default_bands(layer) == BandMapping(1, 2, 3, 4, 5)
    assert default_bands(layer).engine_bands() == [1, 2, 3, 4, 5]


def test_four_band_layer_with_alpha(qgis_app, raster4):
    """4 bands + alpha (band 5): NIR is band 4, the alpha band is never taken as elevation."""
    layer = QgsRasterLayer(str(raster4), "four")
    assert layer.bandCount() == 5
    mapping = default_bands(layer)
    assert mapping == BandMapping(1, 2, 3, 4, 0)
    assert mapping.engine_bands() == [1, 2, 3, 4]


def test_colour_interpretation_wins(qgis_app, tmp_path):
    path = tmp_path / "bgrn.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 8, 8, 4, gdal.GDT_Byte)
    order = (gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand, gdal.GCI_GrayIndex)
    for band, ci in enumerate(order, start=1):
        ds.GetRasterBand(band).SetColorInterpretation(ci)
    ds = None
    assert default_bands(QgsRasterLayer(str(path), "bgrn")) == BandMapping(3, 2, 1, 4, 0)


def test_without_colour_interpretation(qgis_app, tmp_path):
    layer = QgsRasterLayer(_gray_raster(tmp_path / "gray.tif", 5), "gray")
    assert default_bands(layer) == BandMapping(1, 2, 3, 4, 5)
    layer3 = QgsRasterLayer(_gray_raster(tmp_path / "gray3.tif", 3), "gray3")
    assert default_bands(layer3) == BandMapping(1, 2, 3, 0, 0)


def test_user_choice_overrides_defaults(qgis_app, raster5):
    layer = QgsRasterLayer(str(raster5), "five")
    assert resolve_bands(layer, 3, None, 1, None, 4) == BandMapping(3, 2, 1, 4, 4)
