"""The command line with the desktop front end: ``core.cli.commands`` plus ``gui`` / ``screenshots``.

``core`` never imports ``app``; this module hands core's command line the functions
that start the GUI.  They import Qt only when called, so the other commands start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_gui(**kwargs) -> int:
    """Open the desktop application (``project=``, ``demo=``)."""
    from app.main import run_gui as start

    return start(**kwargs)


def render_screenshots(out: str) -> int:
    """Render the GUI's main views to PNGs in ``out``."""
    from app._qt.screenshots import main as render

    return render(out)


FRONTEND = {"gui": run_gui, "screenshots": render_screenshots}


def main(argv: Sequence[str] | None = None) -> int:
    try:  # a Ctrl-C while the libraries load (seconds) is a clean exit 130, not a traceback
        from core.cli.commands import main as core_main

        return core_main(argv, frontend=FRONTEND)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
