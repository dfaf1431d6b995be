"""The command-line options of catalogue training, shared by `cardsorter train` and
`python -m training.train_catalogue`: argparse only, so parsing them needs no torch."""

from __future__ import annotations

import argparse


def add_catalogue_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `cardsorter train` and `python -m training.train_catalogue`; no torch import here
    (the command line builds its parser without the training extra)."""
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
