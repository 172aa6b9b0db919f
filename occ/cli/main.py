"""The ``occ`` command: foley clips from a checkpoint, FAD of folders of clips, the held-out reference clips, the
DCASE submission checks.

::

    occ generate --checkpoint runs/train/o2c_ct1/seed0/checkpoint.pt --class DogBark -n 20 --out barks/
    occ heldout heldout/                   # the FAD reference clips of the pipeline, heldout/<Class>/
    occ fad barks/ heldout/DogBark/        # one class: one FAD; class folders against class folders: per class
    occ check-submission submission/
    occ fetch-weights                      # the pretrained weights the stages read, before any run
    torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 0    # occ.cli.train

Each sub-command calls the package's own functions, the ones the pipeline's notebooks call, and lives in a module of
its own: ``occ.cli.generate`` (``generate``, ``check-submission``), ``occ.cli.fad`` (``fad``, ``heldout``),
``occ.cli.repro`` (``repro``), ``occ.cli.train`` (``train``, ``supcon``), ``occ.cli.fetch`` (``fetch-weights``);
``occ.cli.common`` holds what they share.
This module assembles the parser and runs a command.

Bad input ends with one line on stderr naming the file or option and what to do, and exit code 1 (2 for
a malformed command line); ``--debug`` shows the traceback instead. Output folders are written into a
temporary folder beside the target and renamed into place at the end, so a failed or interrupted run
leaves no partial folder.
"""

from __future__ import annotations

import argparse
import sys

from occ.cli.common import CliError, Parser
from occ.cli.fad import add_fad_parser, add_heldout_parser
from occ.cli.fetch import add_fetch_weights_parser
from occ.cli.generate import add_check_submission_parser, add_generate_parser
from occ.cli.repro import add_repro_parser
from occ.cli.train import add_supcon_parser, add_train_parser

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``occ`` argument parser (sub-commands generate, fad, heldout, check-submission, repro, train, supcon,
    fetch-weights)."""
    from occ import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser = Parser(prog="occ", formatter_class=fmt,
                    description="Foley sound synthesis with the O2C-GAN / OC-SupConGAN models of this project, "
                                "FAD as DCASE 2023 Task 7 computed it, and the DCASE submission checks.",
                    epilog="examples:\n"
                           "  occ generate --checkpoint runs/train/o2c_ct1/seed0/checkpoint.pt --class DogBark -n 20 --out barks/\n"
                           "  occ heldout heldout/ && occ fad barks/ heldout/DogBark/\n"
                           "  occ check-submission submission/\n"
                           "  torchrun --nproc_per_node 4 -m occ train --variant o2c --seed 0\n\n"
                           "`occ COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"occ {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)

    for add in (add_generate_parser, add_fad_parser, add_heldout_parser, add_check_submission_parser, add_repro_parser,
                add_train_parser, add_supcon_parser, add_fetch_weights_parser):  # the order of `occ --help`
        add(sub, common=common, fmt=fmt)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``occ`` command; returns the exit code (0 success, 1 bad input or failed check, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from occ.errors import OccError

    try:
        return args.func(args)
    except (CliError, OccError) as exc:
        if args.debug:
            raise
        print(f"occ {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"occ {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen condition: still one line, the traceback on request
        if args.debug:
            raise
        print(f"occ {args.command}: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
