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


def add_catalogue_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `cardsorter train` (training.train_catalogue); no torch import here."""
    p.add_argument("--images", metavar="DIR", help="reference images {set_id}-{number}_{name}.png (one card each)")
    p.add_argument("--metadata", metavar="FILE", help="pokemontcg.io-style card list (JSON), validated first")
    p.add_argument("--out", metavar="models/NAME", help="writes NAME.onnx, NAME.yaml, NAME.report.json, NAME.ckpt")
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps (the schedule follows them)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop (with a checkpoint) after this long")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--checkpoint", help="checkpoint file (default: NAME.ckpt next to --out)")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of cards never trained on (the report)")
    p.add_argument("--no-report", action="store_true", help="skip the held-out report")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dim", type=int, default=768, help="embedding dimension")
    p.add_argument("--input-w", type=int, default=64)
    p.add_argument("--input-h", type=int, default=88)
    p.add_argument("--widths", default="16,32,64,128", help="CardNet stage widths")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared 2-core machine)")


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
    add_catalogue_arguments(train)
    train.set_defaults(func=guarded("train", _catalogue, TRAIN_MODULES, NEEDS_TRAIN))
    # Every argument (-h included) goes to training.train_embedder's own parser.
    p = sub.add_parser("embedder", help=EMBEDDER_HELP + " (arguments: cardsorter train embedder -h)", add_help=False)
    p.set_defaults(func=guarded("train embedder", _embedder, TRAIN_MODULES, NEEDS_TRAIN), accepts_any_arguments=True)
