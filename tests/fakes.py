"""Test doubles and tiny data shared by the test modules (``from fakes import FakeDetector``)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from core.config import Thresholds
from core.types import Prediction


@dataclass(frozen=True)
class FakeConfig:
    """The fake method's config (what exports record as ``model_config``)."""

    kind: str = "fake"
    size: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


class FakeDetector:
    """Deterministic stand-in for a trained model (implements ``core.types.Detector``).

    ``mode="median"``: the map is the blurred difference to a median-filtered copy, so
    bright spots on a noisy background are anomalies; ``mode="bright"``: the map is the
    image's brightness.  Records how often and on which threads it ran; ``delay``
    sleeps per image, ``fail_on_width`` raises for images of that width.
    """

    method = "fake"

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        mode: str = "median",
        delay: float = 0.0,
        fail_on_width: int | None = None,
    ) -> None:
        self.thresholds = thresholds or Thresholds(0.5, 0.5, "fake")
        self.config = FakeConfig()
        self.mode, self.delay, self.fail_on_width = mode, delay, fail_on_width
        self.calls = 0
        self.threads: set[int] = set()

    @property
    def metadata(self) -> dict:
        return {"method": "fake"}

    def payload(self) -> dict:
        return {"method": "fake", "model_config": self.config.to_dict()}

    def save(self, path: str) -> str:  # pragma: no cover - protocol only
        raise NotImplementedError

    def with_thresholds(self, thresholds: Thresholds) -> FakeDetector:
        return FakeDetector(thresholds, mode=self.mode, delay=self.delay)

    def predict(self, images, *, batch_size=8, on_progress=None, should_stop=None):
        self.calls += 1
        self.threads.add(threading.get_ident())
        out = []
        for img in images:
            if self.fail_on_width is not None and img.shape[1] == self.fail_on_width:
                raise ValueError("unsupported image width")
            if self.delay:
                time.sleep(self.delay)
            if self.mode == "bright":
                amap = (img.mean(axis=2) / 255.0).astype(np.float32)
                out.append(Prediction(amap, float(amap.max()), None))
                continue
            recon = cv2.medianBlur(img, 7)
            diff = np.abs(img.astype(np.float32) - recon).mean(axis=2) / 255.0
            amap = np.clip(cv2.GaussianBlur(diff, (0, 0), 1.5) * 4.0, 0, 1).astype(np.float32)
            out.append(Prediction(amap, float(amap.max()), recon))
        return out


def write_images(
    folder: Path, n: int = 6, size=(48, 64), spots=(), seed: int = 0, radius=lambda i: 5
) -> list[str]:
    """Write ``n`` small noisy RGB PNGs ``img_NN.png`` (uint8 grey levels 60..89); those
    whose index is in ``spots`` get a bright blob of ``radius(i)`` pixels in the middle."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = rng.integers(60, 90, (*size, 3), dtype=np.uint8)
        if i in spots:
            cv2.circle(img, (size[1] // 2, size[0] // 2), radius(i), (250, 250, 250), -1)
        p = folder / f"img_{i:02d}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    return paths


def stripes(rng: np.random.Generator, shape=(40, 48)) -> np.ndarray:
    """A (H, W) uint8 vertical-stripe texture with noise: a tiny surface to inspect."""
    base = np.tile((np.arange(shape[1]) % 8 < 4).astype(np.uint8) * 60 + 90, (shape[0], 1))
    return np.clip(base + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)


def write_stripes_category(root: Path, n_train: int, n_defect: int, spot_x0: int = 20) -> Path:
    """A tiny MVTec AD category at ``root``: ``n_train`` good training images, 2 good test
    images and ``n_defect`` test images with a bright spot (``test/spot``, masks 0/255)."""
    rng = np.random.default_rng(0)
    for sub in ("train/good", "test/good", "test/spot", "ground_truth/spot"):
        (root / sub).mkdir(parents=True)
    for i in range(n_train):
        cv2.imwrite(str(root / "train/good" / f"{i:03d}.png"), stripes(rng))
    for i in range(2):
        cv2.imwrite(str(root / "test/good" / f"{i:03d}.png"), stripes(rng))
    for i in range(n_defect):
        img = stripes(rng)
        mask = np.zeros_like(img)
        cv2.circle(mask, (spot_x0 + 5 * i, 20), 6, 255, -1)
        img[mask > 0] = 250
        cv2.imwrite(str(root / "test/spot" / f"{i:03d}.png"), img)
        cv2.imwrite(str(root / "ground_truth/spot" / f"{i:03d}_mask.png"), mask)
    return root
