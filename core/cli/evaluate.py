"""``python main.py evaluate``: metrics of a model on an MVTec AD category's test split."""

from __future__ import annotations

import argparse

from core.cli import args as cli_args
from core.cli import support, tables
from core.cli.support import EXIT_OK, UserError, stop_on_ctrl_c
from core.deploy.cli import add_runtime_option, open_model


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
    with stop_on_ctrl_c() as stop, support.bar(len(cat.test), "evaluating", "img") as on_progress:
        res = evaluate_mvtec(det, cat, on_progress=on_progress, should_stop=stop.is_set)
    from core.evaluate.metrics import image_auroc_per_type

    support.failures(res.result.failures)
    from core.evaluate.groundtruth import count_problems

    for problem in res.mask_problems:
        support.warn(problem.message())
    from core.evaluate.operating_point import operating_point

    scores = [p.score for p in res.result.predictions]
    per_type = image_auroc_per_type(res.labels, scores, res.defect_types)
    thresholds = support.with_threshold(det.thresholds, args.threshold)
    tables.evaluation(
        res.evaluation,
        res.seconds_per_image,
        as_json=args.json,
        per_type=per_type,
        extra={"ground_truth_problems": count_problems(res.mask_problems)},
        operating=operating_point(res.labels, scores, thresholds.image, res.defect_types),
        threshold_source=thresholds.source,
    )
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
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
