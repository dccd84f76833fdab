"""Tests of core.simulate.textures: every source, folder handling (DTD/flat/corrupt/empty), augmentations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.config import SimulatorConfig
from core.errors import ConfigError, DatasetError
from core.simulate.textures import (
    AUGMENTATIONS,
    BuiltinSource,
    ColourSource,
    FolderSource,
    augment_texture,
    make_source,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _write_png(path, seed: int, size=(40, 30)) -> None:
    img = np.random.default_rng(seed).integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _texture(seed: int = 0, size=(48, 64)) -> np.ndarray:
    return BuiltinSource().sample(_rng(seed), size)


# ------------------------------------------------------------------ builtin / colour
@pytest.mark.parametrize("family", BuiltinSource.families)
def test_builtin_family_shape_and_content(family):
    src = BuiltinSource()
    tex = src.sample(_rng(1), (50, 70), family=family)
    assert tex.shape == (50, 70, 3) and tex.dtype == np.uint8
    assert tex.std() > 1.0  # a texture, not a flat patch
    np.testing.assert_array_equal(tex, src.sample(_rng(1), (50, 70), family=family))
    assert not np.array_equal(tex, src.sample(_rng(2), (50, 70), family=family))


def test_builtin_has_several_families_and_random_choice_covers_them():
    assert len(BuiltinSource.families) >= 5
    src = BuiltinSource(max_gen=32)
    rng = _rng(0)
    textures = [src.sample(rng, (32, 32)) for _ in range(30)]
    means = {tuple(np.round(t.reshape(-1, 3).mean(0))) for t in textures}
    assert len(means) == 30  # all different
    with pytest.raises(ConfigError, match="unknown texture family"):
        src.sample(rng, (32, 32), family="plaid")
    with pytest.raises(ConfigError, match="max_gen"):
        BuiltinSource(max_gen=4)


def test_colour_source_homogeneous_and_random():
    src = ColourSource()
    rng = _rng(3)
    a, b = src.sample(rng, (20, 30)), src.sample(rng, (20, 30))
    assert a.shape == (20, 30, 3) and a.dtype == np.uint8
    assert (a == a[0, 0]).all() and (b == b[0, 0]).all()
    assert not np.array_equal(a[0, 0], b[0, 0])


# ------------------------------------------------------------------ folder
def test_folder_source_dtd_layout_skips_corrupt(tmp_path, caplog):
    _write_png(tmp_path / "banded" / "banded_0001.png", 1)
    _write_png(tmp_path / "dotted" / "dotted_0001.png", 2)
    (tmp_path / "dotted" / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "notes.txt").write_text("ignored")
    src = FolderSource(tmp_path)
    assert len(src.paths) == 3  # the .txt is not an image
    rng = _rng(0)
    samples = [src.sample(rng, (24, 32)) for _ in range(20)]
    assert all(s.shape == (24, 32, 3) and s.dtype == np.uint8 for s in samples)
    assert any("broken.jpg" in r.getMessage() for r in caplog.records)
    assert [src.paths[i].name for i in src.bad] == ["broken.jpg"]
    kinds = {s.tobytes() for s in samples}
    assert len(kinds) == 2  # both readable files are used, the broken one never


def test_folder_source_flat_reproducible_and_rgb(tmp_path):
    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 2] = 200  # pure red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.bmp"), bgr)
    _write_png(tmp_path / "noise.png", 5)
    src = FolderSource(tmp_path)
    a = [src.sample(_rng(9), (16, 16)) for _ in range(3)]
    assert all(np.array_equal(a[0], x) for x in a)
    red = [s for s in (src.sample(_rng(k), (16, 16)) for k in range(20)) if (s == s[0, 0]).all()]
    assert red and tuple(red[0][0, 0]) == (200, 0, 0)  # RGB order
    red[0][:] = 0  # callers get copies: the cache is not corrupted
    assert any(tuple(src.sample(_rng(k), (16, 16))[0, 0]) == (200, 0, 0) for k in range(20))


def test_folder_source_cache_is_bounded(tmp_path):
    for k in range(6):
        _write_png(tmp_path / f"t{k}.png", k)
    src = FolderSource(tmp_path, cache_mb=2 * 32 * 32 * 3 / 2**20)  # room for two 32x32 textures
    rng = _rng(0)
    for _ in range(30):
        src.sample(rng, (32, 32))
    assert src._cached <= 2 * 32 * 32 * 3 + 16 * 16 * 3
    assert len(src._cache) <= 3


def test_folder_source_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        FolderSource(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no texture images"):
        FolderSource(tmp_path)
    (tmp_path / "a.png").write_bytes(b"garbage")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="can be read"):
        FolderSource(tmp_path)


def test_make_source(tmp_path):
    assert isinstance(make_source(SimulatorConfig()), BuiltinSource)
    assert isinstance(make_source(SimulatorConfig(source="colour")), ColourSource)
    _write_png(tmp_path / "x.png", 0)
    src = make_source(SimulatorConfig(source="folder", source_dir=str(tmp_path)))
    assert isinstance(src, FolderSource) and src.folder == tmp_path
    with pytest.raises(ConfigError, match="source_dir"):
        SimulatorConfig(source="folder")


# ------------------------------------------------------------------ augmentations
def test_official_list_of_ten_ops():
    assert len(AUGMENTATIONS) == 10


@pytest.mark.parametrize("k", range(10))
def test_each_op_keeps_shape_and_dtype(k):
    img = _texture(k)
    out = AUGMENTATIONS[k](img.copy(), _rng(k))
    assert out.shape == img.shape and out.dtype == np.uint8


def test_op_semantics():
    img = _texture(3)
    names = {f.__name__.lstrip("_"): f for f in AUGMENTATIONS}
    np.testing.assert_array_equal(names["invert"](img, _rng()), 255 - img)
    post = names["posterize"](img, _rng(1))
    masks = [np.uint8((0xFF << (8 - b)) & 0xFF) for b in range(1, 9)]
    assert any(np.array_equal(post, img & m) for m in masks)  # only the low bits are dropped
    gam = names["gamma"](np.array([[[0, 128, 255]]], np.uint8), _rng(2))
    assert gam[0, 0, 0] == 0 and gam[0, 0, 2] == 255  # gamma keeps the end points
    eq = names["equalize"](img, _rng())
    assert eq.max() == 255  # histogram spread over the full range
    ac = names["autocontrast"](img // 4 + 60, _rng())
    assert ac.min() == 0 and ac.max() == 255
    rot = names["affine_rotate"](np.full((40, 40, 3), 200, np.uint8), _rng(2))
    assert rot[20, 20, 0] == 200  # centre kept; corners may be zero-filled


def test_augment_texture_draws_distinct_ops_and_is_seeded():
    img = _texture(4)
    a = augment_texture(img, _rng(5), 3)
    b = augment_texture(img, _rng(5), 3)
    assert a.shape == img.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a is not img
    same = augment_texture(img, _rng(5), 0)
    np.testing.assert_array_equal(same, img)
    assert same is not img
    outs = {augment_texture(img, _rng(s), 3).tobytes() for s in range(10)}
    assert len(outs) >= 8
    with pytest.raises(ConfigError, match="n_augmentations"):
        augment_texture(img, _rng(), 11)


def test_augment_texture_applies_n_distinct_ops(monkeypatch):
    import core.simulate.textures as textures

    calls: list[int] = []

    def recorder(k):
        def op(img, rng):
            calls.append(k)
            return img

        return op

    monkeypatch.setattr(textures, "AUGMENTATIONS", tuple(recorder(k) for k in range(10)))
    for seed in range(20):
        calls.clear()
        augment_texture(_texture(0, (8, 8)), _rng(seed), 3)
        assert len(calls) == 3 and len(set(calls)) == 3
    calls.clear()
    augment_texture(_texture(0, (8, 8)), _rng(0), 10)
    assert sorted(calls) == list(range(10))
