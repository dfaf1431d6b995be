"""Train CardDet (training/detector_model.py) on cached composites; export ONNX + manifest (models/carddet.*).

    python -m training.make_detector_data --out CACHE ...            # first: the scenes (see models/README.md)
    python -m training.train_detector --data CACHE [CACHE2 ...] --out models --max-minutes 50
    python -m training.train_detector --export-only /work/data/det-train/best.pt --out models

The schedule (one-cycle cosine) follows whichever of --steps and --max-minutes runs out first; the
checkpoint with the best synthetic validation score (held-out shards, never trained on) is kept
(--ckpt-dir/best.pt) and exported. Needs requirements/train.txt (torch, onnx).
"""

from __future__ import annotations

import argparse
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

from cardsorter.core.card_detector_decode import DEFAULT_DECODE, decode, letterbox_for
from cardsorter.core.model_manifest import file_sha256
from training.detector_model import (
    INPUT_H,
    INPUT_NAME,
    INPUT_W,
    OUTPUT_NAMES,
    STRIDE,
    CardDet,
    count_macs,
    count_parameters,
)
from training.detector_targets import make_targets
from training.onnx_init import freeze_batchnorm, load_onnx_weights

GRID_HW = (INPUT_H // STRIDE, INPUT_W // STRIDE)
LOSS_WEIGHTS = {"centre": 1.0, "corner_heat": 1.0, "corners": 2.0, "sub": 0.5, "up": 0.3}


class Cache:
    """All shards in memory: images (N, H, W, 3) BGR uint8 and per-image card labels."""

    def __init__(self, paths: list[Path]) -> None:
        images, labels = [], []
        for p in paths:
            z = np.load(p)
            imgs = z["images"]
            per: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(len(imgs))]
            for q, s, h in zip(z["quads"], z["sample"], z["hidden"], strict=True):
                per[int(s)].append((q.astype(np.float64), float(h)))
            images.append(imgs)
            labels += per
        self.images = np.concatenate(images) if images else np.empty((0, INPUT_H, INPUT_W, 3), np.uint8)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def extend(self, paths: list[Path]) -> None:
        """Add shards written since training started (a second data generator may still be running)."""
        more = Cache(paths)
        if len(more):
            self.images = np.concatenate([self.images, more.images])
            self.labels += more.labels


