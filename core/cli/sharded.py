"""``inspect`` under ``torchrun``: every rank inspects its share, rank 0 exports once.

See :mod:`core.evaluate.sharded` for the exchange. Every rank joins the process group
*before* anything can fail (bad options, a missing model, an unwritable target), so
a failing rank still reaches the one exchange and the others learn of it instead of
waiting; the run then fails on every rank, rank 0 says which rank failed and why, and
nothing is written to the target (an existing target is left untouched). A rank that
dies at once (SIGKILL, out of memory) breaks the exchange instead: the others fail with
one ``error:`` line each, remove their shards and write nothing; ``torchrun`` names the
dead rank. The dead rank's shard stays until a later run at the same target removes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable

from core.cli import support as report
from core.cli.support import UserError, stop_on_ctrl_c
from core.errors import Cancelled

#: how long a rank that finished waits for the slowest one at the exchange
EXCHANGE_TIMEOUT = dt.timedelta(hours=1)

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130


def inspect_sharded(
    args: argparse.Namespace,
    inputs: Callable[[argparse.Namespace], list],
    open_model: Callable[[argparse.Namespace], object],
    summarise: Callable[..., None],
    export: Callable[..., str],
) -> int:
    """Run ``inspect`` as one rank of a torchrun job; return this rank's exit code.

    ``inputs(args)`` validates the options and returns the files, ``open_model(args)``
    loads the detector, ``summarise(result, thresholds)`` prints the table and
    ``export(args, det, thresholds, result, stop, world_size=N)`` writes the file (the
    single-process command's own steps).
    """
    from core.device import device_kind, resolve_device
    from core.distributed import gather_plain, session
    from core.evaluate import sharded as S
    from core.evaluate.inspect import inspect_paths

    with stop_on_ctrl_c() as stop:
        kind = device_kind(resolve_device("auto"))
        # gloo even on GPUs: only a few kilobytes of plain data cross the process group
        with session(kind, backend="gloo", timeout=EXCHANGE_TIMEOUT) as env:
            det, error = None, None
            try:
                files = inputs(args)
                det = open_model(args)
                desc = f"inspecting (rank 0's share of {env.world_size})"
                with report.bar(None, desc, "img") as on_progress:
                    outcome = S.inspect_share(
                        lambda paths: inspect_paths(
                            det,
                            paths,
                            batch_size=args.batch_size,
                            on_progress=on_progress,
                            should_stop=stop.is_set,
                        ),
                        files,
                        args.out,
                        env.rank,
                        env.world_size,
                    )
            except (Cancelled, KeyboardInterrupt) as exc:
                outcome = S.RankOutcome(env.rank, S.CANCELLED, str(exc) or "interrupted")
            except Exception as exc:  # noqa: BLE001 - every rank must reach the exchange
                outcome, error = S.RankOutcome(env.rank, S.FAILED, report.one_line(exc)), exc
            try:
                plain = gather_plain(env, outcome.to_plain())
            except RuntimeError as exc:  # a rank died (killed, out of memory) mid-run
                S.remove_shards([outcome])
                if env.is_main:
                    _sweep_stale(args.out)
                raise UserError(
                    f"inspection failed: the exchange of results broke on rank {env.rank} of "
                    f"{env.world_size} ({_exchange_error(exc)}): another rank died or stopped "
                    f"answering (torchrun's log names it); nothing was written to {args.out}"
                ) from None
        outcomes = [S.RankOutcome.from_plain(d) for d in plain]
        problem = S.first_problem(outcomes)
        if problem is not None:
            S.remove_shards([outcome])
            if env.is_main:
                _sweep_stale(args.out)
            if not env.is_main:
                if error is not None:
                    raise error  # its own error line (or traceback, for a bug)
                return EXIT_CANCELLED if problem.status == S.CANCELLED else EXIT_ERROR
            where = f"rank {problem.rank} of {env.world_size}"
            nothing = f"nothing was written to {args.out}"
            if problem.status == S.CANCELLED:
                raise Cancelled(f"inspection cancelled on {where}; {nothing}")
            raise UserError(f"inspection failed on {where}: {problem.message}; {nothing}")
        if not env.is_main:
            return EXIT_OK  # rank 0 reads this rank's shard and deletes it
        try:
            with S.ShardSet.open(outcomes) as shards:
                result = shards.merged()
                thresholds = report.with_threshold(det.thresholds, args.threshold)
                summarise(result, thresholds)
                written = export(args, det, thresholds, result, stop, world_size=env.world_size)
        finally:
            S.remove_shards(outcomes)
            _sweep_stale(args.out)
    print(f"results written to {written} (inspected by {env.world_size} processes)")
    return EXIT_OK


def _sweep_stale(target: str) -> None:
    """Rank 0, once every rank is done with its shard: remove every rank's shards of
    ``target`` that earlier killed runs left behind (each rank removes only its own
    before it starts, so those of ranks a later run does not have would stay)."""
    from core.evaluate import sharded as S

    for path in S.clean_stale_shards(target):
        report.warn(f"removed {path}, left by an interrupted inspection")


def _exchange_error(exc: BaseException) -> str:
    """The gist of a process-group error: its first sentence, without the source location
    (``[.../pair.cc:561] Connection closed by peer [127.0.0.1]:57560. This is ...``)."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", report.one_line(exc))
    return text.split(". ")[0].rstrip(".")


__all__ = ["EXCHANGE_TIMEOUT", "inspect_sharded"]
