"""Threshold rules, including the no-defect case where F1-based rules cannot apply."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import EvaluationError
from core.evaluate import thresholds as th
from core.evaluate.metrics import confusion_at, f1_max


def test_from_good_scores_percentile_and_false_alarm_rate():
    rng = np.random.default_rng(0)
    good = rng.normal(0.2, 0.05, 1000)
    s = th.from_good_scores(good, percentile=99.0)
    assert s.rule == "good-percentile"
    assert s.value == pytest.approx(np.percentile(good, 99.0))
    n_ng = int((good >= s.value).sum())
    assert n_ng == 10  # 1 % of 1000 good images are NG
    assert "1000 good" in s.detail and f"{n_ng} of them" in s.detail
    stricter = th.from_good_scores(good, percentile=99.0, margin=0.05)
    assert stricter.value == pytest.approx(s.value + 0.05)
    assert "margin" in stricter.detail


def test_from_good_scores_works_without_any_defect_and_with_one_image():
    one = th.from_good_scores([0.42])
    assert one.value > 0.42 and one.value == pytest.approx(0.42)
    assert confusion_at([0], [0.42], one.value).fp == 0  # the only good image stays OK
    top = th.from_good_scores([0.1, 0.3, 0.2], percentile=100)
    assert confusion_at([0, 0, 0], [0.1, 0.3, 0.2], top.value).fp == 0
    assert th.from_good_scores(np.full(5, 0.7), percentile=50).value > 0.7  # all tied


def test_from_good_scores_errors():
    with pytest.raises(EvaluationError, match="at least one good"):
        th.from_good_scores([])
    with pytest.raises(EvaluationError, match="percentile"):
        th.from_good_scores([0.1, 0.2], percentile=101)
    with pytest.raises(EvaluationError, match="NaN"):
        th.from_good_scores([0.1, float("nan")])
    with pytest.raises(EvaluationError, match="margin"):
        th.from_good_scores([0.1], margin=float("inf"))


def test_f1_optimal_reaches_f1_max():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 50)
    scores = rng.normal(size=50) + labels
    s = th.f1_optimal(labels, scores)
    assert s.rule == "f1-optimal"
    best = f1_max(labels, scores)
    assert s.value == best.threshold
    assert confusion_at(labels, scores, s.value).f1 == pytest.approx(best.f1)
    assert "50 labelled" in s.detail


def test_no_missed_defect_is_highest_threshold_with_full_recall():
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.5, 0.65, 0.6, 0.8, 0.9])
    s = th.no_missed_defect(labels, scores)
    assert s.rule == "no-missed-defect" and s.value == 0.6
    c = confusion_at(labels, scores, s.value)
    assert c.fn == 0 and c.fp == 1
    assert confusion_at(labels, scores, np.nextafter(s.value, 1.0)).fn == 1
    assert "1 of 4 good" in s.detail


@pytest.mark.parametrize("rule", [th.f1_optimal, th.no_missed_defect])
def test_label_rules_refuse_when_no_defect_exists(rule):
    with pytest.raises(EvaluationError, match="defective"):
        rule([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(EvaluationError, match="labels"):
        rule([0, 1], [0.1])
    with pytest.raises(EvaluationError, match="0 \\(good\\) or 1"):
        rule([0, 3], [0.1, 0.2])


def test_pixel_from_good_maps_exact_and_subsampled():
    rng = np.random.default_rng(2)
    maps = [rng.random((h, w), dtype=np.float32) for h, w in [(30, 40), (64, 20), (17, 90)]]
    exact = th.pixel_from_good_maps(maps, percentile=99.0)
    allpx = np.concatenate([m.ravel() for m in maps])
    assert exact.value == pytest.approx(np.percentile(allpx, 99.0))
    assert exact.rule == "pixel-good-percentile" and "sampled" not in exact.detail
    sub = th.pixel_from_good_maps(maps, percentile=99.0, max_pixels=1500)
    assert sub.value == pytest.approx(exact.value, abs=0.01)
    assert sub == th.pixel_from_good_maps(maps, percentile=99.0, max_pixels=1500)
    assert "sampled" in sub.detail
    with pytest.raises(EvaluationError, match="at least one"):
        th.pixel_from_good_maps([])
    with pytest.raises(EvaluationError, match="NaN"):
        th.pixel_from_good_maps([np.full((3, 3), np.nan, np.float32)])


# ----------------------------------------------------------------- calibrate_from_good
def _far(threshold: float, new_good: np.ndarray) -> float:
    return float((new_good >= threshold).mean())


def test_calibrated_threshold_holds_on_new_good_images_where_the_percentile_does_not():
    """10 held-out good scores, then many new good images of the same kind (and of a
    slightly shifted kind): the percentile rule calls about 1 in 11 of them NG, the
    calibrated rule almost none."""
    rng = np.random.default_rng(1)
    new = rng.normal(0.0, 1.0, 20000)
    shifted = new + 1.0  # e.g. another lot: one standard deviation brighter scores
    far_pct, far_cal, far_shift = [], [], []
    for _ in range(200):
        held = rng.normal(0.0, 1.0, 10)
        far_pct.append(_far(th.from_good_scores(held, 99.0).value, new))
        cal = th.calibrate_from_good(held)
        far_cal.append(_far(cal.value, new))
        far_shift.append(_far(cal.value, shifted))
    assert np.mean(far_pct) > 0.05  # the small-sample percentile is about the maximum
    assert np.mean(far_cal) < 0.01
    assert np.mean(far_shift) < 0.06


def test_calibrated_threshold_passes_every_good_score_and_says_how():
    good = [0.10, 0.12, 0.11, 0.13, 0.12, 0.14, 0.11, 0.12]
    s = th.calibrate_from_good(good)
    assert s.rule == "good-max-plus-spread"
    assert all(g < s.value for g in good)
    spread = th.robust_spread(good)
    assert s.value == pytest.approx(max(good) + th.SPREAD_MARGIN * spread)
    assert "highest of 8" in s.detail and "robust spread" in s.detail
    assert "outlying" not in s.detail
    assert th.calibrate_from_good(good, k=0).value > max(good)  # k=0: just above the highest


def test_one_odd_good_image_neither_inflates_the_margin_nor_drags_the_threshold_up():
    rng = np.random.default_rng(2)
    good = rng.normal(1.0, 0.1, 15)
    odd = np.append(good, 5.0)  # e.g. a dirty part among the held-out images
    assert th.robust_spread(odd) == pytest.approx(th.robust_spread(good), rel=0.3)
    clean, dragged = th.calibrate_from_good(good), th.calibrate_from_good(odd)
    assert dragged.value < 2.0  # a defect scoring 2.0 is still caught
    assert dragged.value == pytest.approx(clean.value, abs=0.3)
    assert "1 outlying good score(s)" in dragged.detail


def test_the_spread_follows_the_upper_tail():
    rng = np.random.default_rng(3)
    skewed = rng.lognormal(0.0, 0.8, 2000)  # anomaly scores: a long upper tail
    upper = th.robust_spread(skewed)
    lower_mad = 1.4826 * float(np.median(np.abs(skewed - np.median(skewed))))
    assert upper > 1.2 * lower_mad


@pytest.mark.parametrize("scores", [[0.3], [0.3, 0.3, 0.3], [0.0, 0.0]])
def test_calibration_of_degenerate_scores_still_has_a_margin(scores):
    s = th.calibrate_from_good(scores)
    assert s.value > max(scores) and np.isfinite(s.value)


@pytest.mark.parametrize(
    ("scores", "k"), [([], 3.0), ([0.1, float("nan")], 3.0), ([0.1], -1.0), ([0.1], float("inf"))]
)
def test_calibration_refuses_bad_input(scores, k):
    with pytest.raises(EvaluationError):
        th.calibrate_from_good(scores, k)
