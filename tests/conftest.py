"""Shared fixtures: offscreen Qt, one fake detector, tiny images."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from fakes import FakeDetector  # noqa: E402


@pytest.fixture
def fake_detector() -> FakeDetector:
    return FakeDetector()
