"""Qt-free proposal: from the scan's votes to a method, and the user's choice kept."""

from __future__ import annotations

import json

import numpy as np

from app.components.imagescan import ImageInfo
from app.components.project import Project, TrainingSettings, open_project
from app.components.proposal import follow, propose
from core.registry import get_method

THUMB = np.zeros((4, 4, 3), np.uint8)


def _infos(votes, gray=False):
    return [ImageInfo(f"/x/{i}.png", 8, 8, gray, THUMB, v) for i, v in enumerate(votes)]


def test_the_proposal_follows_the_votes_of_the_sample():
    assert propose([]) is None and propose(_infos([None, None])) is None
    p = propose(_infos([True] * 7 + [False, None]))
    assert p.method == get_method("patchcore").name and p.kind.label == "colour object"
    assert (p.kind.objects, p.kind.sampled) == (7, 8)  # the unvoted image is not sampled
    assert "7 of 8 sampled images" in p.text() and "(you chose" not in p.text(p.method)
    q = propose(_infos([False] * 20, gray=True), n=16)
    assert q.method == get_method("draem").name and q.kind.sampled == 16
    assert "grey surface" in q.text("patchcore") and "(you chose PatchCore)" in q.text("patchcore")


def test_follow_keeps_an_explicit_choice():
    p = propose(_infos([True] * 4))
    s = TrainingSettings()
    assert follow(s, p).method == p.method and follow(s, None) == s
    chosen = TrainingSettings(method=get_method("flow").name, method_chosen=True)
    assert follow(chosen, p) == chosen


def test_the_choice_is_saved_and_old_files_keep_a_non_default_method(tmp_path):
    p = Project(tmp_path / "p")
    p.set_training(TrainingSettings(method_chosen=True))
    p.save()
    assert open_project(tmp_path / "p").training.method_chosen
    data = json.loads((tmp_path / "p" / "project.json").read_text())
    for method, chosen in (("patchcore", True), ("draem", False)):
        data["training"] = {"method": method}  # written before the proposal existed
        (tmp_path / "p" / "project.json").write_text(json.dumps(data))
        assert open_project(tmp_path / "p").training.method_chosen is chosen
