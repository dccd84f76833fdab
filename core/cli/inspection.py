"""``python main.py inspect``: score images, print OK/NG verdicts, export the batch to HDF5.

Under ``torchrun`` the work is shared between the processes (:mod:`core.cli.sharded`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import args as cli_args
from core.cli import support, tables
from core.cli.support import EXIT_OK, UserError, stop_on_ctrl_c
from core.deploy.cli import add_runtime_option, model_sha256, open_model
from core.registry import detector_identity


def cmd_inspect(args: argparse.Namespace) -> int:
    """Score image files and/or folders, print a table of scores and OK/NG verdicts and
    write everything (images, anomaly maps, scores, verdicts) to an HDF5 file.
    Unreadable files are listed and skipped. Under torchrun each process inspects a
    share of the images and the first one writes the one HDF5 file.
    """
    from core.cli.ranks import rank_and_world
    from core.evaluate.inspect import inspect_paths

    if rank_and_world()[1] > 1:
        from core.cli.sharded import inspect_sharded

        return inspect_sharded(
            args,
            _inspect_inputs,
            lambda a: open_model(a.model, a.runtime),
            _inspection_summary,
            _export_inspection,
        )
    files = _inspect_inputs(args)
    det = open_model(args.model, args.runtime)
    thresholds = support.with_threshold(det.thresholds, args.threshold)
    with stop_on_ctrl_c() as stop:
        with support.bar(len(files), "inspecting", "img") as on_progress:
            result = inspect_paths(
                det,
                files,
                batch_size=args.batch_size,
                on_progress=on_progress,
                should_stop=stop.is_set,
            )
        _inspection_summary(result, thresholds)
        written = _export_inspection(args, det, thresholds, result, stop)
    print(f"results written to {written}")
    return EXIT_OK


def _inspect_inputs(args: argparse.Namespace) -> list:
    """``inspect``'s options checked and its image files listed (before any work)."""
    from core.data.images import expand_paths
    from core.io.outputs import EXPORT, check_output_file

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    missing = [p for p in args.images if not Path(p).exists()]
    if len(missing) == len(args.images):  # some missing: listed and skipped with the rest
        raise UserError(f"not found: {missing[0]}")
    files = expand_paths(args.images)
    if not files:
        raise UserError(f"no images found in {' '.join(args.images)}")
    support.check_out_folder(args.out)
    check_output_file(args.out, kind=EXPORT, inputs=[*files, args.model], force=args.force)
    return files


def _inspection_summary(result, thresholds) -> None:
    """Print the score table and the skipped files; no inspected image is an error."""
    tables.inspection_table(result, thresholds.image)
    support.failures(result.failures)
    if not result.predictions:
        raise UserError("no image could be inspected")


def _export_inspection(args, det, thresholds, result, stop, *, world_size: int = 1) -> str:
    """Export an inspection result to ``args.out`` (atomic); return the path written."""
    from core.deploy.choices import runtime_of
    from core.io.export import export_batch
    from core.io.outputs import export_inspection

    sha256 = model_sha256(args.model)
    with support.bar(len(result.predictions), "exporting", "img") as on_progress:
        written, _ = export_inspection(
            args.out,
            result,
            lambda records: export_batch(
                args.out,
                records,
                thresholds=thresholds,
                method=det.method,
                model_config=detector_identity(det)["model_config"],
                checkpoint_sha256=sha256,
                world_size=world_size,
                runtime=runtime_of(det),
                on_progress=on_progress,
                should_stop=stop.is_set,
                on_stale=lambda p: support.warn(f"removed {p}, left by an interrupted export"),
            ),
            on_skip=lambda path, reason: support.warn(f"not exported {path}: {reason}"),
        )
    return written


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
    i = sub.add_parser(
        "inspect", help="score images and export the batch to HDF5", description=cmd_inspect.__doc__
    )
    i.add_argument("--model", required=True, help="checkpoint written by train")
    i.add_argument(
        "--images", required=True, nargs="+", metavar="PATH", help="image files and/or folders"
    )
    i.add_argument("--out", required=True, help="HDF5 file to write (e.g. results.h5)")
    i.add_argument(
        "--threshold",
        type=cli_args.finite_float,
        help="image-score threshold (default: the model's)",
    )
    i.add_argument("--batch-size", type=int, default=8)
    i.add_argument(
        "--force", action="store_true", help="overwrite an existing --out that is not an export"
    )
    add_runtime_option(i)
    i.set_defaults(func=cmd_inspect)