def to_input(images_bgr: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) BGR uint8 -> (N, 3, H, W) float32 RGB in 0..1 (the manifest's contract)."""
    return np.ascontiguousarray(images_bgr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def batch(cache: Cache, idx: np.ndarray, rng: np.random.Generator, mode: str = "full"
          ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Inputs and targets. ``mode``: full (the 256x192 scene), half (the scene at 128x96: 4x cheaper, the
    same cards smaller) or crop (a 128x96 window of the scene at full scale: sharp corners, 4x cheaper)."""
    imgs = cache.images[idx]
    out_hw = (INPUT_H, INPUT_W) if mode == "full" else (INPUT_H // 2, INPUT_W // 2)
    grid = (out_hw[0] // STRIDE, out_hw[1] // STRIDE)
    xs = np.empty((len(idx), *out_hw, 3), np.uint8)
    heat, corners, reg_w, sub, sub_w, up = [], [], [], [], [], []
    for k, i in enumerate(idx):
        img = imgs[k]
        quads = [q for q, _ in cache.labels[i]]
        hidden = [h for _, h in cache.labels[i]]
        if mode == "half":
            img = cv2.resize(img, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_AREA)
            quads = [(q + 0.5) * 0.5 - 0.5 for q in quads]
        elif mode == "crop":
            y0 = int(rng.integers(0, INPUT_H - out_hw[0] + 1)) // STRIDE * STRIDE
            x0 = int(rng.integers(0, INPUT_W - out_hw[1] + 1)) // STRIDE * STRIDE
            img = img[y0:y0 + out_hw[0], x0:x0 + out_hw[1]]
            quads = [q - np.array([x0, y0]) for q in quads]
        if rng.random() < 0.5:   # mirror: corners stay clockwise from the (mirrored) card's top-left
            img = img[:, ::-1]
            quads = [np.stack([out_hw[1] - 1 - q[:, 0], q[:, 1]], axis=1)[[1, 0, 3, 2]] for q in quads]
        xs[k] = img
        t = make_targets(quads, grid, hidden)
        heat.append(t.heat)
        corners.append(t.corners)
        reg_w.append(t.reg_weight)
        sub.append(t.sub)
        sub_w.append(t.sub_weight)
        up.append(t.up)
    targets = {"heat": np.stack(heat), "corners": np.stack(corners), "reg_w": np.stack(reg_w), "sub": np.stack(sub),
               "sub_w": np.stack(sub_w), "up": np.stack(up)}
    x = torch.from_numpy(to_input(xs)).contiguous(memory_format=torch.channels_last)
    return x, {k: torch.from_numpy(v) for k, v in targets.items()}


def focal(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on Gaussian heatmaps (alpha 2, beta 4)."""
    pos = target >= 0.999
    log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    pos_loss = (log_p * (1 - p) ** 2)[pos].sum()
    neg_loss = (log_q * p ** 2 * (1 - target) ** 4)[~pos].sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1)


def losses(model: CardDet, x: torch.Tensor, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    heat_logits, geo = model.forward_logits(x)
    out = {"centre": focal(heat_logits[:, 0], t["heat"][:, 0]),
           "corner_heat": focal(heat_logits[:, 1], t["heat"][:, 1])}
    w = t["reg_w"]
    wsum = w.sum().clamp(min=1e-6)
    pred = geo[:, 0:8]
    # invariant to the cyclic shift of the corners: the best of the four per cell
    per_shift = torch.stack([F.smooth_l1_loss(pred, torch.roll(t["corners"], 2 * r, dims=1), reduction="none",
                                              beta=0.05).sum(1) for r in range(4)])
    out["corners"] = (per_shift.min(0).values * w).sum() / wsum
    sw = t["sub_w"]
    out["sub"] = ((geo[:, 8:10] - t["sub"]).abs().sum(1) * sw).sum() / sw.sum().clamp(min=1e-6)
    out["up"] = ((geo[:, 10:12] - t["up"]).abs().sum(1) * w).sum() / wsum
    out["total"] = sum(LOSS_WEIGHTS[k] * v for k, v in out.items())
    return out


def evaluate(model: CardDet, cache: Cache, limit: int = 400) -> dict[str, float]:
    """Synthetic validation: recall / precision at box IoU 0.5 and corner error in % of the diagonal."""
    from cardsorter.core.types import BoxPx

    model.eval()
    lb = letterbox_for((INPUT_W, INPUT_H), (INPUT_W, INPUT_H))
    expected = found = false_pos = 0
    errors: list[float] = []
    orient_ok = orient_n = 0
    with torch.no_grad():
        for start in range(0, min(limit, len(cache)), 32):
            idx = np.arange(start, min(start + 32, limit, len(cache)))
            heat, geo = model(torch.from_numpy(to_input(cache.images[idx])))
            for k, i in enumerate(idx):
                dets = [d for d in decode(heat[k].numpy(), geo[k].numpy(), lb, DEFAULT_DECODE)]
                truth = [q for q, h in cache.labels[i] if h < 0.3 and _inside(q)]
                used: set[int] = set()
                for q in truth:
                    expected += 1
                    gbox = BoxPx.from_quad(tuple(map(tuple, q)))  # type: ignore[arg-type]
                    best, best_iou = -1, 0.5
                    for di, d in enumerate(dets):
                        iou = gbox.iou(d.bbox_px)
                        if di not in used and iou >= best_iou:
                            best, best_iou = di, iou
                    if best < 0:
                        continue
                    used.add(best)
                    found += 1
                    f = np.asarray(dets[best].quad_px)
                    diag = float(np.linalg.norm(q[2] - q[0]))
                    e_same = float(np.linalg.norm(f - q, axis=1).max())
                    e_rot = float(np.linalg.norm(np.roll(f, 2, axis=0) - q, axis=1).max())
                    errors.append(100.0 * min(e_same, e_rot) / diag)
                    orient_n += 1
                    orient_ok += int(e_same <= e_rot)
                unmatched = [di for di in range(len(dets)) if di not in used
                             and not any(BoxPx.from_quad(tuple(map(tuple, q))).iou(dets[di].bbox_px) > 0.3  # type: ignore[arg-type]
                                         for q, _ in cache.labels[i])]
                false_pos += len(unmatched)
    model.train()
    recall = found / max(1, expected)
    precision = found / max(1, found + false_pos)
    return {"recall": recall, "precision": precision,
            "corner_err_mean_pct": float(np.mean(errors)) if errors else math.nan,
            "corner_err_p95_pct": float(np.percentile(errors, 95)) if errors else math.nan,
            "orientation": orient_ok / max(1, orient_n),
            "score": recall + precision - 0.05 * (float(np.percentile(errors, 95)) if errors else 100.0)}


def _inside(q: np.ndarray, margin: float = 2.0) -> bool:
    return bool(np.all((q[:, 0] >= margin) & (q[:, 0] <= INPUT_W - 1 - margin) & (q[:, 1] >= margin)
                       & (q[:, 1] <= INPUT_H - 1 - margin)))


def export(ckpt_path: Path, out_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    """ONNX (static 1x3x192x256, opset 17) + models/carddet.yaml; checks onnxruntime against torch."""
    import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type information
    import yaml

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    model = CardDet(**ckpt.get("model_args", {}))
    model.load_state_dict(ckpt["model"])
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "carddet.onnx"
    x = torch.rand(1, 3, INPUT_H, INPUT_W)
    torch.onnx.export(model, (x,), str(onnx_path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                      opset_version=17, dynamo=False, do_constant_folding=True)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {INPUT_NAME: x.numpy()})
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got, want, strict=True):
        if not np.allclose(g, w.numpy(), atol=1e-3):
            raise RuntimeError(f"onnxruntime differs from torch by {np.abs(g - w.numpy()).max()}")
    sha = file_sha256(onnx_path)
    import onnx

    ops = sorted({n.op_type for n in onnx.load(str(onnx_path)).graph.node})
    manifest = {
        "model_id": f"carddet-{sha[:12]}",
        "file": onnx_path.name,
        "sha256": sha,
        "input_name": INPUT_NAME,
        "input_width": INPUT_W,
        "input_height": INPUT_H,
        "colour_order": "rgb",
        "layout": "nchw",
        "normalisation": "mean_std",
        "mean": [0.0, 0.0, 0.0],
        "std": [255.0, 255.0, 255.0],
        "letterbox_pad_grey": 114,
        "outputs": {"heatmaps": "(1, 2, 48, 64) sigmoid: card centre, card corner",
                    "geometry": "(1, 12, 48, 64): 4 corners (dx, dy) / 16 px from the cell centre, clockwise; "
                                "corner sub-cell offset (cells); up vector"},
        "stride": STRIDE,
        "corner_unit_px": 16.0,
        "decoding": "cardsorter.core.card_detector_decode.decode",
        "operators": ops,
        "description": "CardDet: our own keypoint-style card detector (training/detector_model.py), "
                       "trained by training/train_detector.py on composites (cardsorter/sim/composite.py); "
                       "see models/README.md",
        "training": json.loads(json.dumps({**ckpt.get("facts", {}), **(extra or {})}, default=str)),
    }
    (out_dir / "carddet.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None),
                                          encoding="utf-8")
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.train_detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, nargs="*", default=[], help="shard folders (make_detector_data)")
    p.add_argument("--val-shards", type=int, default=1, help="last N shards of the first folder: validation")
    p.add_argument("--out", type=Path, default=Path("models"))
    p.add_argument("--ckpt-dir", type=Path, default=Path("/work/data/det-train"))
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--max-minutes", type=float, default=50.0)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=1)   # 2 OpenMP threads on the shared 2-core machine: 3-5x slower per step
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--eval-every", type=int, default=400)
    p.add_argument("--full-from", type=float, default=0.7, help="share of training before full-size steps")
    p.add_argument("--resume", type=Path, default=None)
    p.add_argument("--init-onnx", type=Path, default=None,
                   help="start from this carddet.onnx (e.g. the shipped models/carddet.onnx); BatchNorm "
                        "statistics stay frozen (training/onnx_init.py)")
    p.add_argument("--export-only", type=Path, default=None, help="export this checkpoint and stop")
    args = p.parse_args(argv)
    if args.export_only is not None:
        print(export(args.export_only, args.out))
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    shards = [sorted(d.glob("shard-*.npz")) for d in args.data]
    val_paths = shards[0][-args.val_shards:]
    train_paths = [s for group in shards for s in group if s not in val_paths]
    train, val = Cache(train_paths), Cache(val_paths)
    print(f"train {len(train)} scenes from {len(train_paths)} shards, val {len(val)}", flush=True)
    model = CardDet().to(memory_format=torch.channels_last)   # 1.5x faster on CPU (mkldnn) than NCHW
    if args.resume is not None and args.init_onnx is not None:
        p.error("--resume and --init-onnx exclude each other")
    if args.resume is not None:
        model.load_state_dict(torch.load(args.resume, map_location="cpu", weights_only=False)["model"])
    frozen_bn = args.init_onnx is not None
    if args.init_onnx is not None:
        n = load_onnx_weights(model, args.init_onnx, (1, 3, INPUT_H, INPUT_W))
        print(f"started from {args.init_onnx} ({n} convolutions; BatchNorm statistics frozen)", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    args.ckpt_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    budget_s = 60.0 * args.max_minutes
    best = -math.inf
    step = 0
    hist: dict[str, float] = {}
    while step < args.steps:
        elapsed = time.time() - t0
        progress = max(step / args.steps, elapsed / budget_s)
        if progress >= 1.0:
            break
        warm = min(1.0, (step + 1) / 200)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))
        for g in opt.param_groups:
            g["lr"] = lr
        # cheap low-resolution steps first, the full input size for the last part (see batch())
        mode = "full" if progress >= args.full_from else ("half" if step % 2 else "crop")
        x, t = batch(train, rng.integers(0, len(train), args.batch), rng, mode)
        if frozen_bn:
            freeze_batchnorm(model)   # evaluate() puts the whole network back in training mode
        parts = losses(model, x, t)
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        for k, v in parts.items():
            hist[k] = 0.98 * hist.get(k, float(v)) + 0.02 * float(v)
        step += 1
        if step % 500 == 0:
            new = [s for d in args.data for s in sorted(d.glob("shard-*.npz"))
                   if s not in val_paths and s not in train_paths]
            if new:
                train.extend(new)
                train_paths += new
                print(f"added {len(new)} shards: {len(train)} training scenes", flush=True)
        if step % 50 == 0:
            print(f"step {step} {elapsed:6.0f}s lr {lr:.5f} " + " ".join(f"{k} {v:.4f}" for k, v in hist.items()),
                  flush=True)
        if step % args.eval_every == 0 or time.time() - t0 >= budget_s or step == args.steps:
            m = evaluate(model, val)
            print(f"eval step {step}: " + json.dumps({k: round(v, 4) for k, v in m.items()}), flush=True)
            facts = {"script": "training/train_detector.py", "torch": str(torch.__version__), "seed": args.seed,
                     "steps": step, "batch": args.batch, "lr": args.lr, "train_seconds": round(time.time() - t0, 1),
                     "train_scenes": len(train), "data": [str(d) for d in args.data],
                     "init": str(args.init_onnx or args.resume or "random"),
                     "parameters": count_parameters(model), "macs": count_macs(model),
                     "machine": f"{platform.machine()} threads={args.threads}",
                     "synthetic_val": {k: round(v, 4) for k, v in m.items()}}
            state = {"model": model.state_dict(), "facts": facts, "model_args": {}}
            torch.save(state, args.ckpt_dir / "last.pt")
            if m["score"] > best:
                best = m["score"]
                torch.save(state, args.ckpt_dir / "best.pt")
                print(f"  new best {best:.4f} -> {args.ckpt_dir / 'best.pt'}", flush=True)
    print(export(args.ckpt_dir / "best.pt", args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
