"""``python main.py gui|screenshots``: the commands handed to the desktop front end
(``args.frontend``, passed by ``app.cli``; core itself never imports the GUI).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.cli import support
from core.cli.support import UserError, has_display


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop application (optionally on a project)."""
    if args.project and not Path(args.project).exists():
        raise UserError(f"project not found: {args.project}")
    return support.run_app(args, "gui", project=args.project)


def cmd_screenshots(args: argparse.Namespace) -> int:
    """Render the GUI's main views to PNG files (works without a display)."""
    if not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return support.run_app(args, "screenshots", args.out)


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
    g = sub.add_parser("gui", help="open the desktop application", description=cmd_gui.__doc__)
    g.add_argument("project", nargs="?", help="project file or folder to open")
    g.set_defaults(func=cmd_gui)

    sc = sub.add_parser(
        "screenshots",
        help="render the GUI's views to PNG files",
        description=cmd_screenshots.__doc__,
    )
    sc.add_argument("--out", required=True, help="output folder")
    sc.set_defaults(func=cmd_screenshots)
