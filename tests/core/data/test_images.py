"""Image loading, mask loading, folder listing and MVTec reading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data.images import (
    IMAGE_EXTENSIONS,
    expand_paths,
    good_image_paths,
    is_mvtec,
    list_images,
    load_image,
    load_images,
    load_mask,
    read_mvtec,
)
from core.errors import Cancelled, DatasetError, ImageLoadError


def _write(path: Path, img: np.ndarray) -> Path:
    """Write with cv2.imencode (handles non-ASCII paths); img in OpenCV channel order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, img)
    assert ok
    buf.tofile(path)
    return path


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_formats_round_trip_rgb(tmp_path, rgb, ext):
    p = _write(tmp_path / f"img{ext}", rgb[:, :, ::-1])  # file holds BGR -> we get RGB back
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (37, 53, 3)
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_loads_close_to_original(tmp_path, ext):
    img = np.zeros((40, 64, 3), np.uint8)
    img[:, :, 0] = 200  # pure red in RGB
    out = load_image(_write(tmp_path / f"a{ext}", img[:, :, ::-1]))
    assert out.shape == (40, 64, 3)
    assert abs(float(out[..., 0].mean()) - 200) < 4
    assert float(out[..., 1:].mean()) < 4


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = np.arange(30 * 20, dtype=np.uint32).reshape(30, 20).astype(np.uint8)
    out = load_image(_write(tmp_path / "g.png", g))
    assert out.shape == (30, 20, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_scaled_to_8bit(tmp_path, ext):
    g16 = np.array([[0, 257, 65535], [32896, 1000, 65280]], dtype=np.uint16)
    out = load_image(_write(tmp_path / f"g16{ext}", g16))
    np.testing.assert_array_equal(out[..., 0], [[0, 1, 255], [128, 4, 254]])
    rgb16 = np.dstack([g16, g16 // 2, g16 // 4])
    out = load_image(_write(tmp_path / f"c16{ext}", rgb16))  # BGR in file
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 2], [[0, 1, 255], [128, 4, 254]])


def test_rgba_composited_on_black(tmp_path):
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 2] = 200  # red
    bgra[..., 3] = 255
    bgra[0, 0, 3] = 0  # fully transparent
    bgra[1, 1, 3] = 128  # half
    out = load_image(_write(tmp_path / "a.png", bgra))
    assert out.shape == (4, 5, 3)
    assert tuple(out[2, 2]) == (200, 0, 0)
    assert tuple(out[0, 0]) == (0, 0, 0)
    assert out[1, 1, 0] == 100


