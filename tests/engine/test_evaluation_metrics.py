"""Metrics against hand-computed confusion matrices."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.evaluation.confusion import ConfusionMatrix
from engine.evaluation.metrics import compute_metrics
from engine.evaluation.nomenclature import (
    baseline13,
    by_name,
    flair19,
    model_active,
    nomenclatures_for,
)
from engine.models.card import ModelCard


def _cm(pairs: dict[tuple[int, int], int]) -> ConfusionMatrix:
    ref = np.concatenate([np.full(n, r) for (r, _), n in pairs.items()])
    pred = np.concatenate([np.full(n, p) for (_, p), n in pairs.items()])
    return ConfusionMatrix.from_arrays(ref, pred)


def _cls(metrics, name):
    return next(c for c in metrics.classes if c.name == name)


def test_hand_computed_three_classes_and_absent_ones():
    # building (1): 8 right, 2 called water; water (5): 5 right, 1 called building;
    # deciduous (7): never in the reference, 3 pixels of water predicted as deciduous.
    cm = _cm({(1, 1): 8, (1, 5): 2, (5, 5): 5, (5, 1): 1, (5, 7): 3})
    m = compute_metrics(cm.counts, flair19())
    building, water, deciduous = _cls(m, "building"), _cls(m, "water"), _cls(m, "deciduous")
    # building: tp 8, fp 1, fn 2
    assert building.iou == pytest.approx(8 / 11)
    assert building.precision == pytest.approx(8 / 9)
    assert building.recall == pytest.approx(8 / 10)
    assert building.f1 == pytest.approx(16 / 19)
    # water: tp 5, fp 2, fn 4
    assert water.iou == pytest.approx(5 / 11)
    assert water.precision == pytest.approx(5 / 7)
    assert water.recall == pytest.approx(5 / 9)
    # deciduous: absent from the reference but predicted: IoU 0, recall undefined
    assert deciduous.iou == 0.0 and deciduous.precision == 0.0
    assert math.isnan(deciduous.recall)
    # classes absent from both sides: undefined, not zero, and outside the mean
    coniferous = _cls(m, "coniferous")
    assert math.isnan(coniferous.iou) and math.isnan(coniferous.f1)
    assert m.miou == pytest.approx((8 / 11 + 5 / 11 + 0.0) / 3)
    assert m.overall_accuracy == pytest.approx(13 / 19)
    assert m.total_px == 19
    d = m.to_dict()
    assert d["per_class"][5]["iou"] is None  # coniferous -> null in JSON
    assert set(d["classes_in_mean"]) == {"building", "water", "deciduous"}
    json.dumps(d, allow_nan=False)


def test_perfect_prediction_gives_one():
    ref = np.repeat(np.arange(1, 20, dtype=np.uint8), 7).reshape(7, 19)
    cm = ConfusionMatrix.from_arrays(ref, ref.copy())
    for nom in (flair19(), baseline13()):
        m = compute_metrics(cm.counts, nom)
        assert m.miou == 1.0 and m.overall_accuracy == 1.0 and m.mean_f1 == 1.0


def test_prediction_shifted_by_one_class():
    # four classes, 100 pixels each; a quarter of each predicted as the next class (4 -> 1)
    ref = np.repeat(np.arange(1, 5), 100)
    pred = ref.copy()
    for k in range(1, 5):
        idx = np.flatnonzero(ref == k)[:25]
        pred[idx] = k % 4 + 1
    m = compute_metrics(ConfusionMatrix.from_arrays(ref, pred).counts, flair19())
    for c in m.classes[:4]:
        assert (c.iou, c.precision, c.recall, c.f1) == pytest.approx((0.6, 0.75, 0.75, 0.75))
    assert all(math.isnan(c.iou) for c in m.classes[4:])
    assert m.miou == pytest.approx(0.6)
    assert m.overall_accuracy == pytest.approx(0.75)
    # every pixel shifted: nothing right
    m0 = compute_metrics(ConfusionMatrix.from_arrays(ref, ref % 4 + 1).counts, flair19())
    assert m0.miou == 0.0 and m0.overall_accuracy == 0.0


def test_baseline13_groups_codes_above_12_and_averages_the_first_12():
    # swimming pool (13) predicted as snow (14): wrong in 19 classes, right as "other"
    cm = _cm({(1, 1): 10, (13, 14): 4, (2, 1): 2, (18, 2): 2})
    m19 = compute_metrics(cm.counts, flair19())
    m13 = compute_metrics(cm.counts, baseline13())
    assert m13.nomenclature.class_names[-1] == "other"
    assert len(m13.classes) == 13
    other = _cls(m13, "other")
    assert other.codes == (13, 14, 15, 16, 17, 18, 19) and not other.in_mean
    # other: tp 4 (13->14), fn 2 (18->2), fp 0
    assert other.iou == pytest.approx(4 / 6)
    assert m13.overall_accuracy == pytest.approx(14 / 18)
    assert m19.overall_accuracy == pytest.approx(10 / 18)
    # mIoU over classes 1..12 only: building 10/12, pervious 0/2 -> mean over the two defined
    assert _cls(m13, "building").iou == pytest.approx(10 / 12)
    assert _cls(m13, "pervious surface").iou == 0.0
    assert m13.miou == pytest.approx((10 / 12 + 0.0) / 2)


def test_nodata_and_invalid_values_are_excluded_and_counted():
    ref = np.array([[0, 1, 1, 3], [2, 2, 25, 3]], dtype=np.uint8)
    pred = np.array([[1, 1, 0, 3], [2, 1, 2, 200]], dtype=np.uint8)
    valid = np.array([[1, 1, 1, 1], [1, 0, 1, 1]], dtype=bool)
    cm = ConfusionMatrix.from_arrays(ref, pred, valid)
    # kept: (1,1) (3,3) (2,2); (1,0) prediction nodata; (0,1) reference nodata; (2,1) outside
    assert cm.total == 3
    assert cm.counts[1, 1] == 1 and cm.counts[3, 3] == 1 and cm.counts[2, 2] == 1
    ex = cm.excluded
    assert (ex.reference_nodata, ex.prediction_nodata, ex.outside_mask) == (1, 1, 1)
    assert (ex.invalid_reference, ex.invalid_prediction) == (1, 1)
    assert ex.total() == 5
    # a declared nodata other than 0
    cm255 = ConfusionMatrix.from_arrays(np.array([255, 4]), np.array([4, 4]), reference_nodata=255)
    assert cm255.total == 1 and cm255.excluded.reference_nodata == 1


def test_accumulating_blocks_equals_one_pass():
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 20, size=(40, 40))
    pred = rng.integers(0, 20, size=(40, 40))
    whole = ConfusionMatrix.from_arrays(ref, pred)
    acc = ConfusionMatrix()
    for r in range(0, 40, 16):
        for c in range(0, 40, 16):
            acc.add(
                ConfusionMatrix.from_arrays(
                    ref[r : r + 16, c : c + 16], pred[r : r + 16, c : c + 16]
                )
            )
    np.testing.assert_array_equal(whole.counts, acc.counts)
    assert whole.excluded == acc.excluded


def test_model_nomenclature_from_a_15cl_card():
    from importlib.resources import files

    registry = json.loads(files("engine.models").joinpath("cards/registry.json").read_text())
    card = ModelCard.from_dict(
        next(m for m in registry["models"] if m["name"] == "flair-inc-rgbie-15cl")
    )
    nom = model_active(card.active_codes, card.name)
    assert len(nom.groups) == 16  # 15 active classes + "other (inactive)"
    assert nom.groups[-1].codes == (15, 16, 17, 19) and not nom.groups[-1].in_mean
    assert "15, 16, 17, 19" in nom.description
    # a reference clear cut (15) can never be right; it counts in OA, not in mIoU
    m = compute_metrics(_cm({(15, 7): 5, (7, 7): 5}).counts, nom)
    assert m.overall_accuracy == pytest.approx(0.5)
    assert m.miou == pytest.approx(0.5)  # deciduous: tp 5, fp 5


def test_nomenclature_choice():
    assert [n.name for n in nomenclatures_for("auto", None)] == ["flair19", "baseline13"]
    names = [n.name for n in nomenclatures_for("auto", (1, 2, 3))]
    assert names == ["model", "flair19", "baseline13"]
    assert nomenclatures_for("baseline13", (1, 2))[0].name == "baseline13"
    with pytest.raises(ValueError, match="needs a model"):
        by_name("model")
    with pytest.raises(ValueError, match="unknown nomenclature"):
        by_name("fifteen")
