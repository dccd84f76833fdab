"""``python main.py simulate``: write synthetic training samples as PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli import args as cli_args
from core.cli import support
from core.cli.support import EXIT_CANCELLED, EXIT_OK, UserError, stop_on_ctrl_c


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
    with stop_on_ctrl_c() as stop, support.bar(args.count, "simulating", "sample") as on_progress:
        for i in range(args.count):
            if stop.is_set():
                break
            k = i % len(paths)
            if k not in cache:
                try:
                    cache[k] = load_image(paths[k])
                except ImageLoadError as exc:
                    cache[k] = None
                    support.warn(f"skipped {exc.path}: {exc.reason}")
            if cache[k] is None:
                continue
            s = sim.sample(cache[k], i)
            for name, img in (("good", s.good), ("augmented", s.augmented), ("mask", s.mask * 255)):
                support.write_png(out / f"{i:05d}_{name}.png", img)
            written += 1
            on_progress(support.Progress(i + 1, args.count))
    if written == 0:
        raise UserError(f"no sample written: none of the images in {args.data} could be read")
    print(f"wrote {written} samples (good, augmented, mask PNGs) to {out}")
    return EXIT_CANCELLED if stop.is_set() else EXIT_OK


def add_parser(sub) -> None:
    """Add the command to the subcommands ``sub``."""
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
