"""Train (or resume) CardNet on a user's own reference images: progress + ETA, checkpoints, held-out report, ONNX.

    cardsorter train --images DIR [--metadata FILE] --out models/NAME [--steps N] [--max-minutes M] [--resume]

Each card is one class. A ``--holdout`` fraction of the cards is never trained on: at the end a
database of the trained cards is built with the new model (its open-set calibration included) and
fresh augmented views of trained cards (known) and held-out cards (unknown) are banded as the
matcher would (top-1 per nuisance, false accepts per view and per card). Needs requirements/train.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pathlib
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, TextIO

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from cardsorter.core.model_manifest import TRAINED_CARDS_SUFFIX
from training.cardnet import ArcMarginHead, CardNet, count_macs
from training.train_embedder import AugmentedCards, TrainConfig, write_model

BAR_WIDTH = 30
CHECKPOINT_EVERY_S = 60.0    # a checkpoint at least once a minute (and at the end / at the time limit)
WORK_SCALE = 2               # training images are kept at 2x the model input: augmentations then resize down


def eta_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """`[#####.....] step 120/400  loss 3.21  acc 0.41  12.0 steps/s  ETA 0:00:23` on one line."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.start_step: int | None = None

    def update(self, step: int, loss: float, acc: float) -> None:
        if self.start_step is None:
            self.start_step = step
            self.t0 = time.perf_counter()
        done = step - self.start_step
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        filled = BAR_WIDTH * step // max(self.total, 1)
        eta_s = eta_text(eta) if math.isfinite(eta) else "?"
        self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] step {step}/{self.total}  loss "
                          f"{loss:.3f}  acc {acc:.2f}  {rate:.2f} steps/s  ETA {eta_s}")
        if step >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def card_classes(images_dir: pathlib.Path, holdout: float) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """(trained, held out) reference images with a parseable name; a deterministic fraction of cards held out."""
    from cardsorter.core.errors import DatabaseError
    from cardsorter.db.names import list_reference_images, parse_reference_name

    train: list[pathlib.Path] = []
    held: list[pathlib.Path] = []
    for p in list_reference_images(images_dir):
        try:
            card = parse_reference_name(p.name).card_id
        except DatabaseError as err:
            print(f"skipping {p}: {err}", file=sys.stderr)
            continue
        h = int(hashlib.sha256(card.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < holdout else train).append(p)
    return train, held


def load_images(paths: Sequence[pathlib.Path], w: int, h: int,
                ) -> tuple[np.ndarray, list[int], list[str], list[pathlib.Path]]:
    """Images at 2x the model input (unreadable ones reported and skipped), class per image, class ids,
    the paths kept."""
    from cardsorter.core.errors import DatabaseError
    from cardsorter.db.build import read_image
    from cardsorter.db.names import parse_reference_name

    images: list[np.ndarray] = []
    labels: list[int] = []
    classes: dict[str, int] = {}
    kept: list[pathlib.Path] = []
    for p in paths:
        try:
            img = read_image(p)
        except DatabaseError as err:
            print(f"skipping {err}", file=sys.stderr)
            continue
        kept.append(p)
        card = parse_reference_name(p.name).card_id
        labels.append(classes.setdefault(card, len(classes)))
        images.append(cv2.resize(img, (w * WORK_SCALE, h * WORK_SCALE), interpolation=cv2.INTER_AREA))
    if not images:
        raise SystemExit("no readable training images")
    return np.stack(images), labels, list(classes), kept


def save_checkpoint(path: pathlib.Path, model: CardNet, head: ArcMarginHead, opt: Any, step: int,
                    meta: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "head": head.state_dict(), "opt": opt.state_dict(), "step": step,
                "meta": meta, "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)   # atomic: an interrupted save leaves the previous checkpoint


def train_catalogue(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    out = pathlib.Path(args.out)
    name = out.name
    out_dir = out.parent if str(out.parent) else pathlib.Path(".")
    ckpt = pathlib.Path(args.checkpoint) if args.checkpoint else out_dir / f"{name}.ckpt"
    cfg = TrainConfig(out_dir=out_dir, name=name, cards=0, seed=args.seed, input_w=args.input_w,
                      input_h=args.input_h, dim=args.dim, widths=tuple(int(v) for v in args.widths.split(",")),
                      batch=args.batch, steps=args.steps, max_minutes=args.max_minutes, lr=args.lr,
                      threads=args.threads, eval_cards=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    train_paths, held_paths = card_classes(pathlib.Path(args.images), args.holdout)
    images, labels, classes, train_paths = load_images(train_paths, cfg.input_w, cfg.input_h)
    held_paths = load_images(held_paths, 8, 8)[3] if held_paths else []   # readable ones only
    log(f"{len(classes)} training cards ({len(images)} images), {len(held_paths)} held-out images; "
        f"input {cfg.input_w}x{cfg.input_h}, dim {cfg.dim}, widths {list(cfg.widths)}")
    model = CardNet(cfg.dim, cfg.widths)
    head = ArcMarginHead(cfg.dim, len(classes), cfg.scale)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=cfg.lr, weight_decay=5e-4)
    meta = {"classes": classes, "input_w": cfg.input_w, "input_h": cfg.input_h, "dim": cfg.dim,
            "widths": list(cfg.widths), "steps": cfg.steps, "seed": cfg.seed}
    step = 0
    if args.resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state["meta"]["classes"] != classes or state["meta"]["widths"] != list(cfg.widths):
            raise SystemExit(f"checkpoint {ckpt} was made for other cards or another model shape: "
                             "remove it or drop --resume")
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
        log(f"resumed from {ckpt} at step {step}")
    # Rows (images) are drawn uniformly and map to their card's class.
    row_labels = torch.tensor(labels, dtype=torch.int64)
    dataset = _ResizingCards(images, cfg.batch, cfg.seed + step, cfg.input_w, cfg.input_h)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=0)
    bar = ProgressBar(cfg.steps)
    start = time.perf_counter()
    last_ckpt = start
    loss_avg = acc_avg = 0.0
    stopped_by_time = False
    model.train()
    for x, rows in loader:
        if step >= cfg.steps:
            break
        if (time.perf_counter() - start) / 60.0 >= cfg.max_minutes:
            stopped_by_time = True
            break
        y = row_labels[rows]
        progress = step / cfg.steps
        lr = cfg.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        margin = cfg.margin * min(1.0, max(0.0, (progress - 0.25) / 0.35))   # as train_embedder: ramp in
        logits = head(model(x), y, margin)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = 0.95 * loss_avg + 0.05 * loss.item() if loss_avg else loss.item()
        acc_avg = 0.95 * acc_avg + 0.05 * float((logits.argmax(1) == y).float().mean())
        step += 1
        bar.update(step, loss_avg, acc_avg)
        if time.perf_counter() - last_ckpt >= CHECKPOINT_EVERY_S:
            save_checkpoint(ckpt, model, head, opt, step, meta)
            last_ckpt = time.perf_counter()
    save_checkpoint(ckpt, model, head, opt, step, meta)
    if stopped_by_time:
        sys.stderr.write("\n")
        log(f"stopped at step {step}/{cfg.steps} after --max-minutes {cfg.max_minutes:g}; checkpoint {ckpt}: "
            "run again with --resume to continue")
    model.eval()
    info: dict[str, Any] = {
        "script": "training/train_catalogue.py", "torch": str(torch.__version__), "seed": cfg.seed,
        "classes": len(classes), "images": str(args.images), "steps": step, "steps_planned": cfg.steps,
        "batch": cfg.batch, "train_seconds_this_run": round(time.perf_counter() - start, 1),
        "widths": list(cfg.widths), "loss": "arcface", "margin": cfg.margin, "scale": cfg.scale,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "macs": count_macs(model, (cfg.input_h, cfg.input_w)), "held_out_cards_fraction": args.holdout,
        # which cards the model saw: `db build` calibrates the open-set bands on the others (a model pushes
        # the cards it was trained on apart, so left-out trained cards look more foreign than new ones)
        "trained_cards": f"{cfg.name}{TRAINED_CARDS_SUFFIX}",
    }
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / f"{cfg.name}{TRAINED_CARDS_SUFFIX}").write_text("".join(f"{c}\n" for c in sorted(classes)),
                                                                   encoding="utf-8")
    manifest, max_err = write_model(model, cfg, info)
    log(f"exported {manifest.file} ({manifest.file.stat().st_size / 1e6:.2f} MB), manifest {manifest.path}, "
        f"max |onnxruntime - torch| = {max_err:.2e}")
    report: dict[str, Any] = {"manifest": str(manifest.path), "model_id": manifest.model_id, "steps": step,
                              "onnx_max_abs_error": max_err, "stopped_by_time": stopped_by_time}
    if held_paths and not args.no_report:
        report["held_out"] = held_out_report(manifest.path, train_paths, held_paths, log)
        (out_dir / f"{name}.report.json").write_text(json.dumps(report, indent=1) + "\n")
    print_hef_commands(manifest.path, log)
    return report


class _ResizingCards(AugmentedCards):
    """AugmentedCards on 2x images, each augmented crop resized to the model input; yields (x, rows)."""

    def __init__(self, images: np.ndarray, batch: int, seed: int, w: int, h: int) -> None:
        super().__init__(images, batch, seed)
        self.w, self.h = w, h

    def __iter__(self) -> Any:
        from cardsorter.sim import augment
        from training.train_embedder import to_input

        rng = np.random.default_rng([self.seed, 0])
        n = len(self.images)
        while True:
            rows = rng.integers(0, n, self.batch)
            batch = np.stack([cv2.resize(augment.random_augment(self.images[i], rng), (self.w, self.h),
                                         interpolation=cv2.INTER_AREA) for i in rows])
            yield torch.from_numpy(to_input(batch)), torch.from_numpy(rows.astype(np.int64))


def held_out_report(manifest: pathlib.Path, train_paths: Sequence[pathlib.Path],
                    held_paths: Sequence[pathlib.Path], log: Any) -> dict[str, Any]:
    """Database of the trained cards and half of the held-out ones (the catalogue holds cards the model
    never saw: `db build` calibrates on those) with the new model; fresh views banded: known = the
    database's cards, unknown = the other held-out half."""
    from cardsorter.backends.embedders import open_embedder
    from cardsorter.bench.open_set import evaluate, render_eval_views
    from cardsorter.db.build import build_database
    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.settings import load_settings

    settings = load_settings()
    matcher = settings.matcher
    build_config = matcher.build
    search_config = matcher.search
    agreeing = settings.smoother.smoothing.confirm_views
    embedder = open_embedder("onnx", str(manifest), 1)
    with tempfile.TemporaryDirectory(prefix="cardsorter-train-") as tmp:
        refs = pathlib.Path(tmp) / "references"
        refs.mkdir()
        in_db, unknown = list(held_paths[0::2]), list(held_paths[1::2])
        for p in (*train_paths, *in_db):
            (refs / p.name).symlink_to(p.resolve())
        try:
            build = build_database(refs, pathlib.Path(tmp) / "db", embedder, build_config=build_config,
                                   search_config=search_config, agreeing_views=agreeing)
            db = ReferenceDatabase.load(pathlib.Path(tmp) / "db", embedder.model_id, search_config)
            bands, source = db.bands(matcher.bands)
            result = evaluate(db, bands, render_eval_views([*train_paths, *in_db], embedder),
                              render_eval_views(unknown, embedder), agreeing)
        finally:
            embedder.close()
    cal = build.calibration or {}
    result["bands"] = {"source": source, "confirm_distance_max": bands.confirm_distance_max,
                       "confirm_margin_min": bands.confirm_margin_min,
                       "uncertain_distance_max": bands.uncertain_distance_max,
                       "calibration_usable": bool(cal.get("usable"))}
    log("held-out report (fresh views; known = the database's cards: trained + half the held-out ones; "
        "unknown = the other held-out half):")
    for nuisance, row in result["per_view_by_nuisance"].items():
        log(f"  {nuisance:<12} known top-1 {row['known_top1']:.3f}  confirmed {row['known_confirmed_right']:.3f}  "
            f"unknown confirmed {row['unknown_false_accept']:.3f}")
    pv, pc = result["per_view"], result["per_card"]
    log(f"  per view: unknown confirmed {pv['unknown_false_accept']:.2%}, known confirmed {pv['known_confirmed_right']:.2%}"
        f"; per card ({agreeing} views): unknown confirmed {pc['unknown_false_accept']:.2%} of "
        f"{pc['unknown_cards']}, known confirmed {pc['known_confirmed_right']:.2%} of {pc['known_cards']}"
        f" (bands: {source})")
    return result


def print_hef_commands(manifest: pathlib.Path, log: Any) -> None:
    """The Hailo Dataflow Compiler steps for this model (run where the DFC is installed, not on the Pi)."""
    from cardsorter.core.model_manifest import load_manifest

    m = load_manifest(manifest)
    stem = m.file.stem
    log("compile for the Hailo-8 (Hailo Dataflow Compiler, x86 Linux; see models/README.md):")
    log(f"  hailo parser onnx {m.file} --hw-arch hailo8 --start-node-names {m.input_name} "
        f"--end-node-names {m.output_name}")
    log(f"  echo 'normalization1 = normalization({list(m.mean)}, {list(m.std)})' > {stem}.alls")
    log(f"  hailo optimize {stem}.har --hw-arch hailo8 --model-script {stem}.alls --calib-set-path calib.npy"
        f"   # calib.npy: a few hundred ({m.input_size_wh[1]}, {m.input_size_wh[0]}, 3) RGB uint8 crops")
    log(f"  hailo compiler {stem}_optimized.har --hw-arch hailo8")
    log(f"  then a manifest for {stem}.hef: layout nhwc, normalisation in_model, vstream names from "
        f"`hailortcli parse-hef {stem}.hef`")


def run_args(args: argparse.Namespace) -> int:
    """Train from parsed arguments (training.catalogue_args.add_catalogue_arguments)."""
    if not args.images or not args.out:
        raise SystemExit("cardsorter train needs --images DIR and --out models/NAME "
                         "(or `cardsorter train embedder …` for the procedural catalogue)")
    if args.metadata:
        from cardsorter.db.records import load_source_metadata

        load_source_metadata(pathlib.Path(args.metadata))   # a bad file fails here, before training
    if not 0.0 <= args.holdout < 1.0:
        raise SystemExit("--holdout must be in [0, 1)")
    report = train_catalogue(args, log=lambda s: print(s, flush=True))
    return 0 if report["onnx_max_abs_error"] < 1e-3 else 1


def main(argv: Sequence[str] | None = None) -> int:
    from training.catalogue_args import add_catalogue_arguments

    p = argparse.ArgumentParser(prog="python -m training.train_catalogue", description=__doc__.split("\n")[0])
    add_catalogue_arguments(p)
    return run_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
