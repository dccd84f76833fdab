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
