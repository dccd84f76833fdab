"""Anomaly sources (textures pasted into the Perlin mask) and their random augmentation.

* :class:`BuiltinSource` -- procedural textures (fractal noise in random colour
  maps, stripes, cellular blobs, gradients, scratches, ellipses, grain); needs no
  download and stands in for DTD [paper].
* :class:`ColourSource` -- one homogeneous random colour per sample (the [paper]'s
  DTD-free variant).
* :class:`FolderSource` -- images from a folder: DTD layout ``*/*.jpg`` ([official])
  or a flat folder; decoded + resized textures are cached (LRU, bounded bytes).
* :func:`augment_texture` -- ``n`` distinct ops out of the [official] list of 10
  imgaug augmenters, re-implemented with cv2/numpy.

All images are RGB uint8 (H, W, 3); all randomness comes from the given
:class:`numpy.random.Generator`.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from core.config import SimulatorConfig
from core.data.images import IMAGE_EXTENSIONS, list_images, load_image
from core.errors import ConfigError, DatasetError, ImageLoadError
from core.simulate.perlin import fractal_perlin_2d

__all__ = [
    "AUGMENTATIONS", "AnomalySource", "BuiltinSource", "ColourSource", "FolderSource",
    "augment_texture", "make_source", "rotate_about_centre",
]  # fmt: skip

log = logging.getLogger(__name__)
Size = tuple[int, int]


# ----------------------------------------------------------------- augmentations
def _lut_apply(img: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """Apply a (256,) or per-channel (3, 256) uint8 lookup table to an RGB uint8 image."""
    if luts.ndim == 1:
        return cv2.LUT(img, luts)
    return cv2.LUT(img, np.ascontiguousarray(luts.T.reshape(256, 1, 3)))


_RAMP = np.arange(256, dtype=np.float32)


def _gamma(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GammaContrast((0.5, 2.0), per_channel=True) [official]: 255 * (x/255)^g per channel."""
    g = rng.uniform(0.5, 2.0, size=3)
    luts = 255.0 * (_RAMP[None] / 255.0) ** g[:, None]
    return _lut_apply(img, np.clip(np.rint(luts), 0, 255).astype(np.uint8))


