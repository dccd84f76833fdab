"""Command-line parts of deployment: ``export-model`` and the ``--runtime`` option.

``core.cli.commands`` adds the subcommand with :func:`add_export_parser`; ``inspect`` and
``evaluate`` (``core.cli.inspection``, ``core.cli.evaluate``) open models with
:func:`open_model`, which takes a checkpoint (torch) or an exported folder (onnxruntime,
OpenVINO).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import ExportError


def _runtime_arg(value: str) -> str:
    from core.deploy.choices import parse_runtime

    try:
        parse_runtime(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return value


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """``--runtime RUNTIME[:PRECISION]``: torch for a checkpoint, onnxruntime / openvino
    for an exported folder; ``openvino:bf16`` / ``onnxruntime:int8`` where measured."""
    parser.add_argument(
        "--runtime",
        type=_runtime_arg,
        default="auto",
        metavar="auto|torch|onnxruntime|openvino[:PRECISION]",
        help="torch (a .pt checkpoint) or onnxruntime|openvino (a folder from export-model); "
        "auto: by what --model is. A reduced precision (openvino:bf16, onnxruntime:int8) "
        "is accepted only where docs/deploy.md lists it as measured for the model",
    )


def open_model(path: str, runtime: str = "auto"):
    """A :class:`core.types.Detector` for a checkpoint file or an exported folder
    (``runtime``: ``RUNTIME[:PRECISION]``)."""
    from core.cli.support import UserError, open_detector
    from core.deploy.choices import parse_runtime
    from core.deploy.runtime import is_exported, load_exported

    try:
        runtime, precision = parse_runtime(runtime)
    except ValueError as e:
        raise UserError(str(e)) from e
    p = Path(path)
    if p.is_dir():
        if not is_exported(p):
            raise UserError(f"{path} is a folder without deploy.json (not from export-model)")
        if runtime == "torch":
            raise UserError(f"{path} is an exported model: use --runtime onnxruntime|openvino")
        try:
            return load_exported(
                p, "onnxruntime" if runtime == "auto" else runtime, None, precision
            )
        except ExportError as e:
            raise UserError(str(e)) from e
    if precision != "fp32":
        raise UserError(
            f"a checkpoint runs in fp32 with torch; {precision} needs an exported model"
        )
    if runtime not in ("auto", "torch"):
        raise UserError(
            f"--runtime {runtime} runs a folder written by export-model; "
            f"export first: python main.py export-model --model {path} --out DIR"
        )
    return open_detector(path)


def model_sha256(path: str) -> str:
    """SHA-256 of a checkpoint file, or the one an exported folder records."""
    p = Path(path)
    if p.is_dir():
        from core.deploy.export import read_manifest

        return str(read_manifest(p).get("checkpoint_sha256") or "")
    from core.io.checkpoint import file_sha256

    return file_sha256(path)


def cmd_export_model(args: argparse.Namespace) -> int:
    """Export a checkpoint to an ONNX (or OpenVINO) graph plus deploy.json for a line PC:
    the graph takes the pre-processed image at its working size and returns the anomaly
    map and the image score (see docs/deploy.md)."""
    from core.cli.support import UserError, open_detector
    from core.deploy.choices import check_precision
    from core.deploy.export import export_model
    from core.deploy.prepare import on_cpu, variant_of
    from core.io.checkpoint import file_sha256

    det = open_detector(args.model)
    try:
        if args.precision != "fp32":  # only the measured reduced precisions are written
            check_precision(det.method, variant_of(det), "onnxruntime", args.precision)
        det = on_cpu(det)
        path = export_model(
            det,
            args.out,
            args.format,
            checkpoint_sha256=file_sha256(args.model),
            overwrite=args.overwrite,
            int8=args.precision == "int8",
        )
    except ExportError as e:
        raise UserError(str(e)) from e
    print(f"exported {det.method} to {path}")
    return 0


def add_export_parser(sub) -> None:
    """Add ``export-model`` to the subcommands ``sub`` (an argparse subparsers action)."""
    x = sub.add_parser(
        "export-model",
        help="export a checkpoint to ONNX / OpenVINO for deployment",
        description=cmd_export_model.__doc__,
    )
    x.add_argument("--model", required=True, help="checkpoint written by train")
    x.add_argument("--format", choices=["onnx", "openvino"], default="onnx")
    x.add_argument("--out", required=True, help="new folder to write (model + deploy.json)")
    x.add_argument("--overwrite", action="store_true", help="replace an earlier export there")
    x.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="int8: also write an onnxruntime int8 graph (run it with --runtime "
        "onnxruntime:int8); refused unless measured to keep AUROC within 0.005 for this "
        "model (docs/deploy.md). The fp32 graph is always written; OpenVINO's bf16 is a "
        "run-time choice (--runtime openvino:bf16)",
    )
    x.set_defaults(func=cmd_export_model)


__all__ = ["add_export_parser", "add_runtime_option", "model_sha256", "open_model"]
