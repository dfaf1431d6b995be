"""`python -m cardsorter.cli`: dispatch to the subcommands each area registers."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cardsorter.core.errors import CardsorterError

# Each module defines register(subparsers) adding its subcommands with set_defaults(func=...).
SUBCOMMAND_MODULES = (
    "cardsorter.cli.basic",       # version, run
    "cardsorter.cli.catalog",     # catalog generate
    "cardsorter.cli.db",          # db build/check/add/merge
    "cardsorter.cli.identify",    # identify
    "cardsorter.cli.inventory",   # inventory export/summary
    "cardsorter.cli.bags",        # record, replay
    "cardsorter.cli.demo",        # demo
    "cardsorter.cli.bench",       # bench
    "cardsorter.cli.train",       # train embedder (the training extra)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardsorter", description="ROS 2 trading-card sorter")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # that area is not built yet
                continue
            raise
        module.register(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, except that a command standing in for a missing extra (cli/extras.py) takes any arguments."""
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.extra_arguments = unknown   # passed on by commands that wrap another parser (train embedder)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except CardsorterError as err:
        print(f"cardsorter: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
