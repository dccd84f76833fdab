"""False alarms and escapes at one threshold, overall and per test type."""

from __future__ import annotations

import json
import math

import pytest

from core.errors import EvaluationError
from core.evaluate.operating_point import operating_point

LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 1]
SCORES = [0.1, 0.2, 0.6, 0.3, 0.9, 0.4, 0.7, 0.2, 0.8]
TYPES = ["good"] * 4 + ["crack", "crack", "crack", "stain", "stain"]


def test_counts_false_alarms_and_escapes_at_the_threshold():
    op = operating_point(LABELS, SCORES, 0.5, TYPES)
    assert (op.good.n, op.good.wrong) == (4, 1)  # 0.6 is a false alarm
    assert (op.defective.n, op.defective.wrong) == (5, 2)  # 0.4 and 0.2 escape
    assert op.false_alarm_rate == pytest.approx(0.25)
    assert op.escape_rate == pytest.approx(0.4)
    assert list(op.per_type) == ["crack", "good", "stain"]
    assert (op.per_type["crack"].n, op.per_type["crack"].wrong) == (3, 1)
    assert (op.per_type["stain"].n, op.per_type["stain"].wrong) == (2, 1)
    assert op.good_types == ("good",)


def test_a_score_equal_to_the_threshold_is_ng():
    op = operating_point([0, 1], [0.5, 0.5], 0.5)
    assert op.good.wrong == 1 and op.defective.wrong == 0
    assert op.per_type == {}


def test_to_dict_is_json_with_named_counts():
    d = operating_point(LABELS, SCORES, 0.5, TYPES).to_dict()
    json.dumps(d)
    assert d["false_alarms"] == 1 and d["n_good"] == 4 and d["escapes"] == 2
    assert d["per_type"]["good"] == {"n": 4, "false_alarms": 1, "rate": 0.25}
    assert d["per_type"]["stain"] == {"n": 2, "escapes": 1, "rate": 0.5}


def test_no_defective_image_leaves_the_escape_rate_undefined():
    op = operating_point([0, 0], [0.1, 0.9], 0.5)
    assert math.isnan(op.escape_rate) and op.to_dict()["escape_rate"] is None
    assert op.false_alarm_rate == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("labels", "scores", "threshold", "types"),
    [
        ([0, 1], [0.1], 0.5, None),
        ([0, 2], [0.1, 0.2], 0.5, None),
        ([0, 1], [0.1, float("nan")], 0.5, None),
        ([0, 1], [0.1, 0.2], float("inf"), None),
        ([0, 1], [0.1, 0.2], "x", None),
        ([0, 1], [0.1, 0.2], 0.5, ["good"]),
    ],
)
def test_bad_input_is_refused(labels, scores, threshold, types):
    with pytest.raises(EvaluationError):
        operating_point(labels, scores, threshold, types)
