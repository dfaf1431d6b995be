"""`cardsorter train embedder …`: training/train_embedder.py from the command line (the training extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cardsorter.cli import extras
from cardsorter.cli.extras import NEEDS_TRAIN, TRAIN_MODULES, add_unavailable, guarded

EMBEDDER_HELP = "train the embedding model (CardNet) on a procedural catalogue, export ONNX + manifest"
CATALOGUE_HELP = ("train CardNet on your own reference images: cardsorter train --images DIR --out models/NAME "
                  "(progress, checkpoints, --resume, held-out report, ONNX + manifest; -h for all options)")


def _embedder(args: argparse.Namespace) -> int:
    from training.train_embedder import main

    sys.argv[0] = "cardsorter train embedder"   # the program name its own parser prints in usage and errors
    return int(main(list(args.extra_arguments)))


def _catalogue(args: argparse.Namespace) -> int:
    from training.train_catalogue import run_args

    return int(run_args(args))


def register(subparsers: Any) -> None:
    # `cardsorter train --images DIR --out models/NAME …`: every argument goes to training.train_catalogue's
    # parser (-h included); `cardsorter train embedder …`: the procedural-catalogue trainer.
    train = subparsers.add_parser("train", help="train a model (needs the training extra: torch, onnx); "
                                  + CATALOGUE_HELP, description=CATALOGUE_HELP)
    sub = train.add_subparsers(dest="train_command", required=False, metavar="MODEL")
    reason = extras.train_missing()
    if reason is not None:
        train.set_defaults(func=lambda _a: extras.explain("train", NEEDS_TRAIN, reason), accepts_any_arguments=True)
        add_unavailable(sub, "embedder", EMBEDDER_HELP, NEEDS_TRAIN, reason, "train embedder")
        return
    from training.catalogue_args import add_catalogue_arguments  # present with the training extra

    add_catalogue_arguments(train)
    train.set_defaults(func=guarded("train", _catalogue, TRAIN_MODULES, NEEDS_TRAIN))
    # Every argument (-h included) goes to training.train_embedder's own parser.
    p = sub.add_parser("embedder", help=EMBEDDER_HELP + " (arguments: cardsorter train embedder -h)", add_help=False)
    p.set_defaults(func=guarded("train embedder", _embedder, TRAIN_MODULES, NEEDS_TRAIN), accepts_any_arguments=True)
