"""Command line: ``python main.py train|simulate|inspect|evaluate|demo|gui|screenshots``.

User errors (missing folders, unreadable files, foreign model files, bad
options) print one line ``error: ...`` to stderr and exit with a non-zero code;
never a traceback.  Long work shows a tqdm progress bar; Ctrl-C asks the work to
stop (training then saves a loadable checkpoint), a second Ctrl-C aborts.

Exit codes: 0 success, 1 error, 2 bad command line, 130 cancelled by Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core.cli import args as cli_args
from core.cli import support as report
from core.cli.support import UserError, has_display, stop_on_ctrl_c
from core.deploy.cli import (
    add_export_parser,
    add_runtime_option,
    model_sha256,
    open_model,
)
from core.errors import CoreError
from core.registry import all_options, detector_identity, method_names

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


# --------------------------------------------------------------------- helpers
# --------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    """Train a detector on good images and write a checkpoint.

    DATA is a folder of good images (searched recursively) or an MVTec AD category (its
    train/good is used). DRAEM trains on synthetic anomalies pasted into the good images;
    PatchCore (--method patchcore) only fits a memory bank. Ctrl-C stops training and
    saves a checkpoint that --resume continues.
    """
    from core.data.images import good_image_paths
    from core.device import device_kind, resolve_device
    from core.io.checkpoint import file_sha256
    from core.io.outputs import CHECKPOINT, check_output_file
    from core.registry import FitRequest, fit_detector, get_method, make_config

    report.check_out_folder(args.out)
    check_output_file(
        args.out,
        kind=CHECKPOINT,
        inputs=good_image_paths(args.data),
        force=args.force,
        create_parent=True,
    )
    spec = get_method(args.method)
    device = resolve_device(args.device)
    options = {k: getattr(args, k, None) for k in all_options()}
    config = make_config(args.method, options, device_kind(device))  # fails before any loading
    if args.resume and not Path(args.out).is_file():
        raise UserError(f"nothing to resume: {args.out} does not exist")
    budget = report.train_budget(args.steps, args.minutes) or spec.default_budget(config)
    with stop_on_ctrl_c() as stop:
        loaded = report.load_good_images(args.data, stop)
        images = [img for _, img in loaded]
        if spec.trains:
            from core.data.images import split_held_out

            fit, held_out = split_held_out(images)
            print(
                f"training {spec.describe(config)} on {len(fit)} good images "
                f"({len(held_out)} held out for the threshold), device {device}, "
                f"budget {report.describe_budget(budget)}",
                flush=True,
            )
        else:
            fit, held_out = images, []
            print(f"fitting {spec.describe(config)} on {len(fit)} good images", flush=True)
        bar = (
            report.train_bar(budget)
            if spec.trains
            else report.bar(None, f"fitting {spec.title}", "step")
        )
        with bar as on_progress:
            request = FitRequest(
                out_path=args.out,
                held_out=held_out,
                seed=args.seed,
                device=device,
                data_summary=report.data_summary(loaded, args.data),
                budget=budget,
                resume=args.resume,
                options={"anomaly_source": args.anomaly_source},
                on_progress=on_progress,
                should_stop=stop.is_set,
            )
            det, result = fit_detector(args.method, fit, config, request)
    if result is not None:
        return report.train_result(result, budget, det.thresholds)
    print(report.stored_threshold(det.thresholds))
    print(f"{spec.title} model written to {args.out} (sha256 {file_sha256(args.out)[:12]})")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write synthetic training samples: NNNNN_good.png, NNNNN_augmented.png, NNNNN_mask.png."""
    from core.config import SimulatorConfig
    from core.data.images import good_image_paths, load_image
    from core.errors import ImageLoadError
    from core.simulate.simulator import AnomalySimulator

    if args.count < 1:
        raise UserError(f"--count must be >= 1, got {args.count}")
    paths = good_image_paths(args.data)
    from core.io.outputs import check_output_folder

    check_output_folder(args.out, inputs=[args.data])
    source = {"source": "folder", "source_dir": args.anomaly_source} if args.anomaly_source else {}
    sim = AnomalySimulator(
        SimulatorConfig(image_size=(args.size, args.size), **source), seed=args.seed
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[int, object] = {}
    written = 0
    with stop_on_ctrl_c() as stop, report.bar(args.count, "simulating", "sample") as on_progress:
        for i in range(args.count):
            if stop.is_set():
                break
            k = i % len(paths)
            if k not in cache:
                try:
                    cache[k] = load_image(paths[k])
                except ImageLoadError as exc:
                    cache[k] = None
                    report.warn(f"skipped {exc.path}: {exc.reason}")
            if cache[k] is None:
                continue
            s = sim.sample(cache[k], i)
            for name, img in (("good", s.good), ("augmented", s.augmented), ("mask", s.mask * 255)):
                report.write_png(out / f"{i:05d}_{name}.png", img)
            written += 1
            on_progress(report.Progress(i + 1, args.count))
    if written == 0:
        raise UserError(f"no sample written: none of the images in {args.data} could be read")
    print(f"wrote {written} samples (good, augmented, mask PNGs) to {out}")
    return EXIT_CANCELLED if stop.is_set() else EXIT_OK


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
    thresholds = report.with_threshold(det.thresholds, args.threshold)
    with stop_on_ctrl_c() as stop:
        with report.bar(len(files), "inspecting", "img") as on_progress:
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
    report.check_out_folder(args.out)
    check_output_file(args.out, kind=EXPORT, inputs=[*files, args.model], force=args.force)
    return files


def _inspection_summary(result, thresholds) -> None:
    """Print the score table and the skipped files; no inspected image is an error."""
    report.inspection_table(result, thresholds.image)
    report.failures(result.failures)
    if not result.predictions:
        raise UserError("no image could be inspected")


def _export_inspection(args, det, thresholds, result, stop, *, world_size: int = 1) -> str:
    """Export an inspection result to ``args.out`` (atomic); return the path written."""
    from core.io.export import export_batch
    from core.io.outputs import export_inspection

    sha256 = model_sha256(args.model)
    with report.bar(len(result.predictions), "exporting", "img") as on_progress:
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
                on_progress=on_progress,
                should_stop=stop.is_set,
                on_stale=lambda p: report.warn(f"removed {p}, left by an interrupted export"),
            ),
            on_skip=lambda path, reason: report.warn(f"not exported {path}: {reason}"),
        )
    return written


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a model on an MVTec AD category's test split: image/pixel AUROC and AP,
    AUPRO (FPR <= 0.3), F1-max and its threshold, seconds per image, and at the model's
    stored image threshold (or --threshold) the false alarms on good images and the
    escapes of defective images, overall and per defect type.
    """
    from core.data.images import read_mvtec
    from core.evaluate.inspect import evaluate_mvtec

    cat = read_mvtec(args.data)
    if not cat.test:
        raise UserError(f"{args.data} has no test images (expected test/<type>/)")
    det = open_model(args.model, args.runtime)
    with stop_on_ctrl_c() as stop, report.bar(len(cat.test), "evaluating", "img") as on_progress:
        res = evaluate_mvtec(det, cat, on_progress=on_progress, should_stop=stop.is_set)
    from core.evaluate.metrics import image_auroc_per_type

    report.failures(res.result.failures)
    from core.evaluate.groundtruth import count_problems

    for problem in res.mask_problems:
        report.warn(problem.message())
    from core.evaluate.operating_point import operating_point

    scores = [p.score for p in res.result.predictions]
    per_type = image_auroc_per_type(res.labels, scores, res.defect_types)
    thresholds = report.with_threshold(det.thresholds, args.threshold)
    report.evaluation(
        res.evaluation,
        res.seconds_per_image,
        as_json=args.json,
        per_type=per_type,
        extra={"ground_truth_problems": count_problems(res.mask_problems)},
        operating=operating_point(res.labels, scores, thresholds.image, res.defect_types),
        threshold_source=thresholds.source,
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Demo on the bundled data set. With --headless (or without a display): train
    briefly, inspect the demo test images, write an HDF5 file and print the metrics.
    Otherwise open the GUI on the demo project.
    """
    if not args.headless and has_display():
        return report.run_app(args, "gui", demo=True)
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
        report.train_bar({"steps": steps}) as on_train,
        report.bar(None, "inspecting", "img") as on_progress,
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
    note = report.budget_note({"steps": res.steps, "minutes": res.minutes}, t.steps)
    if note:
        print(f"{note} (this machine trained slower than the demo budget assumes)")
    report.evaluation(res.evaluation, res.seconds_per_image, as_json=False, operating=res.operating)
    print(f"model:   {res.checkpoint_path}")
    print(f"results: {res.results_path}")
    print(report.verdict_counts(res.operating))
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop application (optionally on a project)."""
    if args.project and not Path(args.project).exists():
        raise UserError(f"project not found: {args.project}")
    return report.run_app(args, "gui", project=args.project)


def cmd_screenshots(args: argparse.Namespace) -> int:
    """Render the GUI's main views to PNG files (works without a display)."""
    if not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    return report.run_app(args, "screenshots", args.out)


