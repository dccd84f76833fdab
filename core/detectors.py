"""Open any detector checkpoint (kept as an import path; the registry does the work)."""

from core.registry import load_detector

__all__ = ["load_detector"]
