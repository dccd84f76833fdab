"""The data-kind rule (surface or object, grey or colour) and the registry's proposal."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from core.data.images import good_image_paths, load_image
from core.data.kind import SAMPLE, data_kind, kind_from_votes
from core.demo import demo_root
from core.errors import DatasetError
from core.registry import MethodSpec, get_method, propose_method, register, unregister
from tests.core.data.test_foreground import object_image, texture_image


def test_coloured_objects_on_a_plain_background_are_objects():
    rng = np.random.default_rng(0)
    kind = data_kind([object_image(rng)[0] for _ in range(8)])
    assert (kind.kind, kind.colour, kind.objects, kind.sampled) == ("object", True, 8, 8)
    assert kind.label == "colour object"
    assert kind.reason == "a plain background round an object in 8 of 8 sampled images"


def test_a_full_frame_grey_texture_is_a_surface():
    rng = np.random.default_rng(1)
    kind = data_kind([texture_image(rng) for _ in range(6)])
    assert (kind.kind, kind.colour, kind.objects) == ("surface", False, 0)
    assert kind.label == "grey surface"
    assert "6 of 6 sampled images" in kind.reason


def test_the_demo_set_is_a_surface_and_keeps_draem():
    images = [load_image(p) for p in good_image_paths(demo_root())[:SAMPLE]]
    kind = data_kind(images)
    assert kind.kind == "surface" and kind.sampled == SAMPLE
    assert propose_method(kind.kind)[0] == get_method("draem").name


def test_only_the_first_images_are_sampled_and_few_objects_stay_a_surface():
    rng = np.random.default_rng(2)
    objects = [object_image(rng)[0] for _ in range(3)]
    kind = data_kind(objects + [texture_image(rng)] * 3, n=4)
    assert kind.sampled == 4 and kind.objects == 3 and kind.kind == "object"  # 3 >= 0.75 * 4
    assert kind_from_votes([True, True, False, False], [True] * 4).kind == "surface"
    assert kind_from_votes([True], [False]).colour  # one colour image: colour data
    with pytest.raises(DatasetError):
        data_kind([])


def test_the_registry_proposes_the_measured_method_per_kind():
    method, reason = propose_method("object")
    assert method == get_method("patchcore").name and "AUROC" in reason and "docs/" in reason
    method, reason = propose_method("surface")
    assert method == get_method("draem").name and "0.893" in reason and "magnetic_tile" in reason
    method, reason = propose_method("unmeasured")
    assert method == "draem" and "no method was measured" in reason


def test_a_new_method_declares_its_kinds_in_its_spec(monkeypatch):
    spec = get_method("draem")
    toy = MethodSpec(
        name="toy",
        label="Toy",
        config_cls=spec.config_cls,
        fit=spec.fit,
        from_checkpoint=spec.from_checkpoint,
        default_config=spec.default_config,
        title="Toy",
        proposed_for={"surface": "later than DRAEM", "x-ray": "measured on x-rays"},
    )
    monkeypatch.setitem(sys.modules, "toy_kind_module", types.SimpleNamespace(SPEC=toy))
    register(toy, "toy_kind_module")
    try:
        assert propose_method("surface")[0] == "draem"  # the first registered one wins
        assert propose_method("x-ray") == ("toy", "measured on x-rays")
    finally:
        unregister("toy")
