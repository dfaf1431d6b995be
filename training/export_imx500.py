"""Quantise CardDet with Sony's MCT and convert it with imx500-converter: the packer output for ``imx500-package``.

Runs in its own venv (``requirements/export-imx500.txt``: MCT 2.5.1, imx500-converter[pt] 3.19.2,
torch 2.13.0 CPU), apart from the runtime's: the converter's ``uni-pytorch`` pins
``onnxruntime~=1.21`` and ``mct-quantizers~=1.6``, so MCT 2.5.1 (``mct-quantizers==1.6.0``) is the
newest MCT that resolves with it. The converter is Java: it needs a JRE (Debian
``openjdk-17-jre-headless``). Run it with any Python; it re-runs itself inside the venv::

    python training/export_imx500.py --setup                     # create the venv (once)
    nice -n 10 python training/export_imx500.py \\
        --checkpoint /work/data/det-train/best.pt --shards /work/data/det-train/cache_a \\
        --out var/imx500 --manifest models/carddet.yaml

Steps: load the checkpoint (``training/train_detector.py`` format: ``{"model": state_dict,
"model_args": {...}}``, or the shipped ``models/carddet.onnx`` itself); post-training quantisation with the IMX500 target platform capabilities
(``--tpc``: MCT's IMX500 v1, 8-bit activations, or edge-mdt-tpc's 4.0 with ``--geometry-bits 16``
for a 16-bit geometry output) on representative scenes from
the training compositor's shards (``--shards``, images at the network's input size) or a folder of
images (``--images``, letterboxed like the CPU backend); quantised vs float accuracy on held-out
composites (``--eval``); export of MCT's quantised ONNX; ``imxconv-pt`` (the converter's PyTorch
entry point) → ``packerOut.zip``, ``dnnParams.xml`` and the memory report. The facts (memory,
output tensors as the sensor delivers them, accuracy) go to ``<out>/imx500_report.json`` and, with
``--manifest``, into the detector manifest's ``imx500:`` section. On the Pi:
``imx500-package -i packerOut.zip -o <dir>`` gives ``network.rpk`` (docs/IMX500.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(os.environ.get("CARDSORTER_IMX500_VENV", "/work/data/venvs/imx500-export"))
REQUIREMENTS = REPO / "requirements" / "export-imx500.txt"
TORCH_PIN = "torch==2.13.0"
"""Installed first so pip takes the CPU build (a local wheel, or PyTorch's CPU wheel index), never the CUDA one."""
TPCS = ("mct-v1", "edgemdt-4.0")
"""Target platform capabilities: MCT 2.5.1's own IMX500 v1 (8-bit activations only), or edge-mdt-tpc's
IMX500 4.0 (Sony's TPC package, Apache-2.0; allows 16-bit activations, needed for ``--geometry-bits 16``)."""
GEOMETRY_NODE = "geom_2"
"""MCT's name for CardDet's last geometry convolution (``geom[2]``): the ``geometry`` output tensor."""
NETWORK_NAME = "carddet_imx500"
CALIB_BATCH = 16
EVAL_IOU_MIN = 0.5
EVAL_HIDDEN_MAX = 0.3
"""Cards hidden more than 30 % are not counted in the accuracy check (as training/train_detector.py evaluates)."""


# --- the venv --------------------------------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def setup_venv(venv: Path) -> None:
    """Create ``venv`` with torch CPU first, then the pinned export requirements."""
    if shutil.which("java") is None:
        raise SystemExit("imx500-converter needs a Java runtime: apt-get install openjdk-17-jre-headless")
    if not _venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(_venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    print(f"export venv ready: {venv}")


def _in_venv(venv: Path) -> bool:
    return Path(sys.prefix).resolve() == venv.resolve()


# --- compatibility of the pinned set --------------------------------------------------------


def import_torchvision_cpu() -> None:
    """Import torchvision with a CPU-only torch.

    PyPI's torchvision 0.28.0 wheel is a CUDA build: its C++ ops (``_C.so``) need libtorch_cuda
    and do not load with the CPU torch, and torchvision 0.28 then fails at import because two
    of its fake-kernel registrations (``torchvision::nms``, ``torchvision::qnms``) are not
    guarded by ``_has_ops()``. MCT imports torchvision only through edge-mdt-cl's NMS layers,
    which CardDet does not use. When that import fails for this reason, the two operator
    schemas are defined (without kernels: calling them raises torch's "could not run" error)
    and the import is retried.
    """
    import torch

    try:
        import torchvision
        return
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    globals()["_TORCHVISION_SCHEMAS"] = lib      # the definitions live as long as the library object
    import torchvision  # noqa: F401


@contextlib.contextmanager
def torchscript_onnx_export() -> Iterator[None]:
    """MCT 2.5.1 calls ``torch.onnx.export`` without ``dynamo``; torch >= 2.9 defaults it to True.

    MCT's exporter (custom quantizer ops) is written for the TorchScript exporter, so the call
    gets ``dynamo=False`` unless it says otherwise.
    """
    import torch.onnx

    original = torch.onnx.export

    @functools.wraps(original)
    def export(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original


# --- data ------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_shards(paths: list[Path]) -> tuple[Any, list[list[tuple[Any, float]]]]:
    """Images (N, H, W, 3) BGR uint8 and per-image (quad, hidden share) labels of compositor shards."""
    import numpy as np

    images, labels = [], []
    for p in paths:
        z = np.load(p)
        imgs = z["images"]
        per: list[list[tuple[Any, float]]] = [[] for _ in range(len(imgs))]
        for q, s, h in zip(z["quads"], z["sample"], z["hidden"], strict=True):
            per[int(s)].append((q.astype(np.float64), float(h)))
        images.append(imgs)
        labels += per
    return np.concatenate(images), labels


def load_folder(folder: Path, limit: int, input_wh: tuple[int, int]) -> Any:
    """Up to ``limit`` images of ``folder`` letterboxed to the input (grey padding, as the CPU backend)."""
    import cv2
    import numpy as np

    from cardsorter.core.card_detector_decode import PAD_GREY, letterbox_for

    iw, ih = input_wh
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            print(f"skipped unreadable image {path}", file=sys.stderr)
            continue
        lb = letterbox_for((img.shape[1], img.shape[0]), input_wh)
        new_w, new_h = round(img.shape[1] * lb.scale), round(img.shape[0] * lb.scale)
        canvas = np.full((ih, iw, 3), PAD_GREY, np.uint8)
        ox, oy = int(lb.offset_x_px), int(lb.offset_y_px)
        canvas[oy:oy + new_h, ox:ox + new_w] = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
        out.append(canvas)
        if len(out) >= limit:
            break
    if not out:
        raise SystemExit(f"no readable images in {folder}")
    return np.stack(out)


def to_input(images_bgr: Any) -> Any:
    """(N, H, W, 3) BGR uint8 → (N, 3, H, W) float32 RGB x / 255 (the manifest's contract)."""
    import numpy as np

    return np.ascontiguousarray(images_bgr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


# --- accuracy --------------------------------------------------------------------------------


def _inside(quad: Any, input_wh: tuple[int, int], margin_px: float = 2.0) -> bool:
    """Every corner at least ``margin_px`` inside the input (cards cut by the edge are not counted)."""
    w, h = input_wh
    return bool((quad[:, 0] >= margin_px).all() and (quad[:, 0] <= w - 1 - margin_px).all()
                and (quad[:, 1] >= margin_px).all() and (quad[:, 1] <= h - 1 - margin_px).all())


def evaluate(run: Callable[[Any], tuple[Any, Any]], images: Any, labels: list[list[tuple[Any, float]]],
             input_wh: tuple[int, int]) -> tuple[dict[str, float], list[list[Any]]]:
    """Recall / precision at box IoU 0.5 and corner error (% of the card's diagonal) on composites.

    The same definition as training/train_detector.py's validation (cards hidden < 30 % and inside
    the frame; false positives: detections overlapping no card by IoU 0.3): per card the largest of its
    four corner errors, the smaller of the card read upright or turned 180°; orientation is right
    when the upright reading is the closer one. Returns the figures and every image's quads.
    """
    import numpy as np

    from cardsorter.core.card_detector_decode import DEFAULT_DECODE, decode, letterbox_for
    from cardsorter.core.types import BoxPx

    lb = letterbox_for(input_wh, input_wh)
    expected = found = false_pos = orient_ok = 0
    errors: list[float] = []
    quads: list[list[Any]] = []
    for start in range(0, len(images), CALIB_BATCH):
        heat, geo = run(to_input(images[start:start + CALIB_BATCH]))
        for k in range(heat.shape[0]):
            i = start + k
            dets = decode(heat[k], geo[k], lb, DEFAULT_DECODE)
            quads.append([np.asarray(d.quad_px) for d in dets])
            truth = [q for q, h in labels[i] if h < EVAL_HIDDEN_MAX and _inside(q, input_wh)]
            used: set[int] = set()
            for q in truth:
                expected += 1
                gbox = BoxPx.from_quad(tuple(map(tuple, q)))  # type: ignore[arg-type]
                best, best_iou = -1, EVAL_IOU_MIN
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
                orient_ok += int(e_same <= e_rot)
            unmatched = [di for di in range(len(dets)) if di not in used and not any(
                BoxPx.from_quad(tuple(map(tuple, q))).iou(dets[di].bbox_px) > 0.3  # type: ignore[arg-type]
                for q, _ in labels[i])]
            false_pos += len(unmatched)
    figures = {"cards": float(expected), "recall": found / max(1, expected),
               "precision": found / max(1, found + false_pos),
               "corner_err_mean_pct": float(np.mean(errors)) if errors else math.nan,
               "corner_err_p95_pct": float(np.percentile(errors, 95)) if errors else math.nan,
               "orientation": orient_ok / max(1, found)}
    return figures, quads


def agreement(float_quads: list[list[Any]], quant_quads: list[list[Any]]) -> dict[str, float]:
    """How far the quantised model's corners are from the float model's, same card (input pixels)."""
    import numpy as np

    dists: list[float] = []
    unmatched = 0
    for fq, qq in zip(float_quads, quant_quads, strict=True):
        for f in fq:
            if not qq:
                unmatched += 1
                continue
            centre = f.mean(axis=0)
            q = min(qq, key=lambda c: float(np.linalg.norm(c.mean(axis=0) - centre)))
            if float(np.linalg.norm(q.mean(axis=0) - centre)) > 0.25 * float(np.linalg.norm(f[2] - f[0])):
                unmatched += 1
                continue
            shift = min(range(4), key=lambda r: float(np.linalg.norm(np.roll(q, -r, axis=0) - f, axis=1).sum()))
            dists += list(np.linalg.norm(np.roll(q, -shift, axis=0) - f, axis=1))
    return {"float_cards_without_quantised_match": float(unmatched),
            "corner_shift_mean_px": float(np.mean(dists)) if dists else math.nan,
            "corner_shift_p95_px": float(np.percentile(dists, 95)) if dists else math.nan}


# --- converter output ------------------------------------------------------------------------


def read_dnn_params(path: Path) -> dict[str, Any]:
    """Input and output tensors of the converted network as the sensor serialises them (dnnParams.xml)."""
    root = ET.parse(path).getroot()

    def tensor(el: ET.Element) -> dict[str, Any]:
        dims = sorted(el.iter("dimension"), key=lambda d: int(d.get("ordinal", "0")))
        return {"name": el.get("name"), "bits": int(el.get("bitsPerElement", "0")), "format": el.get("format"),
                "scale": float(el.get("scale", "nan")), "shift": int(el.get("shift", "0")),
                "shape": [int(d.get("size", "0")) for d in dims],
                "serialization_order": [int(d.get("serializationOrder", "0")) for d in dims]}

    net = root.find("./networks/network")
    if net is None:
        raise SystemExit(f"{path}: no network element")
    mem = root.find("./l2memory")
    return {"inputs": [tensor(t) for t in net.iter("inputTensor")],
            "outputs": [tensor(t) for t in sorted(net.iter("outputTensor"), key=lambda t: int(t.get("ordinal", "0")))],
            "l2memory": dict(mem.attrib) if mem is not None else {}}


def convert(onnx_path: Path, out_dir: Path) -> dict[str, Any]:
    """``imxconv-pt`` on the quantised ONNX; its memory report and dnnParams.xml."""
    tool = Path(sys.executable).parent / "imxconv-pt"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    t0 = time.time()
    subprocess.run([str(tool), "-i", str(onnx_path), "-o", str(out_dir)], check=True)
    seconds = time.time() - t0
    reports = sorted(out_dir.glob("*_MemoryReport.json"))
    if not reports or not (out_dir / "packerOut.zip").is_file():
        raise SystemExit(f"imxconv-pt wrote no packerOut.zip / memory report in {out_dir}")
    memory = json.loads(reports[0].read_text(encoding="utf-8"))["Memory Report"]
    return {"seconds": round(seconds, 1), "memory": memory, "dnn_params": read_dnn_params(out_dir / "dnnParams.xml"),
            "packer_out": str(out_dir / "packerOut.zip"), "packer_out_bytes": (out_dir / "packerOut.zip").stat().st_size}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("model-compression-toolkit", "mct-quantizers", "edge-mdt-tpc", "imx500-converter", "uni-pytorch",
             "sdspconv", "torch")
    out = {n: version(n) for n in names}
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    out["java"] = (java.stderr or java.stdout).splitlines()[0] if (java.stderr or java.stdout) else "?"
    return out


def update_manifest(path: Path, section: dict[str, Any]) -> None:
    """Replace the ``imx500:`` section of the detector manifest, keeping every other key as it is."""
    import yaml

    if path.is_file():
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    else:
        print(f"{path} does not exist yet: writing only its imx500 section", file=sys.stderr)
        manifest = {}
    manifest["imx500"] = section
    path.write_text(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=110), encoding="utf-8")


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="training/export_imx500.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the export venv (default %(default)s)")
    p.add_argument("--setup", action="store_true", help="create the export venv and stop")
    p.add_argument("--checkpoint", type=Path, default=Path("/work/data/det-train/best.pt"),
                   help="train_detector.py's checkpoint, or a carddet.onnx (the shipped models/carddet.onnx: its "
                        "weights are loaded back into the network, training/onnx_init.py)")
    p.add_argument("--shards", type=Path, default=None,
                   help="compositor shard folder (training/make_detector_data.py): calibration + held-out check")
    p.add_argument("--images", type=Path, default=None, help="or a folder of images for calibration (no check)")
    p.add_argument("--calib", type=int, default=320, help="representative images for quantisation")
    p.add_argument("--eval", type=int, default=400, help="held-out composites for quantised vs float (0: skip)")
    p.add_argument("--out", type=Path, default=REPO / "var" / "imx500")
    p.add_argument("--manifest", type=Path, default=None, help="detector manifest to get the imx500 section")
    # defaults: the better of the two measured on run2/best.pt (models/README.md): 16-bit geometry, same memory
    p.add_argument("--tpc", choices=TPCS, default="edgemdt-4.0", help="target platform capabilities (default %(default)s)")
    p.add_argument("--geometry-bits", type=int, choices=(8, 16), default=16,
                   help="activation bits of the geometry output (16 needs --tpc edgemdt-4.0; default %(default)s)")
    p.add_argument("--no-convert", action="store_true", help="quantise and check only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--from-report", type=Path, default=None,
                   help="only write --manifest's imx500 section from this imx500_report.json (no venv needed)")
    args = p.parse_args(argv)

    if args.from_report is not None:
        if args.manifest is None:
            raise SystemExit("--from-report needs --manifest")
        saved_report = json.loads(args.from_report.read_text(encoding="utf-8"))
        update_manifest(args.manifest, manifest_section(saved_report))
        print(f"updated {args.manifest} (imx500 section) from {args.from_report}")
        return 0

    if args.setup:
        setup_venv(args.venv)
        return 0
    if not _in_venv(args.venv):
        if not _venv_python(args.venv).exists():
            raise SystemExit(f"no export venv at {args.venv}: run  python training/export_imx500.py --setup")
        os.execv(str(_venv_python(args.venv)), [str(_venv_python(args.venv)), str(Path(__file__).resolve()),
                                                  *(argv if argv is not None else sys.argv[1:])])
    if args.shards is None and args.images is None:
        raise SystemExit("give --shards (compositor shards) or --images (a folder) for the representative data")
    sys.path.insert(0, str(REPO))

    import torch

    torch.set_num_threads(args.threads)
    import_torchvision_cpu()
    import model_compression_toolkit as mct

    from training.detector_model import INPUT_H, INPUT_NAME, INPUT_W, OUTPUT_NAMES, CardDet

    input_wh = (INPUT_W, INPUT_H)
    if not args.checkpoint.is_file():
        raise SystemExit(f"checkpoint not found: {args.checkpoint}")
    if args.checkpoint.suffix == ".onnx":      # the shipped model itself (models/carddet.onnx)
        from training.onnx_init import load_onnx_weights

        ckpt: dict[str, Any] = {"facts": {"from_onnx": str(args.checkpoint)}}
        model = CardDet()
        load_onnx_weights(model, args.checkpoint, (1, 3, INPUT_H, INPUT_W))
    else:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model = CardDet(**ckpt.get("model_args", {}))
        model.load_state_dict(ckpt["model"])
    model.eval()

    # representative data: the first shards; the held-out check: the last shard (never calibrated on)
    held_images: Any = None
    held_source = ""
    held_labels: list[list[tuple[Any, float]]] = []
    if args.shards is not None:
        shard_paths = sorted(args.shards.glob("shard-*.npz"))
        if len(shard_paths) < (2 if args.eval else 1):
            raise SystemExit(f"{args.shards}: need at least {2 if args.eval else 1} shard-*.npz files")
        calib_images, _ = load_shards(shard_paths[:1])
        if args.eval:
            held_images, held_labels = load_shards(shard_paths[-1:])
            held_images, held_labels = held_images[:args.eval], held_labels[:args.eval]
        calib_source = f"compositor shard {shard_paths[0].name} of {args.shards}"
        held_source = shard_paths[-1].name
    else:
        calib_images = load_folder(args.images, args.calib, input_wh)
        calib_source = f"images of {args.images}"
    calib_images = calib_images[:args.calib]
    calib = to_input(calib_images)

    def representative() -> Iterator[list[torch.Tensor]]:
        for s in range(0, len(calib), CALIB_BATCH):
            yield [torch.from_numpy(calib[s:s + CALIB_BATCH])]

    if args.tpc == "mct-v1":
        if args.geometry_bits != 8:
            raise SystemExit("MCT's own IMX500 TPC v1 has 8-bit activations only: use --tpc edgemdt-4.0")
        tpc = mct.get_target_platform_capabilities("pytorch", "imx500", target_platform_version="v1")
    else:
        from edgemdt_tpc import get_target_platform_capabilities

        tpc = get_target_platform_capabilities(tpc_version="4.0", device_type="imx500")
    core_config = mct.core.CoreConfig()
    if args.geometry_bits != 8:
        core_config.bit_width_config.set_manual_activation_bit_width(
            mct.core.network_editor.NodeNameFilter(GEOMETRY_NODE), args.geometry_bits)
    t0 = time.time()
    q_model, _ = mct.ptq.pytorch_post_training_quantization(model, representative, core_config=core_config,
                                                            target_platform_capabilities=tpc)
    q_model.eval()
    quant_seconds = time.time() - t0
    print(f"quantised in {quant_seconds:.0f} s on {len(calib)} representative images ({calib_source})", flush=True)

    report: dict[str, Any] = {
        "network": NETWORK_NAME, "checkpoint": str(args.checkpoint), "checkpoint_sha256": _sha256(args.checkpoint),
        "checkpoint_facts": ckpt.get("facts", {}), "versions": _versions(),
        "tpc": args.tpc, "geometry_bits": args.geometry_bits,
        "calibration": {"source": calib_source, "images": len(calib)}, "quantise_seconds": round(quant_seconds, 1)}

    if held_images is not None and len(held_images):
        def run_float(x: Any) -> tuple[Any, Any]:
            with torch.no_grad():
                h, g = model(torch.from_numpy(x))
            return h.numpy(), g.numpy()

        def run_quant(x: Any) -> tuple[Any, Any]:
            with torch.no_grad():
                h, g = q_model(torch.from_numpy(x))
            return h.numpy(), g.numpy()

        f_fig, f_quads = evaluate(run_float, held_images, held_labels, input_wh)
        q_fig, q_quads = evaluate(run_quant, held_images, held_labels, input_wh)
        report["accuracy"] = {
            "data": f"{len(held_images)} held-out composites ({held_source}; "
                    "synthetic), corner error in % of the card diagonal, input 256x192",
            "float": {k: round(v, 4) for k, v in f_fig.items()},
            "quantised": {k: round(v, 4) for k, v in q_fig.items()},
            "quantised_vs_float": {k: round(v, 4) for k, v in agreement(f_quads, q_quads).items()}}
        print(json.dumps(report["accuracy"], indent=1), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{NETWORK_NAME}.onnx"
    with torchscript_onnx_export():
        mct.exporter.pytorch_export_model(q_model, save_model_path=str(onnx_path), repr_dataset=representative,
                                          output_names=list(OUTPUT_NAMES))
    report["quantised_onnx"] = {"file": str(onnx_path), "sha256": _sha256(onnx_path), "input_name": INPUT_NAME}
    if not args.no_convert:
        conv = convert(onnx_path, args.out / "converted")
        report["converter"] = conv
        mem = conv["memory"]
        print(f"converted in {conv['seconds']} s: {conv['packer_out']}; memory {mem['Memory Usage']} of "
              f"{mem['Total Memory Available On Chip']} ({mem['Memory Utilization']}), fits: {mem['Fit In Chip']}")
        for t in conv["dnn_params"]["outputs"]:
            print(f"  output {t['name']}: shape {t['shape']} ({t['bits']}-bit {t['format']}, scale {t['scale']})")
    (args.out / "imx500_report.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    if args.manifest is not None and not args.no_convert:
        update_manifest(args.manifest, manifest_section(report))
        print(f"updated {args.manifest} (imx500 section)")
    print(f"report: {args.out / 'imx500_report.json'}")
    return 0


def manifest_section(report: dict[str, Any]) -> dict[str, Any]:
    """The detector manifest's ``imx500:`` section from an export report."""
    conv = report["converter"]
    mem = conv["memory"]
    dnn = conv["dnn_params"]
    v = report["versions"]
    section: dict[str, Any] = {
        "packer_out": "packerOut.zip (not shipped: regenerate with training/export_imx500.py, see docs/IMX500.md)",
        "packer_out_bytes": conv["packer_out_bytes"],
        "checkpoint_sha256": report["checkpoint_sha256"],
        "quantised_onnx_sha256": report["quantised_onnx"]["sha256"],
        "toolchain": {"model-compression-toolkit": v["model-compression-toolkit"], "mct-quantizers": v["mct-quantizers"],
                      "edge-mdt-tpc": v.get("edge-mdt-tpc", "-"), "imx500-converter": v["imx500-converter"], "uni-pytorch": v["uni-pytorch"],
                      "sdspconv": v["sdspconv"], "torch": v["torch"], "tpc": report["tpc"],
                      "geometry_activation_bits": report["geometry_bits"]},
        "calibration": report["calibration"],
        "memory": {"usage": mem["Memory Usage"], "available": mem["Total Memory Available On Chip"],
                   "utilisation": mem["Memory Utilization"], "fits": bool(mem["Fit In Chip"]),
                   "runtime": mem["Runtime Memory Physical Size"], "model": mem["Model Memory Physical Size"],
                   "input_persistent": bool(mem["Input Persistent"])},
        "input_tensor": {k: dnn["inputs"][0][k] for k in ("shape", "bits", "format", "scale")},
        "output_tensors": [{"name": n, "get_outputs_shape": t["shape"], "bits": t["bits"], "format": t["format"],
                            "scale": t["scale"]} for n, t in zip(("heatmaps", "geometry"), dnn["outputs"], strict=True)],
        "layout": "get_outputs(metadata) returns the tensors in this order, each (C, H, W) without the batch axis "
                  "(dnnParams ordinals C, H, W; libcamera exports sizes by ordinal, picamera2 reshapes order='F')",
    }
    if "accuracy" in report:
        section["accuracy"] = report["accuracy"]
    return section


if __name__ == "__main__":
    sys.exit(main())
