"""Train the default card embedder (CardNet + ArcFace) on a procedural catalogue; export ONNX + manifest.

    python -m training.train_embedder --out models --cards 2000 --steps 4000 --max-minutes 30

Reproducible for a seed up to the wall-clock cap (--max-minutes stops early on a slow machine and the
learning-rate schedule follows whichever of steps or time runs out first). Needs requirements/train.txt.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from cardsorter.core.model_manifest import ModelManifest, file_sha256, write_manifest
from cardsorter.sim import augment
from cardsorter.sim.catalog import render_catalog
from training.cardnet import ArcMarginHead, CardNet, count_macs

# Model input contract (written to the manifest). RGB, NCHW, (x - mean) / std in 0..255 units.
MEAN_RGB = (127.5, 127.5, 127.5)
STD_RGB = (64.0, 64.0, 64.0)
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    out_dir: Path
    name: str = "cardnet"
    cards: int = 2000              # classes (printings) in the training catalogue
    seed: int = 1000               # training catalogue seed; evaluation uses other seeds
    input_w: int = 64             # 64x88: 3.2x cheaper than 112x160, which managed only ~600 steps
    input_h: int = 88             # in the time budget on the shared 2-core machine
    dim: int = 768
    widths: tuple[int, ...] = (16, 32, 64, 128)
    batch: int = 128
    steps: int = 4000
    max_minutes: float = 30.0
    lr: float = 3e-3
    margin: float = 0.2            # ArcFace angular margin (radians), ramped in from 25% to 60%
    scale: float = 30.0
    threads: int = 1               # 1, not 2: on a shared 2-core machine two OpenMP threads spun 4x slower
    eval_cards: int = 300
    eval_seed: int = 777


def to_input(images_bgr: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) BGR uint8 at input size -> (N, 3, H, W) float32 normalised RGB (the manifest's contract)."""
    rgb = images_bgr[..., ::-1].astype(np.float32)
    x = (rgb - np.array(MEAN_RGB, np.float32)) / np.array(STD_RGB, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def resize_cards(cards: list[np.ndarray], w: int, h: int) -> np.ndarray:
    return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in cards])


class AugmentedCards(torch.utils.data.IterableDataset):
    """Endless batches of (augmented card, class) drawn uniformly; deterministic per seed and worker."""

    def __init__(self, images: np.ndarray, batch: int, seed: int) -> None:
        self.images = images
        self.batch = batch
        self.seed = seed

    def __iter__(self) -> Any:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, wid])
        n = len(self.images)
        while True:
            labels = rng.integers(0, n, self.batch)
            batch = np.stack([augment.random_augment(self.images[i], rng) for i in labels])
            yield torch.from_numpy(to_input(batch)), torch.from_numpy(labels.astype(np.int64))


def embed_numpy(model: CardNet, images_bgr: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images_bgr), batch):
            out.append(F.normalize(model(torch.from_numpy(to_input(images_bgr[i:i + batch])))).numpy())
    return np.concatenate(out)


def quick_eval(model: CardNet, cfg: TrainConfig) -> dict[str, float]:
    """Held-out retrieval (catalogue seed never trained on): clean and 20% occlusion, top-1 / top-3."""
    cards = render_catalog(cfg.eval_cards, cfg.eval_seed)
    gallery = resize_cards([img for _, img in cards], cfg.input_w, cfg.input_h)
    g = embed_numpy(model, gallery)
    rng = np.random.default_rng(cfg.eval_seed)
    results: dict[str, float] = {}
    for name in ("clean", "occlusion20", "rot180", "glare"):
        q_imgs = gallery if name == "clean" else np.stack([augment.apply(name, im, rng) for im in gallery])
        sims = embed_numpy(model, q_imgs) @ g.T
        order = np.argsort(-sims, axis=1)[:, :3]
        truth = np.arange(len(gallery))[:, None]
        results[f"{name}_top1"] = float(np.mean(order[:, 0] == truth[:, 0]))
        results[f"{name}_top3"] = float(np.mean(np.any(order == truth, axis=1)))
    return results


def export_onnx(model: CardNet, path: Path, input_w: int, input_h: int) -> float:
    """Export (opset 17, dynamic batch) and return max |onnxruntime - torch| on a random batch."""
    import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type information

    model.eval()
    x = torch.randn(3, 3, input_h, input_w)
    torch.onnx.export(model, (x,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      opset_version=17, dynamo=False,
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x2 = torch.randn(5, 3, input_h, input_w)
    with torch.no_grad():
        expected = model(x2).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x2.numpy()})[0]
    return float(np.max(np.abs(got - expected)))


def write_model(model: CardNet, cfg: TrainConfig, training_info: dict[str, Any]) -> tuple[ModelManifest, float]:
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = cfg.out_dir / f"{cfg.name}.onnx"
    max_err = export_onnx(model, onnx_path, cfg.input_w, cfg.input_h)
    sha = file_sha256(onnx_path)
    manifest = write_manifest(cfg.out_dir / f"{cfg.name}.yaml", {
        "model_id": f"{cfg.name}-{sha[:12]}",
        "file": onnx_path.name, "sha256": sha,
        "input_name": INPUT_NAME, "input_width": cfg.input_w, "input_height": cfg.input_h,
        "colour_order": "rgb", "layout": "nchw", "normalisation": "mean_std",
        "mean": list(MEAN_RGB), "std": list(STD_RGB),
        "output_name": OUTPUT_NAME, "dimension": cfg.dim, "metric": "cos",
        "preprocessing": {"clahe": False, "gamma": 1.0},
        "description": "CardNet: pure-CNN card embedder trained by training/train_embedder.py on a "
                       "procedural catalogue with ArcFace; see models/README.md",
        "training": training_info,
    })
    return manifest, max_err


