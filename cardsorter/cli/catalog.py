"""`cardsorter catalog generate`: render a procedural card catalogue (images + metadata.json)."""

from __future__ import annotations

import argparse
import time

from cardsorter.sim.catalog import generate_catalog


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("catalog", help="procedural card catalogue")
    sub = parser.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    gen = sub.add_parser("generate", help="render a catalogue: DIR/images/*.png + DIR/metadata.json")
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--cards", type=int, required=True, help="number of printings in the catalogue")
    gen.add_argument("--seed", type=int, required=True, help="random seed (same seed, same bytes)")
    gen.add_argument("--unknown", type=int, default=0,
                     help="extra cards NOT in the catalogue, written to DIR/unknown/ (open-set tests)")
    gen.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    if args.cards < 1 or args.unknown < 0:
        print("catalog generate: --cards must be >= 1 and --unknown >= 0")
        return 2
    start = time.perf_counter()
    records = generate_catalog(args.out, args.cards, args.seed, args.unknown)
    art = len({r.art_id for r in records})
    print(f"wrote {len(records)} cards ({art} distinct artworks) to {args.out}"
          + (f" and {args.unknown} unknown cards to {args.out}/unknown" if args.unknown else "")
          + f" in {time.perf_counter() - start:.1f} s")
    return 0