def _brightness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MultiplyAndAddToBrightness(mul=(0.8, 1.2), add=(-30, 30)) [official].

    imgaug picks a random colour space per image; here always Y of YCrCb (one of its choices).
    """
    mul, add = rng.uniform(0.8, 1.2), rng.uniform(-30, 30)
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    lut = np.clip(np.rint(_RAMP * mul + add), 0, 255).astype(np.uint8)
    ycc[..., 0] = cv2.LUT(ycc[..., 0], lut)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def _sharpness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """pillike.EnhanceSharpness(factor=(0, 2)) [official]: PIL blend of SMOOTH-filtered and original."""
    f = rng.uniform(0.0, 2.0)
    smooth = cv2.filter2D(img, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(img, f, smooth, 1.0 - f, 0.0)


def _hue_saturation(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AddToHueAndSaturation((-50, 50), per_channel=True) [official]: separate hue and sat shifts.

    imgaug maps the value range [-255, 255] onto the full hue circle; OpenCV's
    uint8 hue spans 0..179, hence the ``180/255`` scaling.
    """
    dh, ds = rng.integers(-50, 51, size=2)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hue_lut = ((np.arange(256) + int(round(dh * 180 / 255))) % 180).astype(np.uint8)
    sat_lut = np.clip(np.arange(256) + int(ds), 0, 255).astype(np.uint8)
    hsv[..., 0] = cv2.LUT(hsv[..., 0], hue_lut)
    hsv[..., 1] = cv2.LUT(hsv[..., 1], sat_lut)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _solarize(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Solarize(p=0.5, threshold=(32, 128)) [official]: with prob. 0.5 invert pixels >= threshold."""
    thr = int(rng.integers(32, 129))
    if rng.random() >= 0.5:
        return img
    lut = np.arange(256, dtype=np.uint8)
    lut[thr:] = 255 - lut[thr:]
    return cv2.LUT(img, lut)


def _posterize(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Posterize(nb_bits=(1, 8)) [official]: keep the top ``nb_bits`` bits of each value."""
    bits = int(rng.integers(1, 9))
    return img & np.uint8((0xFF << (8 - bits)) & 0xFF)


def _invert(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert() [official]: 255 - x."""
    return cv2.bitwise_not(img)


def _autocontrast(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """pillike.Autocontrast(cutoff=(0, 20)) [official]: per channel, clip ``cutoff`` % at both ends, stretch."""
    cut = float(rng.integers(0, 21))
    lo, hi = np.percentile(img.reshape(-1, 3), [cut, 100.0 - cut], axis=0)
    scale = 255.0 / np.maximum(hi - lo, 1.0)
    luts = np.clip(np.rint((_RAMP[None] - lo[:, None]) * scale[:, None]), 0, 255)
    luts[hi - lo < 1.0] = _RAMP  # flat channel: unchanged (as PIL)
    return _lut_apply(img, luts.astype(np.uint8))


def _equalize(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """pillike.Equalize() [official]: histogram equalisation of each channel (cv2's variant of PIL's)."""
    return cv2.merge([cv2.equalizeHist(c) for c in cv2.split(img)])


def rotate_about_centre(
    img: np.ndarray, angle: float, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Rotate about the image centre, filling with 0 (imgaug Affine defaults: order 1, cval 0)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    return cv2.warpAffine(
        img, m, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _affine_rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Affine(rotate=(-45, 45)) [official]."""
    return rotate_about_centre(img, rng.uniform(-45.0, 45.0))


#: The [official] list of 10 augmenters, in its order.
AUGMENTATIONS: tuple[Callable[[np.ndarray, np.random.Generator], np.ndarray], ...] = (
    _gamma, _brightness, _sharpness, _hue_saturation, _solarize,
    _posterize, _invert, _autocontrast, _equalize, _affine_rotate,
)  # fmt: skip


def augment_texture(img: np.ndarray, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    """Apply ``n`` distinct ops drawn at random from :data:`AUGMENTATIONS` ([official] ``randAugmenter``).

    Args:
        img: (H, W, 3) uint8 RGB texture.
        rng: random generator (which ops, in which order, and their parameters).
        n: number of ops, 0..10 ([official]: 3).

    Returns:
        (H, W, 3) uint8 RGB, a new array.
    """
    if not 0 <= n <= len(AUGMENTATIONS):
        raise ConfigError(f"n_augmentations must be in [0, {len(AUGMENTATIONS)}], got {n}")
    out = np.ascontiguousarray(img)
    for k in rng.choice(len(AUGMENTATIONS), size=n, replace=False):
        out = AUGMENTATIONS[int(k)](out, rng)
    return out if out is not img else out.copy()


# ----------------------------------------------------------------- sources
class AnomalySource:
    """Where anomaly textures come from. Subclasses implement :meth:`sample`."""

    def sample(self, rng: np.random.Generator, size: Size) -> np.ndarray:
        """Return a texture of ``size`` = (H, W): (H, W, 3) uint8 RGB, determined by ``rng``."""
        raise NotImplementedError


def _rgb(rng: np.random.Generator) -> tuple[int, int, int]:
    """One random RGB colour (ints in 0..255)."""
    r, g, b = (int(c) for c in rng.integers(0, 256, size=3))
    return r, g, b


def _colour_map(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map values ``v`` (float, any range) through a random 2-4 colour gradient -> (H, W, 3) uint8."""
    k = int(rng.integers(2, 5))
    stops = np.sort(rng.uniform(0, 1, size=k))
    stops[0], stops[-1] = 0.0, 1.0
    cols = rng.uniform(0, 255, size=(k, 3))
    lut = np.stack([np.interp(np.linspace(0, 1, 256), stops, cols[:, c]) for c in range(3)], axis=1)
    lo, hi = float(v.min()), float(v.max())
    idx = ((v - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
    return lut.astype(np.uint8)[idx]


def _tex_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    res = (int(2 ** rng.integers(0, 4)), int(2 ** rng.integers(0, 4)))
    v = fractal_perlin_2d(
        (h, w), res, rng, octaves=int(rng.integers(2, 5)), persistence=rng.uniform(0.35, 0.7)
    )
    if rng.random() < 0.3:  # turbulence / ridged variant
        v = np.abs(v)
    return _colour_map(v, rng)


def _tex_stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    theta = rng.uniform(0, math.pi)
    freq = rng.uniform(2, 40) * 2 * math.pi / max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = (xx * math.cos(theta) + yy * math.sin(theta)) * freq
    phase += rng.uniform(0, 8) * fractal_perlin_2d((h, w), (2, 2), rng, octaves=2)  # wobble
    v = np.sin(phase)
    if rng.random() < 0.5:
        v = np.sign(v) * np.abs(v) ** 0.2  # hard-edged stripes
    return _colour_map(v, rng)


def _tex_cells(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Worley-like cellular texture: distance to the nearest random seed point (F1)."""
    seeds = np.full((h, w), 255, np.uint8)
    n = int(rng.integers(8, 200))
    seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
    dist = cv2.distanceTransform(seeds, cv2.DIST_L2, 3)
    return _colour_map(-dist if rng.random() < 0.5 else dist, rng)


def _tex_gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        theta = rng.uniform(0, 2 * math.pi)
        v = xx * math.cos(theta) + yy * math.sin(theta)
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        v = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    v = v / max(float(np.ptp(v)), 1e-6) + 0.15 * fractal_perlin_2d((h, w), (4, 4), rng, octaves=3)
    return _colour_map(v, rng)


def _tex_scratches(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.full((h, w, 3), _rgb(rng), np.uint8)
    for _ in range(int(rng.integers(5, 60))):
        p = rng.integers(0, [w, h], size=(int(rng.integers(2, 6)), 2)).astype(np.int32)
        cv2.polylines(img, [p], False, _rgb(rng), int(rng.integers(1, 5)), cv2.LINE_AA)
    return img


def _tex_blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.full((h, w, 3), _rgb(rng), np.uint8)
    s = max(h, w)
    for _ in range(int(rng.integers(5, 40))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(2, s // 4 + 3)), int(rng.integers(2, s // 4 + 3)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(img, centre, axes, angle, 0, 360, _rgb(rng), -1, cv2.LINE_AA)
    k = int(rng.integers(0, 3)) * 2 + 1
    return cv2.GaussianBlur(img, (k, k), 0) if k > 1 else img


def _tex_grain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = rng.standard_normal((h, w), dtype=np.float32)
    sigma = rng.uniform(0.5, 3.0)
    return _colour_map(cv2.GaussianBlur(noise, (0, 0), sigma), rng)


_FAMILIES = (
    _tex_noise,
    _tex_stripes,
    _tex_cells,
    _tex_gradient,
    _tex_scratches,
    _tex_blobs,
    _tex_grain,
)


class BuiltinSource(AnomalySource):
    """Procedural textures from several families (noise, stripes, cells, gradients, scratches,
    blobs, grain) in random colours -- an anomaly source that needs no download.

    Textures are generated at a random resolution of at most ``max_gen`` pixels per
    side and resized, which keeps generation fast and varies the feature scale.
    """

    families: tuple[str, ...] = tuple(f.__name__.removeprefix("_tex_") for f in _FAMILIES)

    def __init__(self, max_gen: int = 256) -> None:
        if max_gen < 16:
            raise ConfigError(f"max_gen must be >= 16, got {max_gen}")
        self.max_gen = int(max_gen)

    def sample(self, rng: np.random.Generator, size: Size, family: str | None = None) -> np.ndarray:
        """Texture (H, W, 3) uint8 RGB; ``family`` picks one of :attr:`families` (default random)."""
        h, w = size
        if family is None:
            fn = _FAMILIES[int(rng.integers(len(_FAMILIES)))]
        elif family in self.families:
            fn = _FAMILIES[self.families.index(family)]
        else:
            raise ConfigError(f"unknown texture family {family!r}; choose one of {self.families}")
        scale = min(1.0, self.max_gen / max(h, w)) * rng.uniform(0.5, 1.0)
        gh, gw = max(8, round(h * scale)), max(8, round(w * scale))
        tex = fn(rng, gh, gw)
        if (gh, gw) != (h, w):
            tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
        return tex


class ColourSource(AnomalySource):
    """A homogeneous patch of one uniformly random RGB colour ([paper]'s variant without DTD)."""

    def sample(self, rng: np.random.Generator, size: Size) -> np.ndarray:
        """(H, W, 3) uint8 RGB, every pixel the same random colour."""
        out = np.empty((size[0], size[1], 3), np.uint8)
        out[:] = rng.integers(0, 256, size=3, dtype=np.uint8)
        return out


class FolderSource(AnomalySource):
    """Textures from image files under ``folder`` (DTD layout ``*/*.jpg`` [official], or flat).

    Files are found with :func:`core.data.images.list_images` (recursive, sorted),
    so the choice is reproducible. Decoded textures, resized to the requested size,
    are kept in an LRU cache of at most ``cache_mb`` MiB (per process). Unreadable
    files are logged once and skipped: the next readable file in order is used.

    Raises:
        DatasetError: the folder does not exist, has no image files, or none can be read.
    """

    def __init__(self, folder: str | Path, cache_mb: float = 256.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"anomaly source folder not found: {self.folder}")
        self.paths = list_images(self.folder)
        if not self.paths:
            raise DatasetError(
                f"no texture images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {self.folder} "
                "(expected DTD layout */*.jpg or a flat folder of images)"
            )
        self.cache_bytes = int(cache_mb * 2**20)
        self.bad: set[int] = set()
        self._cache: OrderedDict[tuple[int, Size], np.ndarray] = OrderedDict()
        self._cached = 0
        if self._load(0, (16, 16), search=True) is None:  # fail early if nothing is readable
            raise DatasetError(
                f"none of the {len(self.paths)} image files in {self.folder} can be read"
            )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # workers start with an empty cache
        state["_cache"], state["_cached"] = OrderedDict(), 0
        return state

    def _load(self, i: int, size: Size, search: bool = False) -> np.ndarray | None:
        """Texture ``i`` at ``size`` (cached); if unreadable and ``search``, the next readable one."""
        n = len(self.paths)
        for k in range(n if search else 1):
            j = (i + k) % n
            if j in self.bad:
                continue
            key = (j, tuple(size))
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            try:
                img = load_image(self.paths[j])
            except ImageLoadError as exc:
                log.warning("skipping unreadable texture %s", exc)
                self.bad.add(j)
                continue
            img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            self._cache[key] = img
            self._cached += img.nbytes
            while self._cached > self.cache_bytes and len(self._cache) > 1:
                self._cached -= self._cache.popitem(last=False)[1].nbytes
            return img
        return None

    def sample(self, rng: np.random.Generator, size: Size) -> np.ndarray:
        """A random file's texture resized to (H, W): (H, W, 3) uint8 RGB (a fresh copy)."""
        img = self._load(int(rng.integers(len(self.paths))), size, search=True)
        if img is None:
            raise DatasetError(
                f"none of the {len(self.paths)} image files in {self.folder} can be read"
            )
        return img.copy()


def make_source(config: SimulatorConfig) -> AnomalySource:
    """The anomaly source named by ``config.source`` (``builtin``, ``colour`` or ``folder``)."""
    if config.source == "builtin":
        return BuiltinSource()
    if config.source == "colour":
        return ColourSource()
    if config.source == "folder":
        return FolderSource(config.source_dir or "")
    raise ConfigError(f"unknown anomaly source {config.source!r}")