def _png_gray_alpha(path: Path, ga: np.ndarray) -> Path:
    """Write an 8-bit gray+alpha PNG (colour type 4) by hand: cv2 cannot write one."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    h, w, _ = ga.shape
    raw = b"".join(b"\x00" + ga[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 4, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def test_gray_alpha_png(tmp_path):
    ga = np.zeros((6, 7, 2), np.uint8)
    ga[..., 0] = 100
    ga[..., 1] = 255
    ga[0, 0, 1] = 0
    out = load_image(_png_gray_alpha(tmp_path / "ga.png", ga))
    assert out.shape == (6, 7, 3)
    assert tuple(out[3, 3]) == (100, 100, 100) and tuple(out[0, 0]) == (0, 0, 0)


def test_float_tiff(tmp_path):
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = load_image(_write(tmp_path / "f.tif", f))
    np.testing.assert_array_equal(out[..., 0], [[0, 128, 255]])


@pytest.mark.parametrize("shape", [(1, 1), (1, 999), (513, 7), (17, 1031)])
def test_odd_sizes(tmp_path, shape):
    g = np.full(shape, 77, np.uint8)
    out = load_image(_write(tmp_path / "odd.png", g))
    assert out.shape == (*shape, 3)


def test_non_ascii_path(tmp_path, rgb):
    p = _write(tmp_path / "Prüfung_欠陥" / "Bild ä.png", rgb[:, :, ::-1])
    np.testing.assert_array_equal(load_image(p), rgb)


def _bad_files(tmp_path: Path, rgb: np.ndarray) -> dict[str, Path]:
    good_png = cv2.imencode(".png", rgb)[1].tobytes()
    good_jpg = cv2.imencode(".jpg", rgb)[1].tobytes()
    files = {
        "empty": b"",
        "truncated_png": good_png[: len(good_png) // 2],
        "truncated_jpg": good_jpg[: len(good_jpg) - 40],
        "text": b"this is not an image\n" * 10,
    }
    out = {}
    for name, data in files.items():
        p = tmp_path / f"{name}{'.jpg' if 'jpg' in name else '.png'}"
        p.write_bytes(data)
        out[name] = p
    out["missing"] = tmp_path / "does_not_exist.png"
    return out


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty", "empty"),
        ("truncated_png", "corrupt or truncated PNG"),
        ("truncated_jpg", "corrupt or truncated JPEG"),
        ("text", "not an image"),
        ("missing", "not found"),
    ],
)
def test_bad_files_raise_readable_error(tmp_path, rgb, name, words):
    p = _bad_files(tmp_path, rgb)[name]
    with pytest.raises(ImageLoadError) as info:
        load_image(p)
    assert words in info.value.reason
    assert info.value.path == str(p)
    assert str(p) in str(info.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_load_images_skips_failures_and_keeps_order(tmp_path, rgb):
    bad = _bad_files(tmp_path, rgb)
    a = _write(tmp_path / "a.png", rgb)
    b = _write(tmp_path / "b.bmp", rgb)
    paths = [bad["empty"], a, bad["text"], b, bad["missing"]]
    seen = []
    loaded, failed = load_images(paths, on_progress=seen.append)
    assert [p for p, _ in loaded] == [str(a), str(b)]
    assert all(img.shape == (37, 53, 3) for _, img in loaded)
    assert [f.path for f in failed] == [str(bad["empty"]), str(bad["text"]), str(bad["missing"])]
    assert all(f.reason for f in failed)
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == 5


def test_load_images_cancel(tmp_path, rgb):
    paths = [_write(tmp_path / f"{i}.png", rgb) for i in range(3)]
    with pytest.raises(Cancelled):
        load_images(paths, should_stop=lambda: True)


def test_load_mask(tmp_path):
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 255
    got = load_mask(_write(tmp_path / "m.png", m))
    assert got.dtype == np.uint8 and set(np.unique(got)) == {0, 1}
    np.testing.assert_array_equal(got, m // 255)
    # 0/1 masks and colour masks work too; shape resizes with nearest neighbour
    np.testing.assert_array_equal(load_mask(_write(tmp_path / "m01.png", m // 255)), m // 255)
    colour = np.dstack([m, np.zeros_like(m), np.zeros_like(m)])
    np.testing.assert_array_equal(load_mask(_write(tmp_path / "c.png", colour)), m // 255)
    big = load_mask(tmp_path / "m.png", shape=(20, 24))
    assert big.shape == (20, 24) and big.sum() == 4 * m.sum() // 255
    with pytest.raises(ImageLoadError):
        load_mask(tmp_path / "nope.png")


def test_list_images_recursive_sorted_filtered(tmp_path, rgb):
    for rel in ["b.png", "a.JPG", "sub/c.tif", "sub/z/d.bmp", ".hidden.png", ".git/e.png"]:
        _write(tmp_path / rel, rgb)
    (tmp_path / "notes.txt").write_text("x")
    got = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert got == ["a.JPG", "b.png", "sub/c.tif", "sub/z/d.bmp"]
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"} == set(IMAGE_EXTENSIONS)
    with pytest.raises(DatasetError, match="not found"):
        list_images(tmp_path / "missing")
    with pytest.raises(DatasetError, match="not a folder"):
        list_images(tmp_path / "b.png")


def test_expand_paths(tmp_path, rgb):
    a = _write(tmp_path / "dir" / "a.png", rgb)
    b = _write(tmp_path / "dir" / "b.png", rgb)
    c = _write(tmp_path / "c.png", rgb)
    txt = tmp_path / "x.txt"
    txt.write_text("x")
    missing = tmp_path / "missing.png"
    got = expand_paths([c, tmp_path / "dir", a, txt, missing])
    assert got == [c, a, b, txt, missing]


def _mvtec_tree(root: Path, rgb: np.ndarray) -> None:
    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[5:10, 5:10] = 255
    for i in range(3):
        _write(root / "train" / "good" / f"{i:03d}.png", rgb)
    _write(root / "test" / "good" / "000.png", rgb)
    for t in ("scratch", "crack"):
        for i in range(2):
            _write(root / "test" / t / f"{i:03d}.png", rgb)
            if not (t == "crack" and i == 1):  # one mask missing
                _write(root / "ground_truth" / t / f"{i:03d}_mask.png", mask)


def test_read_mvtec(tmp_path, rgb):
    _mvtec_tree(tmp_path, rgb)
    assert is_mvtec(tmp_path)
    cat = read_mvtec(tmp_path)
    assert [p.name for p in cat.train] == ["000.png", "001.png", "002.png"]
    assert [(t.defect_type, t.path.name) for t in cat.test] == [
        ("crack", "000.png"),
        ("crack", "001.png"),
        ("good", "000.png"),
        ("scratch", "000.png"),
        ("scratch", "001.png"),
    ]
    assert cat.defect_types == ["crack", "scratch"]
    good = [t for t in cat.test if not t.is_anomalous]
    assert len(good) == 1 and good[0].mask_path is None
    crack1 = cat.test[1]
    assert crack1.is_anomalous and crack1.mask_path is None
    s0 = cat.test[3]
    assert s0.mask_path == tmp_path / "ground_truth" / "scratch" / "000_mask.png"
    assert load_mask(s0.mask_path).sum() == 25


def test_good_image_paths(tmp_path, rgb):
    _mvtec_tree(tmp_path / "cat", rgb)
    assert len(good_image_paths(tmp_path / "cat")) == 3  # train/good only
    plain = tmp_path / "plain"
    for i in range(4):
        _write(plain / f"{i}.jpg", rgb)
    assert len(good_image_paths(plain)) == 4
    assert not is_mvtec(plain)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        good_image_paths(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not found"):
        good_image_paths(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not an MVTec"):
        read_mvtec(plain)
    only_test = tmp_path / "only_test"
    _write(only_test / "test" / "good" / "0.png", rgb)
    with pytest.raises(DatasetError, match="train/good"):
        good_image_paths(only_test)


def test_split_held_out():
    from core.data.images import split_held_out

    train, held = split_held_out(list(range(80)))
    assert len(held) == 8 and len(train) == 72
    assert sorted(train + held) == list(range(80)) and held[0] == 0 and held[-1] == 79
    assert split_held_out(list(range(9))) == (list(range(9)), [])  # too few: keep all
    train, held = split_held_out(list(range(1000)))
    assert len(held) == 20 and len(set(held)) == 20


def test_data_summary_is_one_shape_everywhere():
    from core.data.images import data_summary

    grey = np.full((20, 30, 3), 7, np.uint8)
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 0] = 200
    s = data_summary([grey, grey, colour], "somewhere")
    assert s == {"n_images": 3, "sizes": ["30x20"], "channels": "mixed", "source": "somewhere"}
    assert data_summary([grey])["channels"] == "gray"
    assert data_summary([colour, np.zeros((5, 9, 3), np.uint8) + [1, 2, 3]])["sizes"] == [
        "30x20",
        "9x5",
    ]
