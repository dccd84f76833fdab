"""``python main.py demo``: a short training, inspection and export on the bundled data set
(headless), or the GUI on the demo project.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import support, tables, training_report
from core.cli.support import EXIT_OK, UserError, has_display, stop_on_ctrl_c


def cmd_demo(args: argparse.Namespace) -> int:
    """Demo on the bundled data set. With --headless (or without a display): train
    briefly, inspect the demo test images, write an HDF5 file and print the metrics.
    Otherwise open the GUI on the demo project.
    """
    if not args.headless and has_display():
        return support.run_app(args, "gui", demo=True)
    from core.demo import DEMO_MINUTES, DEMO_MODEL, DEMO_RESULTS, DEMO_STEPS, run_demo
    from core.io.outputs import CHECKPOINT, EXPORT, check_output_file, check_output_folder

    steps = DEMO_STEPS if args.steps is None else args.steps
    if steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    check_output_folder(args.out)
    for name, kind in ((DEMO_MODEL, CHECKPOINT), (DEMO_RESULTS, EXPORT)):
        check_output_file(Path(args.out) / name, kind=kind, create_parent=True)
    # an explicit --steps is not time-capped
    minutes = None if args.steps is not None else DEMO_MINUTES
    budget = f"{steps} steps" + (
        f" or {minutes:g} minutes, whichever comes first" if minutes else ""
    )
    print(f"demo: training DRAEM (compact preset, {budget}) on the bundled brick data set")
    with (
        stop_on_ctrl_c() as stop,
        training_report.train_bar({"steps": steps}) as on_train,
        support.bar(None, "inspecting", "img") as on_progress,
    ):
        res = run_demo(
            Path(args.out),
            steps=steps,
            minutes=minutes,
            on_train_progress=on_train,
            on_progress=on_progress,
            should_stop=stop.is_set,
        )
    t = res.train_result
    print(f"trained {t.steps} steps in {t.elapsed_s:.0f} s")
    note = training_report.budget_note({"steps": res.steps, "minutes": res.minutes}, t.steps)
    if note:
        print(f"{note} (this machine trained slower than the demo budget assumes)")
    tables.evaluation(res.evaluation, res.seconds_per_image, as_json=False, operating=res.operating)
    print(f"model:   {res.checkpoint_path}")
    print(f"results: {res.results_path}")
    print(tables.verdict_counts(res.operating))
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
    d = sub.add_parser(
        "demo",
        help="train briefly on the bundled demo data and inspect it",
        description=cmd_demo.__doc__,
    )
    d.add_argument("--headless", action="store_true", help="no GUI even if a display is available")
    d.add_argument("--out", default="demo_output", help="output folder (headless)")
    d.add_argument(
        "--steps", type=int, default=None, help="training steps (headless; default: bounded)"
    )
    d.set_defaults(func=cmd_demo)
