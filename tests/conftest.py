"""Shared fixtures: offscreen Qt, one fake detector, tiny images."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fakes import FakeDetector  # noqa: E402


@pytest.fixture
def fake_detector() -> FakeDetector:
    return FakeDetector()


def write_images(folder: Path, n: int = 6, size=(48, 64), spots=(), seed: int = 0) -> list[str]:
    """Write ``n`` small noisy RGB PNGs; those whose index is in ``spots`` get a bright blob."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = rng.integers(60, 90, (*size, 3), dtype=np.uint8)
        if i in spots:
            cv2.circle(img, (size[1] // 2, size[0] // 2), 5, (250, 250, 250), -1)
        p = folder / f"img_{i:02d}.png"
        cv2.imwrite(str(p), img)
        paths.append(str(p))
    return paths
