"""`cardsorter db build|check|add|merge`: the reference database from the command line."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from cardsorter.console import progress_bar


def _print_search(searched: Any, out: Any) -> None:
    if not searched:
        return
    if searched.get("mode") == "exact":
        print(f"search: exact ({searched['rows']} rows <= search.exact_max_rows)", file=out)
        return
    raised = (f"raised ef from {searched['raised_from']} to {searched['expansion_search']}"
              if searched["expansion_search"] != searched["raised_from"] else f"ef {searched['expansion_search']}")
    verdict = "" if searched["reached_1_000"] else " — BELOW 1.000 at the largest ef tried (search.tune_expansion_max)"
    print(f"search: HNSW {searched['dtype']} M={searched['connectivity']}, {raised}: recall@1 "
          f"{searched['recall_at_1']:.4f}, recall@{searched['k']} {searched['recall_at_k']:.4f} vs exact on "
          f"{searched['queries']} augmented views{verdict}", file=out)


def _print_calibration(calibration: Any, out: Any) -> None:
    if not calibration:
        print("calibration: none recorded (database built before calibration existed): the matcher uses "
              "bands.fallback_*", file=out)
        return
    if not calibration.get("usable"):
        print(f"calibration: not usable: {calibration.get('reason')}", file=out)
        return
    b, pv, pc = calibration["bands"], calibration["per_view"], calibration["per_card"]
    print(f"calibration (target {calibration['target_false_accept_per_view']:.2%} false accepts per view; "
          f"{calibration['known_views']} known views, {calibration['unknown_views']} left-out views): "
          f"confirm_distance_max {b['confirm_distance_max']:.4f}, confirm_margin_min {b['confirm_margin_min']:.4f}, "
          f"uncertain_distance_max {b['uncertain_distance_max']:.4f}", file=out)
    print(f"  per view: unknown confirmed {pv['unknown_false_accept']:.2%}, known confirmed right "
          f"{pv['known_confirmed_right']:.2%} / wrong {pv['known_confirmed_wrong']:.2%}, known banded UNKNOWN "
          f"{pv['known_banded_unknown']:.2%}", file=out)
    print(f"  per card ({calibration['agreeing_views']} agreeing views of {pc['views_per_card']:g}): unknown "
          f"confirmed {pc['unknown_false_accept']:.2%} (independent views: "
          f"{calibration['per_card_unknown_false_accept_if_independent']:.2e}), known confirmed right "
          f"{pc['known_confirmed_right']:.2%}, not confirmed {pc['known_not_confirmed']:.2%}", file=out)


def _print_self_retrieval(report: Any, out: Any) -> None:
    if report is None:
        return
    print(f"self-retrieval: {report.checked_rows} templates checked, {len(report.not_self)} do not find their "
          f"own card first, {len(report.near_duplicates)} near-duplicate card pairs (art groups)", file=out)
    for n in report.not_self[:20]:
        print(f"  not self: {n.card_id} ({n.source}) → nearest is {n.nearest_card} at {n.distance_cos:.4f}", file=out)
    for d in report.near_duplicates[:20]:
        print(f"  art group: {d.card_a} ~ {d.card_b} at {d.distance_cos:.4f}", file=out)


def _print_build(report: Any, verb: str) -> None:
    out = sys.stdout
    print(f"{verb} {report.path}: database {report.database_id}, {report.rows} templates of {report.cards} cards",
          file=out)
    if report.skipped:
        print(f"skipped {len(report.skipped)} images:", file=out)
        for s in report.skipped:
            print(f"  {s.path}: {s.reason}", file=out)
    if report.metadata_format:
        print(f"catalogue ({report.metadata_format}): {report.catalogue_records} records", file=out)
    if report.import_problems:
        from cardsorter.db.importers import iter_problem_lines

        counts: dict[str, int] = {}
        for p in report.import_problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        print(f"{len(report.import_problems)} catalogue problems ("
              + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + "):", file=out)
        for line in iter_problem_lines(report.import_problems):
            print(line, file=out)
    if report.without_metadata:
        print(f"{len(report.without_metadata)} cards not in the metadata file (named from the file name): "
              f"{', '.join(report.without_metadata[:10])}", file=out)
    if report.metadata_without_image:
        shown = ", ".join(report.records_without_image[:10])
        more = f" (+{len(report.records_without_image) - 10} more)" if len(report.records_without_image) > 10 else ""
        print(f"{report.metadata_without_image} metadata entries have no image: {shown}{more}", file=out)
    _print_self_retrieval(report.self_retrieval, out)


def _cmd_build(args: argparse.Namespace) -> int:
    from cardsorter.database_setup import build_database_from_settings

    report = build_database_from_settings(pathlib.Path(args.images), pathlib.Path(args.out),
                                          metadata=pathlib.Path(args.metadata) if args.metadata else None,
                                          metadata_format=args.metadata_format, params_file=args.params,
                                          model=args.model, backend=args.backend, threads=args.threads,
                                          progress=progress_bar())
    _print_build(report, "built")
    _print_calibration(report.calibration, sys.stdout)
    _print_search(getattr(report, "search", None), sys.stdout)
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    from cardsorter.database_setup import agreeing_views, build_configs, open_embedder
    from cardsorter.db.delta import add_to_database

    build_config, search_config = build_configs(args.params)
    embedder, _ = open_embedder(args.params, args.model, args.backend, args.threads)
    try:
        report = add_to_database(pathlib.Path(args.db), pathlib.Path(args.images), embedder,
                                 build_config=build_config, search_config=search_config,
                                 metadata_path=pathlib.Path(args.metadata) if args.metadata else None,
                                 progress=progress_bar(), metadata_format=args.metadata_format,
                                 agreeing_views=agreeing_views(args.params))
    finally:
        embedder.close()
    _print_build(report, "added to")
    _print_calibration(report.calibration, sys.stdout)
    _print_search(getattr(report, "search", None), sys.stdout)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from cardsorter.database_setup import agreeing_views, build_configs
    from cardsorter.db.delta import merge_database

    build_config, search_config = build_configs(args.params)
    report = merge_database(pathlib.Path(args.db), pathlib.Path(args.out) if args.out else None,
                            build_config=build_config, search_config=search_config, progress=progress_bar(),
                            agreeing_views=agreeing_views(args.params))
    _print_build(report, "merged into")
    _print_calibration(report.calibration, sys.stdout)
    _print_search(getattr(report, "search", None), sys.stdout)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from cardsorter.database_setup import build_configs, open_embedder
    from cardsorter.db.delta import check_database

    build_config, search_config = build_configs(args.params)
    expected = None
    if args.model:
        embedder, _ = open_embedder(args.params, args.model, args.backend, args.threads)
        expected = embedder.model_id
        embedder.close()
    report = check_database(pathlib.Path(args.db), expected_model_id=expected, build_config=build_config,
                            search_config=search_config, progress=progress_bar())
    print(f"ok {report.path}: database {report.database_id}, model {report.model_id}, {report.cards} cards, "
          f"{report.rows} templates ({report.delta_rows} in the delta), {report.art_grouped_cards} cards in "
          "art groups; checksums, rows/metadata, ids, norms, finiteness: pass")
    _print_self_retrieval(report.self_retrieval, sys.stdout)
    _print_calibration(report.calibration, sys.stdout)
    if args.report:
        from cardsorter.db.calibrate import plot_calibration

        plot_calibration(report.calibration or {}, pathlib.Path(args.report))
        print(f"wrote {args.report}")
    return 0


def _embedder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="MANIFEST", help="model manifest (default: embedder.model_manifest)")
    p.add_argument("--backend", help="embedder backend: onnx | hailo (default: embedder.backend)")
    p.add_argument("--threads", type=int, help="inference threads (default: embedder.threads)")


def _metadata_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", metavar="PATH",
                   help="catalogue: pokemontcg.io dump folder (cards/<lang>/<set>.json + sets/<lang>.json) or one "
                        "of its files, a Scryfall bulk file (default_cards / all_cards JSON), or a database's "
                        "metadata.json")
    p.add_argument("--metadata-format", choices=("auto", "pokemontcg", "scryfall", "cardsorter"), default="auto",
                   help="catalogue format (default: detected from the folder layout or the first record)")


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="reference database: build, check, add, merge")
    db.add_argument("--params", metavar="FILE", help="parameters YAML (default: config/sorter.yaml)")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")

    p = sub.add_parser("build", help="embed a folder of reference images into a new database")
    p.add_argument("--images", required=True, metavar="DIR",
                   help="card images as the source names them: {card id}[_hires].png, SET/NUMBER[_hires].png, "
                        "Scryfall {id}.jpg, or {set_id}-{number}_{name}.png")
    _metadata_args(p)
    p.add_argument("--out", required=True, metavar="DB", help="new database directory (must not exist)")
    _embedder_args(p)
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("check", help="run every integrity check and the self-retrieval check")
    p.add_argument("db", metavar="DB")
    p.add_argument("--report", metavar="PNG", help="plot the open-set calibration (distances, accept curves) here")
    _embedder_args(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("add", help="embed more images into DB/delta (the snapshot stays frozen)")
    p.add_argument("db", metavar="DB")
    p.add_argument("--images", required=True, metavar="DIR")
    _metadata_args(p)
    _embedder_args(p)
    p.set_defaults(func=_cmd_add)

    p = sub.add_parser("merge", help="freeze snapshot + delta into a new database version")
    p.add_argument("db", metavar="DB")
    p.add_argument("--out", metavar="NEW", help="new database directory (default: DB-merged-<delta id>)")
    p.set_defaults(func=_cmd_merge)
