"""FLAIR-2 preparation of super-patches (filter, monthly means, day offsets) and the FLAIR
dataset folder source, checked against values computed by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from engine.errors import InputNotFound, InvalidInput
from engine.models.card import Sentinel2Settings
from engine.progress import Reporter
from engine.sentinel2 import (
    FlairFolderSource,
    SuperPatch,
    day_offset,
    open_source,
    prepare_superpatch,
)
from engine.sentinel2.flair import product_date
from tests.fixtures.sentinel2_catalog import flair_value, make_flair_folder

SETTINGS = Sentinel2Settings()


@pytest.fixture(scope="module")
def flair_root(tmp_path_factory):
    return make_flair_folder(tmp_path_factory.mktemp("flair"))


@pytest.fixture(scope="module")
def flair(flair_root) -> FlairFolderSource:
    source = open_source(f"flair:{flair_root}")
    assert isinstance(source, FlairFolderSource)
    return source


# day offsets -----------------------------------------------------------------------------------
def test_day_offsets_by_hand():
    # 15 May 2021 minus the date: Jan 10 -> 21 + 28 + 31 + 30 + 15 days
    assert day_offset(dt.date(2021, 1, 10), SETTINGS) == 125
    assert day_offset(dt.date(2021, 5, 15), SETTINGS) == 0
    assert day_offset(dt.date(2021, 6, 1), SETTINGS) == -17
    # live data keep their month and day, in the reference year
    assert day_offset(dt.date(2023, 1, 10), SETTINGS) == 125
    # a 29 February counts as the 28th (2021 has none)
    assert day_offset(dt.date(2024, 2, 29), SETTINGS) == day_offset(dt.date(2021, 2, 28), SETTINGS)
    other = replace(SETTINGS, reference_date="06-01", reference_year=2020)
    assert day_offset(dt.date(2020, 5, 15), other) == 17


def test_product_date_reads_characters_15_to_18_and_forces_2021():
    name = "S2A_MSIL2A_20200322T105421_N0214_R051_T31UDQ_20200322T122421"
    assert product_date(name) == dt.date(2021, 3, 22)
    with pytest.raises(InvalidInput, match="MMDD"):
        product_date("short")


# filter and monthly means on a synthetic super-patch -------------------------------------------
def _superpatch(masks_per_date: list[tuple[int, int]], dates: list[dt.date]) -> SuperPatch:
    """Dates whose snow/cloud cover the first n_snow / n_cloud pixels at probability 100."""
    t = len(dates)
    data = np.zeros((t, 10, 40, 40), np.float32)
    for i in range(t):
        data[i] = 100.0 * (i + 1)
    masks = np.zeros((t, 2, 40, 40), np.uint8)
    for i, (n_snow, n_cloud) in enumerate(masks_per_date):
        masks[i, 0].flat[:n_snow] = 100
        masks[i, 1].flat[:n_cloud] = 100
    return SuperPatch(data, masks, dates)


def test_filter_threshold_is_inclusive_and_counts_both_channels():
    dates = [dt.date(2021, m, 1) for m in (1, 2, 3, 4)]
    # 799 of 1600 kept; 800 dropped; 400 snowy + 400 cloudy (same pixels) = 800 dropped; clear kept
    sp = _superpatch([(0, 799), (0, 800), (400, 400), (0, 0)], dates)
    out = prepare_superpatch(sp, SETTINGS)
    assert out is not None
    assert out.day_offsets.tolist() == [120.0, 30.0]  # January and April, dated the 15th
    assert out.data[:, 0, 0, 0].tolist() == [100.0, 400.0]
    assert out.data.dtype == np.float32 and out.day_offsets.dtype == np.float32


def test_thresholds_come_from_the_settings():
    dates = [dt.date(2021, 1, 1), dt.date(2021, 1, 2)]
    sp = _superpatch([(0, 800), (0, 0)], dates)
    looser = replace(SETTINGS, cover_threshold=0.6)
    assert prepare_superpatch(sp, looser).data[0, 0, 0, 0] == pytest.approx(150.0)
    assert prepare_superpatch(sp, SETTINGS).data[0, 0, 0, 0] == pytest.approx(200.0)
    masks = sp.masks.copy()
    masks[0, 1] = np.where(masks[0, 1] > 0, 70, 0)  # cloud 70 below a threshold of 80
    stricter = replace(SETTINGS, cloud_threshold=80)
    assert prepare_superpatch(SuperPatch(sp.data, masks, dates), stricter).data[0, 0, 0, 0] == 150


def test_no_surviving_date_gives_none():
    sp = _superpatch([(1600, 0), (0, 1600)], [dt.date(2021, 1, 1), dt.date(2021, 2, 1)])
    assert prepare_superpatch(sp, SETTINGS) is None
    empty = SuperPatch(np.zeros((0, 10, 40, 40), np.float32), np.zeros((0, 2, 40, 40)), [])
    assert prepare_superpatch(empty, SETTINGS) is None


def test_unsorted_dates_are_averaged_in_calendar_order():
    dates = [dt.date(2021, 3, 20), dt.date(2021, 1, 5), dt.date(2021, 3, 2)]
    sp = _superpatch([(0, 0)] * 3, dates)
    out = prepare_superpatch(sp, SETTINGS)
    assert out.day_offsets.tolist() == [120.0, 61.0]
    assert out.data[:, 3, 5, 5].tolist() == [200.0, 200.0]  # March: mean of 100 and 300
    raw = prepare_superpatch(sp, replace(SETTINGS, monthly_average=False))
    assert raw.day_offsets.tolist() == [130.0, 74.0, 56.0]
    assert raw.data[:, 0, 0, 0].tolist() == [200.0, 300.0, 100.0]


def test_superpatch_shapes_are_checked():
    with pytest.raises(InvalidInput, match="dates"):
        SuperPatch(np.zeros((2, 10, 40, 40)), np.zeros((2, 2, 40, 40)), [dt.date(2021, 1, 1)])


# FLAIR dataset folder --------------------------------------------------------------------------
def test_flair_crop_is_rows_then_columns_around_the_centroid(flair):
    sp = flair.superpatch_for_patch("IMG_000001.tif")  # centroid [30, 25] in D077_2021/Z1_UA
    assert sp.data.shape == (7, 10, 40, 40) and sp.masks.shape == (7, 2, 40, 40)
    assert sp.data.dtype == np.float32
    # pixel (0, 0) of the crop is row 10, column 5 of the super-area: 1000 + (3*10 + 5) % 10
    assert sp.data[0, 0, 0, 0] == 1005.0
    assert sp.data[6, 9, 39, 39] == flair_value(6, 9, 49, 44) == 1000 + 600 + 90 + 1
    assert sp.dates[0] == dt.date(2021, 1, 10) and sp.dates[-1] == dt.date(2021, 6, 1)
    # same result from a path or a name without extension
    again = flair.superpatch_for_patch("some/where/IMG_000001")
    assert np.array_equal(again.data, sp.data)


def test_flair_filter_and_monthly_means_by_hand(flair):
    out = prepare_superpatch(flair.superpatch_for_patch("IMG_000001.tif"), SETTINGS)
    # kept: 01-10, 01-25, 02-14 (cover 0.499), 03-22 (cloud 59 < 60), 06-01;
    # dropped: 03-05 (cloud on 800 px) and 03-20 (400 px snowy and cloudy, counted twice)
    assert out.day_offsets.tolist() == [120.0, 89.0, 61.0, -31.0]
    assert out.data.shape == (4, 10, 40, 40)
    # band 0, crop pixel (0, 0) = super-area (10, 5): 1005 + 100 t
    assert out.data[:, 0, 0, 0].tolist() == [(1005 + 1105) / 2, 1205.0, 1505.0, 1605.0]
    # band 3, crop pixel (2, 7) = super-area (12, 12): 1000 + 30 + (36 + 12) % 10 = 1038
    assert out.data[0, 3, 2, 7] == pytest.approx((1038 + 1138) / 2)
    raw = prepare_superpatch(
        flair.superpatch_for_patch("IMG_000001.tif"), replace(SETTINGS, monthly_average=False)
    )
    assert raw.day_offsets.tolist() == [125.0, 110.0, 90.0, 54.0, -17.0]
    assert raw.data[:, 0, 0, 0].tolist() == [1005.0, 1105.0, 1205.0, 1505.0, 1605.0]


def test_flair_area_from_the_image_folders_or_the_metadata(flair):
    assert flair.area_of("IMG_000002.tif") == ("D077_2021", "Z1_UA")
    # IMG_000003's image is absent: its metadata record names D013_2020 / Z4_AB
    assert "IMG_000003.tif" not in flair.images
    assert flair.area_of("IMG_000003.tif") == ("D013_2020", "Z4_AB")
    sp = flair.superpatch_for_patch("IMG_000003.tif")  # centroid [25, 25] in a 50 x 50 area
    assert sp.data[0, 0, 0, 0] == flair_value(0, 0, 5, 5)
    assert sp.dates[0] == dt.date(2021, 1, 10)  # products of 2020, year forced to 2021
    assert prepare_superpatch(sp, SETTINGS).day_offsets.tolist() == [120.0, 89.0, 61.0, -31.0]
    assert flair.patch_metadata("IMG_000003.tif")["camera"] == "UCE-M3-f120-s06"


def test_flair_errors_say_what_is_missing(flair, flair_root):
    with pytest.raises(InputNotFound, match="IMG_999999.tif"):
        flair.superpatch_for_patch("IMG_999999.tif")
    with pytest.raises(InvalidInput, match="leaves the super-area"):
        FlairFolderSource(flair_root, superpatch_px=100).superpatch_for_patch("IMG_000001.tif")
    with pytest.raises(InvalidInput, match="by name"):
        flair.load("EPSG:2154", (0, 0, 1000, 1000), 2021, SETTINGS, Reporter())
    with pytest.raises(InputNotFound):
        open_source(f"flair:{flair_root / 'nowhere'}")
