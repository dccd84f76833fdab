"""Shared fixtures of the flow tests."""

import pytest

from core.models.flow import SPEC
from core.registry import method_names, register, unregister


@pytest.fixture(scope="module", autouse=True)
def flow_registered():
    """Registers the method for checkpoint saving if the registry does not list it yet."""
    added = "flow" not in method_names()
    if added:
        register(SPEC, "core.models.flow")
    yield
    if added:
        unregister("flow")
