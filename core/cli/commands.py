"""Command line: ``python main.py train|simulate|inspect|evaluate|demo|gui|screenshots``.

User errors (missing folders, unreadable files, foreign model files, bad
options) print one line ``error: ...`` to stderr and exit with a non-zero code;
never a traceback.  Long work shows a tqdm progress bar; Ctrl-C asks the work to
stop (training then saves a loadable checkpoint), a second Ctrl-C aborts.

Exit codes: 0 success, 1 error, 2 bad command line, 130 cancelled by Ctrl-C.

This module builds the parser and runs a command; each command (its function and its
options) lives in its own module: :mod:`core.cli.train`, :mod:`core.cli.simulate`,
:mod:`core.cli.inspection`, :mod:`core.cli.evaluate`, :mod:`core.deploy.cli`
(``export-model``), :mod:`core.cli.demo`, :mod:`core.cli.gui` (``gui``,
``screenshots``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import args as cli_args
from core.cli import demo, evaluate, gui, inspection, simulate, support, train
from core.cli.demo import cmd_demo
from core.cli.evaluate import cmd_evaluate
from core.cli.gui import cmd_gui, cmd_screenshots
from core.cli.inspection import cmd_inspect
from core.cli.simulate import cmd_simulate
from core.cli.support import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    has_display,
)
from core.cli.train import cmd_train
from core.deploy.cli import add_export_parser
from core.errors import CoreError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="main.py", description="DRAEM surface-defect inspection workstation.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    train.add_parser(sub)
    simulate.add_parser(sub)
    inspection.add_parser(sub)
    evaluate.add_parser(sub)
    add_export_parser(sub)
    demo.add_parser(sub)
    gui.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None, *, frontend: dict | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring).

    ``frontend`` maps ``gui`` / ``screenshots`` to the functions that start the desktop
    application (``app.cli`` passes them; core itself never imports the GUI).
    """
    cli_args.safe_stdio()
    from core.cli.ranks import quiet_other_ranks

    quiet_other_ranks()  # under torchrun, rank 0 alone prints (other ranks: errors only)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.frontend = dict(frontend or {})
    if args.command is None:
        if has_display() and argv is None:
            return _guarded(cmd_gui, argparse.Namespace(project=None, frontend=args.frontend))
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return _guarded(args.func, args)


def _guarded(func, args: argparse.Namespace) -> int:
    from core.errors import Cancelled

    try:
        return func(args)
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except CoreError as exc:
        print(f"error: {support.one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # disk full, permission denied, ... while writing outputs
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR


__all__ = [
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "cmd_demo",
    "cmd_evaluate",
    "cmd_gui",
    "cmd_inspect",
    "cmd_screenshots",
    "cmd_simulate",
    "cmd_train",
    "has_display",
    "main",
]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
