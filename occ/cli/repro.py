"""``occ repro``: the pipeline with several stages at once (:mod:`occ.pipeline.parallel` is the driver)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from occ.cli.common import CliError

__all__ = ["add_repro_parser", "add_arguments", "cmd_repro", "run_from_args"]


def cmd_repro(args) -> int:
    if not Path("dvc.yaml").is_file():
        raise CliError(f"no dvc.yaml in {Path.cwd()}: run `occ repro` in the repository's root folder")
    return run_from_args(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``occ repro``'s options: targets, ``-j``, ``--cores``, ``--force``."""
    parser.add_argument("targets", nargs="*", help="stages to bring up to date (default: the whole pipeline)")
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="stages running at once, at most (default: as many as --cores; -j alone does not count "
                             "threads)")
    parser.add_argument("--cores", type=int, default=None,
                        help="cores the running stages may take together, each stage its threads declared in "
                             "params.yaml (default: the machine's cores, unless -j is given)")
    parser.add_argument("-f", "--force", action="store_true", help="rerun every stage, changed or not")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the pipeline in the working directory with the options of :func:`add_arguments`."""
    from occ.pipeline.parallel import declared_threads, machine_cores, run_parallel

    if args.cores is not None and args.cores < 1:
        raise CliError(f"--cores must be at least 1 (got {args.cores})")
    if args.jobs is not None and args.jobs < 1:
        raise CliError(f"--jobs must be at least 1 (got {args.jobs})")
    # -j alone: that many stages, whatever their threads (as before --cores); neither: the machine's cores
    if args.jobs is not None:
        cores, jobs = args.cores, args.jobs
    else:
        cores = args.cores if args.cores is not None else machine_cores()
        jobs = cores
    return run_parallel(".", jobs=jobs, targets=args.targets, force=args.force, cores=cores,
                        threads=declared_threads("."))


def add_repro_parser(sub: Any, *, common: argparse.ArgumentParser, fmt: type) -> None:
    """Register ``repro`` on the ``occ`` command's sub-parsers."""
    r = sub.add_parser(
        "repro", parents=[common], formatter_class=fmt, help="regenerate every result, several stages at once",
        description="Run the DVC pipeline with several stages at once (`dvc --wait-for-lock repro --single-item` per\n"
                    "stage, each started when its upstream stages are done). Afterwards `dvc repro` does nothing and\n"
                    "`dvc status` is clean, as after a plain `dvc repro`. Ctrl-C stops every stage and keeps the\n"
                    "finished ones; the same command resumes. Run it in the repository's root folder.",
        epilog="examples:\n"
               "  occ repro                 # every core busy: stages on their declared threads, as the cores hold\n"
               "  occ repro -j 2            # two stages at once, whatever their threads\n"
               "  occ repro 'evaluate@o2c-0' # one stage and what it needs")
    add_arguments(r)
    r.set_defaults(func=cmd_repro)
