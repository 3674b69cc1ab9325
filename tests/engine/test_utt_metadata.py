"""The 45-value aerial-metadata vector, checked value by value."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from engine.errors import InputNotFound, InvalidInput
from engine.models.utt.metadata import (
    encode_metadata,
    flair_entry_for,
    load_flair_metadata,
    metadata_from_flair_entry,
    metadata_length,
)

ENTRY = {
    "patch_centroid_x": 652000.0,
    "patch_centroid_y": 6862000.0,
    "patch_centroid_z": 316.49,
    "camera": "UCE-M3-f120-s06",
    "date": "2019-07-28",
    "time": "12h00",
    "domain": "D075_2019",
}


def test_length_and_dtype():
    vec = metadata_from_flair_entry(ENTRY)
    assert metadata_length() == 45
    assert vec.shape == (45,)
    assert vec.dtype == np.float32


def test_position_code_by_hand():
    vec = metadata_from_flair_entry(ENTRY).astype(np.float64)
    x, y = 652000.0 / 1e8, 6862000.0 / 1e8
    for i in range(8):
        f = 1e8 ** (-2 * i / 16)
        assert vec[2 * i] == pytest.approx(math.sin(x * f), abs=1e-7)
        assert vec[2 * i + 1] == pytest.approx(math.cos(x * f), abs=1e-7)
        assert vec[16 + 2 * i] == pytest.approx(math.sin(y * f), abs=1e-7)
        assert vec[16 + 2 * i + 1] == pytest.approx(math.cos(y * f), abs=1e-7)
    # the lowest frequencies barely move: cos close to 1, sin close to 0
    assert vec[15] == pytest.approx(1.0, abs=1e-7)


def test_altitude_camera_year_and_cyclic_terms():
    vec = metadata_from_flair_entry(ENTRY).astype(np.float64)
    assert vec[32] == pytest.approx(316.49 / 3164.9099121094, abs=1e-7)
    assert vec[33:35].tolist() == [1.0, 0.0]  # "UCE" camera
    assert vec[35:39].tolist() == [0.0, 1.0, 0.0, 0.0]  # 2019
    # month: the official 2 pi (month - 1/12) bug makes sin -0.5 and cos 0.866 for every month
    assert vec[39] == pytest.approx(0.25, abs=1e-6)
    assert vec[40] == pytest.approx((1 + math.sqrt(3) / 2) / 2, abs=1e-6)
    assert vec[41] == pytest.approx((math.sin(2 * math.pi * 28 / 31) + 1) / 2, abs=1e-7)
    assert vec[42] == pytest.approx((math.cos(2 * math.pi * 28 / 31) + 1) / 2, abs=1e-7)
    # noon: sin(pi) = 0 -> 0.5, cos(pi) = -1 -> 0
    assert vec[43] == pytest.approx(0.5, abs=1e-7)
    assert vec[44] == pytest.approx(0.0, abs=1e-7)


def test_month_term_is_the_same_for_every_month():
    months = [
        encode_metadata(0, 0, 0, "x", f"2020-{m:02d}-01", "10h00")[39:41] for m in range(1, 13)
    ]
    assert np.allclose(months, months[0], atol=1e-6)


def test_other_camera_and_forms_of_date_and_time():
    a = encode_metadata(600000, 6800000, 100, "ADS100", "2021-05-03", "09h30")
    b = encode_metadata(600000, 6800000, 100, "ADS100", dt.date(2021, 5, 3), dt.time(9, 30))
    c = encode_metadata(600000, 6800000, 100, "ADS100", "2021-05-03", "09:30")
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert a[33:35].tolist() == [0.0, 1.0]
    assert a[35:39].tolist() == [0.0, 0.0, 0.0, 1.0]
    seconds = 9 * 3600 + 30 * 60
    assert a[43] == pytest.approx((math.sin(2 * math.pi * seconds / 86400) + 1) / 2, abs=1e-7)


def test_year_outside_the_model_is_an_error_that_says_so():
    with pytest.raises(InvalidInput, match=r"2023 is outside the years .*2018, 2019, 2020, 2021"):
        encode_metadata(0, 0, 0, "UCE", "2023-06-01", "10h00")
    # a card with other years has its own one-hot
    vec = encode_metadata(0, 0, 0, "UCE", "2023-06-01", "10h00", years=(2022, 2023))
    assert vec.shape == (metadata_length(2),) and vec[35:37].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("time", ["noon", "25h00", "12"])
def test_bad_time(time):
    with pytest.raises(InvalidInput, match="acquisition time"):
        encode_metadata(0, 0, 0, "UCE", "2020-06-01", time)


def test_flair_json_lookup(tmp_path):
    path = tmp_path / "flair-2_aerial_metadata.json"
    path.write_text(json.dumps({"IMG_061946": ENTRY}))
    data = load_flair_metadata(path)
    entry = flair_entry_for(data, "/data/D075_2019/Z1_UN/img/IMG_061946.tif")
    assert np.array_equal(metadata_from_flair_entry(entry), metadata_from_flair_entry(ENTRY))
    with pytest.raises(InvalidInput, match="IMG_000001"):
        flair_entry_for(data, "IMG_000001.tif")
    with pytest.raises(InvalidInput, match="lacks"):
        metadata_from_flair_entry({"camera": "UCE"})
    with pytest.raises(InputNotFound):
        load_flair_metadata(tmp_path / "missing.json")