# --------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="main.py", description="DRAEM surface-defect inspection workstation.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser(
        "train", help="train a detector on good images", description=cmd_train.__doc__
    )
    t.add_argument("--data", required=True, help="folder of good images, or an MVTec AD category")
    t.add_argument("--out", required=True, help="checkpoint file to write (e.g. model.pt)")
    t.add_argument("--method", choices=method_names(), default="draem")
    t.add_argument(
        "--preset", choices=["paper", "compact"], help="default: compact on CPU, paper on CUDA"
    )
    budget = t.add_mutually_exclusive_group()
    defaults = report.default_budgets_text()
    budget.add_argument(
        "--steps", type=int, help=f"training steps (batches); default budget: {defaults}"
    )
    budget.add_argument(
        "--minutes",
        type=cli_args.positive_minutes,
        help="training time budget in minutes (see --steps for the defaults)",
    )
    t.add_argument(
        "--anomaly-source", help="folder of texture images (e.g. DTD); default: built-in"
    )
    t.add_argument(
        "--device",
        type=cli_args.device_name,
        default="auto",
        help="auto (default: a CUDA GPU if present, else the CPU), cpu, cuda or cuda:N; "
        "under torchrun use cuda (each process takes cuda:LOCAL_RANK)",
    )
    t.add_argument("--seed", type=cli_args.seed, default=0, help="0 .. 2**32 - 1")
    t.add_argument(
        "--score-kernel",
        type=int,
        help="DRAEM image score: max of the map mean-filtered with this odd window "
        "(default: the preset's, 21 for paper as in the DRAEM paper, 5 for compact; 1 = plain "
        "maximum, for defects of a few pixels)",
    )
    t.add_argument(
        "--flip-views",
        type=int,
        choices=[1, 2, 3],
        help="DRAEM maps averaged over the image and its mirrors at inference: 1 = image only, "
        "2 = + left-right, 3 = + up-down (default: the preset's, 1 for paper, 3 for compact; "
        "each view costs one forward pass)",
    )
    t.add_argument(
        "--backbone",
        help="PatchCore backbone: efficientnet_lite0 (default; its ImageNet weights come with "
        "the install), or timm:<arch> / torchvision:<arch> with --backbone-weights, e.g. "
        "torchvision:wide_resnet50_2 (the PatchCore paper's)",
    )
    t.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="local ImageNet weights for --backbone (.pth or .safetensors state_dict; nothing "
        "is downloaded); the model records its SHA-256 and refuses another file later",
    )
    t.add_argument(
        "--coreset-ratio",
        type=float,
        help="PatchCore memory bank as a fraction of all training patches (default 0.1, the paper's)",
    )
    t.add_argument(
        "--standardise",
        action=argparse.BooleanOptionalAction,
        help="DRAEM compact: standardise each image's brightness and contrast before the "
        "network, in training and inspection (default: on for compact; --no-standardise when "
        "a defect is a change of the whole image's brightness)",
    )
    t.add_argument(
        "--ssl-weight",
        type=float,
        help="flow: weight of the self-supervised term that pushes the likelihood of "
        "synthetic anomalies down (0 = the plain unsupervised flow)",
    )
    t.add_argument("--subnet", choices=["conv", "conv_attn"], help="flow: coupling subnet")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    t.add_argument(
        "--force", action="store_true", help="overwrite an existing --out that is not a checkpoint"
    )
    t.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "simulate",
        help="write synthetic training samples as PNGs",
        description=cmd_simulate.__doc__,
    )
    s.add_argument("--data", required=True, help="folder of good images, or an MVTec AD category")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--count", type=int, required=True, help="number of samples")
    s.add_argument("--seed", type=cli_args.seed, default=0, help="0 .. 2**32 - 1")
    s.add_argument("--size", type=int, default=256, help="sample size in pixels (square)")
    s.add_argument("--anomaly-source", help="folder of texture images; default: built-in")
    s.set_defaults(func=cmd_simulate)

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

    e = sub.add_parser(
        "evaluate",
        help="metrics on an MVTec AD category's test split",
        description=cmd_evaluate.__doc__,
    )
    e.add_argument("--model", required=True, help="checkpoint written by train")
    e.add_argument("--data", required=True, help="MVTec AD category folder")
    e.add_argument("--json", action="store_true", help="last output line: one JSON object")
    e.add_argument(
        "--threshold",
        type=cli_args.finite_float,
        help="image-score threshold for the false-alarm and escape counts (default: the model's)",
    )
    add_runtime_option(e)
    e.set_defaults(func=cmd_evaluate)

    add_export_parser(sub)

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
        print(f"error: {report.one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # disk full, permission denied, ... while writing outputs
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
