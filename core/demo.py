"""The bundled demo data set (``resources/demo/brick``, MVTec AD layout, CC0).

See ``resources/demo/LICENSE.md`` for provenance and ``resources/demo/make_demo.py``
for how it was generated.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import DatasetError

#: Root of the bundled demo resources (next to the ``core`` package in a checkout).
DEMO_DIR = Path(__file__).resolve().parent.parent / "resources" / "demo"
#: The demo MVTec AD category.
DEMO_CATEGORY = DEMO_DIR / "brick"


def demo_root() -> Path:
    """Path of the demo MVTec AD category (``train/good``, ``test/*``, ``ground_truth/*``).

    Raises:
        DatasetError: the demo data are missing (e.g. a wheel install without resources).
    """
    if not (DEMO_CATEGORY / "train" / "good").is_dir():
        raise DatasetError(
            f"the demo data set is missing ({DEMO_CATEGORY}); "
            "regenerate it with: python resources/demo/make_demo.py"
        )
    return DEMO_CATEGORY


__all__ = ["DEMO_CATEGORY", "DEMO_DIR", "demo_root"]