def train(cfg: TrainConfig, log: Any = print) -> tuple[CardNet, dict[str, Any]]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    cards = render_catalog(cfg.cards, cfg.seed)
    images = resize_cards([img for _, img in cards], cfg.input_w, cfg.input_h)
    log(f"rendered {len(images)} training cards in {time.perf_counter() - t0:.1f} s")
    model = CardNet(cfg.dim, cfg.widths)
    head = ArcMarginHead(cfg.dim, len(images), cfg.scale)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(AugmentedCards(images, cfg.batch, cfg.seed), batch_size=None,
                                         num_workers=1 if cfg.steps > 20 else 0, prefetch_factor=4
                                         if cfg.steps > 20 else None, persistent_workers=False)
    start = time.perf_counter()
    budget_s = cfg.max_minutes * 60.0
    step = 0
    loss_avg = 0.0
    acc_avg = 0.0
    model.train()
    for x, y in loader:
        progress = max(step / cfg.steps, (time.perf_counter() - start) / budget_s)
        if progress >= 1.0:
            break
        warm = min(1.0, (step + 1) / 50)
        lr = cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))
        for group in opt.param_groups:
            group["lr"] = lr
        # Plain normalised softmax first, then the ArcFace margin ramps in: ArcFace from scratch with
        # its full margin at once stalled here (loss rising, train accuracy 0 after 100 steps).
        margin = cfg.margin * min(1.0, max(0.0, (progress - 0.25) / 0.35))
        logits = head(model(x), y, margin)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = 0.95 * loss_avg + 0.05 * loss.item() if step else loss.item()
        acc_avg = 0.95 * acc_avg + 0.05 * float((logits.argmax(1) == y).float().mean())
        step += 1
        if step % 50 == 0 or step == 1:
            log(f"step {step} progress {progress:.2f} lr {lr:.2e} margin {margin:.2f} loss {loss_avg:.3f} "
                f"train-acc {acc_avg:.3f} elapsed {time.perf_counter() - start:.0f} s")
    train_s = time.perf_counter() - start
    model.eval()
    info: dict[str, Any] = {
        "script": "training/train_embedder.py", "torch": str(torch.__version__), "seed": cfg.seed,
        "classes": len(images), "steps": step, "batch": cfg.batch, "train_seconds": round(train_s, 1),
        "widths": list(cfg.widths), "loss": "arcface", "margin": cfg.margin, "scale": cfg.scale,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "macs": count_macs(model, (cfg.input_h, cfg.input_w)),
        "machine": f"{platform.machine()} {platform.processor() or ''} threads={cfg.threads}".strip(),
    }
    return model, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--name", default="cardnet")
    p.add_argument("--cards", type=int, default=TrainConfig.cards)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--max-minutes", type=float, default=TrainConfig.max_minutes)
    p.add_argument("--dim", type=int, default=TrainConfig.dim)
    p.add_argument("--input-w", type=int, default=TrainConfig.input_w)
    p.add_argument("--input-h", type=int, default=TrainConfig.input_h)
    p.add_argument("--widths", default=",".join(map(str, TrainConfig.widths)))
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--eval-cards", type=int, default=TrainConfig.eval_cards)
    p.add_argument("--checkpoint", type=Path, default=None, help="also save the torch state_dict here")
    args = p.parse_args(argv)
    cfg = TrainConfig(out_dir=args.out, name=args.name, cards=args.cards, seed=args.seed, steps=args.steps,
                      batch=args.batch, max_minutes=args.max_minutes, dim=args.dim, input_w=args.input_w,
                      input_h=args.input_h, widths=tuple(int(v) for v in args.widths.split(",")),
                      threads=args.threads, eval_cards=args.eval_cards)

    def log(msg: str) -> None:
        print(msg, flush=True)

    model, info = train(cfg, log)
    if cfg.eval_cards > 0:
        info["heldout_eval"] = {k: round(v, 4) for k, v in quick_eval(model, cfg).items()}
        info["heldout_eval"]["cards"] = cfg.eval_cards
        info["heldout_eval"]["seed"] = cfg.eval_seed
        log(f"held-out eval: {json.dumps(info['heldout_eval'])}")
    manifest, max_err = write_model(model, cfg, info)
    log(f"exported {manifest.file} ({manifest.file.stat().st_size / 1e6:.2f} MB), manifest {manifest.path}, "
        f"max |onnxruntime - torch| = {max_err:.2e}")
    if args.checkpoint is not None:
        torch.save({"model": model.state_dict(), "config": dataclasses.asdict(cfg) | {"out_dir": str(cfg.out_dir)}},
                   args.checkpoint)
    return 0 if max_err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
