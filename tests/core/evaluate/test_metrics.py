"""Metrics against scikit-learn and against a slow exact AUPRO reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from core.errors import EvaluationError
from core.evaluate import metrics
from core.types import Prediction


def _image_data(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + 0.8 * labels
    return labels, scores


def _blob_masks(seed: int, shapes):
    """Masks with a few random ellipses and maps that are noisy versions of them."""
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for h, w in shapes:
        m = np.zeros((h, w), np.uint8)
        yy, xx = np.mgrid[:h, :w]
        for _ in range(rng.integers(0, 4)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(2, h / 4), rng.uniform(2, w / 4)
            m[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
        a = (0.6 * m + rng.normal(0, 0.35, (h, w))).astype(np.float32)
        masks.append(m)
        maps.append(a)
    return masks, maps


SHAPES = [(40, 52), (33, 33), (48, 30), (25, 61)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_metrics_equal_sklearn(seed):
    labels, scores = _image_data(seed)
    assert metrics.image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert metrics.image_ap(labels, scores) == pytest.approx(
        average_precision_score(labels, scores)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_pixel_metrics_equal_sklearn_when_exact(seed):
    masks, maps = _blob_masks(seed, SHAPES)
    masks[0][5:10, 5:10] = 1  # make sure both classes are present
    y = np.concatenate([m.ravel() for m in masks])
    s = np.concatenate([a.ravel() for a in maps])
    assert metrics.pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s))
    assert metrics.pixel_ap(masks, maps) == pytest.approx(average_precision_score(y, s))


def test_pixel_subsample_is_close_and_deterministic():
    masks, maps = _blob_masks(3, [(120, 150)] * 6)
    masks[0][10:30, 10:30] = 1
    exact = metrics.pixel_auroc(masks, maps)
    cap = 20_000  # well under the 108 000 pixels -> stratified subsample
    a1 = metrics.pixel_auroc(masks, maps, max_pixels=cap)
    a2 = metrics.pixel_auroc(masks, maps, max_pixels=cap)
    assert a1 == a2
    assert a1 == pytest.approx(exact, abs=0.01)
    ap_exact = metrics.pixel_ap(masks, maps)
    assert metrics.pixel_ap(masks, maps, max_pixels=cap) == pytest.approx(ap_exact, abs=0.02)


def test_f1_max_matches_brute_force():
    labels, scores = _image_data(4, n=80)
    res = metrics.f1_max(labels, scores)
    best = max(f1_score(labels, (scores >= t).astype(int)) for t in np.unique(scores))
    assert res.f1 == pytest.approx(best)
    assert f1_score(labels, (scores >= res.threshold).astype(int)) == pytest.approx(best)
    assert res.threshold in scores


def test_confusion_at_counts_and_properties():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.5, 0.7, 0.4, 0.5, 0.8, 0.9])
    c = metrics.confusion_at(labels, scores, 0.5)  # score >= 0.5 is NG
    assert (c.tp, c.fp, c.tn, c.fn) == (3, 2, 1, 1)
    assert c.precision == pytest.approx(3 / 5)
    assert c.recall == pytest.approx(3 / 4)
    assert c.accuracy == pytest.approx(4 / 7)
    assert c.false_positive_rate == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(f1_score(labels, scores >= 0.5))
    none = metrics.confusion_at(labels, scores, 2.0)
    assert none.tp == none.fp == 0 and math.isnan(none.precision)


def test_one_class_gives_nan_without_exception():
    good = np.zeros(5, int)
    scores = np.linspace(0, 1, 5)
    assert math.isnan(metrics.image_auroc(good, scores))
    assert math.isnan(metrics.image_ap(good, scores))
    r = metrics.f1_max(good, scores)
    assert math.isnan(r.f1) and math.isnan(r.threshold)
    assert math.isnan(metrics.image_auroc(np.ones(5, int), scores))
    assert metrics.f1_max(np.ones(5, int), scores).f1 == pytest.approx(1.0)
    zero_masks = [np.zeros((8, 9), np.uint8)] * 2
    maps = [np.random.default_rng(0).random((8, 9), dtype=np.float32)] * 2
    assert math.isnan(metrics.pixel_auroc(zero_masks, maps))
    assert math.isnan(metrics.pixel_ap(zero_masks, maps))
    assert math.isnan(metrics.aupro(zero_masks, maps))
    assert math.isnan(metrics.aupro([np.ones((8, 9), np.uint8)], maps[:1]))  # no good pixel
    assert math.isnan(metrics.image_auroc([], []))


def test_bad_input_raises_clear_errors():
    with pytest.raises(EvaluationError, match="equal length"):
        metrics.image_auroc([0, 1], [0.1])
    with pytest.raises(EvaluationError, match="0 \\(good\\) or 1"):
        metrics.image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(EvaluationError, match="NaN"):
        metrics.image_ap([0, 1], [0.1, np.nan])
    with pytest.raises(EvaluationError, match="same"):
        metrics.pixel_auroc([np.zeros((4, 4), np.uint8)], [np.zeros((4, 5), np.float32)])
    with pytest.raises(EvaluationError, match="fpr_limit"):
        metrics.aupro([np.zeros((4, 4), np.uint8)], [np.zeros((4, 4), np.float32)], fpr_limit=0)


def _aupro_exact(masks, maps, fpr_limit=0.3):
    """Slow reference: every distinct map value is a threshold (MVTec AD definition)."""
    neg_total = sum(int((m == 0).sum()) for m in masks)
    region_list = []
    for k, m in enumerate(masks):
        lab, n = ndimage.label(m, structure=np.ones((3, 3)))  # 8-connectivity
        region_list += [(k, lab == i) for i in range(1, n + 1)]
    fprs, pros = [0.0], [0.0]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        fp = sum(int(((a >= t) & (m == 0)).sum()) for m, a in zip(masks, maps, strict=True))
        pro = np.mean([(maps[k][r] >= t).mean() for k, r in region_list])
        fprs.append(fp / neg_total)
        pros.append(pro)
    fprs, pros = np.array(fprs), np.array(pros)
    return metrics._area_to(fprs, pros, fpr_limit) / fpr_limit


@pytest.mark.parametrize("seed", [0, 5])
def test_aupro_matches_slow_exact_reference(seed):
    masks, maps = _blob_masks(seed, SHAPES)
    masks[1][3:9, 20:30] = 1
    masks[1][20:22, 2:4] = 1  # a tiny second region in the same image
    ref = _aupro_exact(masks, maps)
    got = metrics.aupro(masks, maps)
    assert 0.0 < ref < 1.0
    assert got == pytest.approx(ref, abs=2e-3)
    assert metrics.aupro(masks, maps, fpr_limit=0.05) == pytest.approx(
        _aupro_exact(masks, maps, 0.05), abs=3e-3
    )


def test_aupro_perfect_and_inverted_maps():
    masks, _ = _blob_masks(7, SHAPES)
    masks[0][2:8, 2:8] = 1
    perfect = [
        m.astype(np.float32) + 0.01 * np.random.default_rng(0).random(m.shape) for m in masks
    ]
    assert metrics.aupro(masks, perfect) == pytest.approx(1.0)
    inverted = [1.0 - p for p in perfect]
    assert metrics.aupro(masks, inverted) == pytest.approx(0.0, abs=1e-6)


def test_evaluate_combines_everything_and_handles_missing_masks():
    masks, maps = _blob_masks(8, SHAPES * 2)
    masks[0][4:12, 4:12] = 1
    labels = np.array([int(m.any()) for m in masks])
    preds = [Prediction(anomaly_map=a, score=float(a.max())) for a in maps]
    # good images without a mask imply an all-zero mask
    given = [m if lab else None for m, lab in zip(masks, labels, strict=True)]
    ev = metrics.evaluate(preds, labels, given)
    scores = np.array([p.score for p in preds])
    assert ev.image_auroc == pytest.approx(roc_auc_score(labels, scores))
    assert ev.pixel_auroc == pytest.approx(metrics.pixel_auroc(masks, maps))
    assert ev.aupro == pytest.approx(metrics.aupro(masks, maps))
    assert ev.f1_max == pytest.approx(metrics.f1_max(labels, scores).f1)
    assert (ev.n_images, ev.n_defective, ev.n_pixel_images) == (8, int(labels.sum()), 8)
    # a defective image without a mask is left out of the pixel metrics only
    given[0] = None
    ev2 = metrics.evaluate(preds, labels, given)
    assert ev2.n_pixel_images == 7 and ev2.image_auroc == ev.image_auroc
    # no ground truth at all: pixel metrics undefined, JSON-safe dict
    ev3 = metrics.evaluate(preds, labels, None)
    assert math.isnan(ev3.pixel_auroc) and math.isnan(ev3.aupro)
    d = ev3.to_dict()
    assert d["pixel_auroc"] is None and d["n_images"] == 8
    json.dumps(d, allow_nan=False)


def test_image_auroc_per_type_against_all_good():
    from core.evaluate.metrics import image_auroc_per_type

    labels = [0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.9, 0.8, 0.25, 0.05]
    types = ["good", "good", "good", "crack", "crack", "stain", "stain"]
    per = image_auroc_per_type(labels, scores, types)
    assert list(per) == ["crack", "stain"]
    assert per["crack"] == 1.0  # both cracks above every good image
    # stain 0.25 beats 2 of 3 good images, 0.05 none: (2 + 0) / 6
    assert per["stain"] == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="one entry per image"):
        image_auroc_per_type(labels, scores, types[:-1])
