"""The ``nicbook`` command line.

Each subcommand lives beside the code it drives: a module listed in :data:`COMMAND_MODULES`
exposes ``register_cli(subparsers)``, which adds its parsers and sets ``func`` on them to a
callable taking the parsed arguments and returning an exit status. Errors a user can cause
become a one-line message on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nicbook import __version__
from nicbook.errors import NicbookError

#: Modules that contribute subcommands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "nicbook.codec",
    "nicbook.train",
    "nicbook.zoo",
    "nicbook.jpeg",
    "nicbook.data",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every module's subcommands attached."""
    parser = argparse.ArgumentParser(
        prog="nicbook", description="Image codecs from the nicbook book: JPEG, KLT and neural."
    )
    parser.add_argument("--version", action="version", version=f"nicbook {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (NicbookError, OSError, ValueError) as error:
        message = str(error) or error.__class__.__name__
        print(f"nicbook {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nicbook: interrupted", file=sys.stderr)
        return 130
