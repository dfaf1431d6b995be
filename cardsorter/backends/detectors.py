"""Card detectors behind one Protocol: the learned CardDet on ONNX Runtime (CPU), alone or with the classical one.

``open_detector(settings)`` builds the configured one from the camera's ``detector`` settings
(``detector.mode``: learned | hybrid | classical). The network's outputs are decoded by
``cardsorter.core.card_detector_decode`` (the same code the IMX500 post-processing uses); the
corners are then optionally moved onto the card's colour edges at full resolution
(``cardsorter.core.detection.refine_quad_edges``). ``hybrid`` keeps the classical detector's cards
(sub-pixel corners, double-feed shape check on plain belts) and adds the learned detector's cards
that it did not find (textured backgrounds, near-background borders) — see models/README.md for
the measurements that chose it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from cardsorter.config import resolve_path
from cardsorter.core.card_detector_decode import (
    CLASS_CARD,
    CLASS_DOUBLE_FEED,
    DecodeConfig,
    Letterbox,
    decode,
    letterbox_for,
    within_edge,
)
from cardsorter.core.classical_detection import ClassicalConfig, ClassicalDetector
from cardsorter.core.detection import box_quad, refine_quad_edges
from cardsorter.core.detector_manifest import DetectorManifest, load_detector_manifest
from cardsorter.core.errors import ModelError
from cardsorter.core.fields import check_ranges, doc, inline, section
from cardsorter.core.types import BoxPx, Detection, as_quad
from cardsorter.core.warp import check_bgr_image

MODES = ("learned", "hybrid", "classical")
HYBRID_SAME_CARD_IOU = 0.3
"""A learned card whose box overlaps a classical detection this much is that card (not added again)."""
HYBRID_IN_DOUBLE_FEED = 0.4
"""A learned card with this share of its box inside a classical double feed that is kept is one of its cards
(a network that sees both overlapping cards would otherwise add the lower one as a card of its own)."""
HYBRID_AGREE_FRAC = 0.08
"""The classical corner fit inside a learned card's box replaces the learned corners when no corner moves
further than this share of the card's diagonal (the fit found the same card, only more precisely)."""
MAX_FRAME_SIDE_PX = 16384
"""Frames larger than this on a side are refused (a decoding bomb, not a photo)."""


class CardFinder(Protocol):
    """Finds cards in a BGR frame (``detect``) or inside a box another detector gave (``refine``)."""

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...

    def refine(self, image_bgr: np.ndarray, box: BoxPx, score: float) -> Detection: ...


@dataclass(frozen=True)
class DetectorConfig:
    mode: str = doc("learned (CardDet only) | hybrid (classical cards + the learned ones it missed) | classical")
    hybrid_score_min: float = doc("hybrid: minimum learned score to add a card the classical detector missed")
    model_manifest: str = doc("card detector manifest (models/carddet.yaml)")
    threads: int = doc("onnxruntime intra-op threads for the detector")
    score_min: float = doc("minimum card-centre heatmap peak (0-1) for a detection")
    max_cards: int = doc("at most this many cards per frame")
    nms_iou: float = doc("boxes overlapping more than this IoU: the lower-scored one is dropped")
    snap_radius_cells: int = doc("snap regressed corners onto corner-heatmap peaks this many cells away (0: off)")
    snap_score_min: float = doc("minimum corner-heatmap peak to snap a corner onto")
    orientation_min: float = doc("up-vector length needed to report the orientation; below: UNKNOWN")
    double_feed_overlap: float = doc("cards whose quads overlap by this share of the smaller: one double feed")
    edge_margin_px: float = doc("cards with a corner this close to (negative: this far beyond) the frame edge are dropped")
    edge_refine: bool = doc("move the learned corners onto the card's colour edges at full resolution")
    edge_search_px: float = doc("half-length in pixels of the sub-pixel edge search along each side's normal")
    edge_refine_max_px: float = doc("an edge refinement moving a corner further than this is rejected")
    refine_pad_frac: float = doc("padding around an IMX500 box, as a fraction of its size, searched for corners")
    refine_min_iou: float = doc("min IoU between an IMX500 box and the found card's box to accept it")
    tiles: int = doc("also search an N x N grid of overlapping tiles of the frame (0: off): cards small in a "
                     "large photo, which the network's input resolves poorly; each tile costs one more pass", lo=0, hi=4)
    tile_overlap: float = doc("share of a tile's size that overlaps its neighbour (a card smaller than the overlap "
                              "lies whole in some tile)", lo=0.05, hi=0.5)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.threads < 1:
            raise ValueError("threads must be >= 1")
        if self.edge_search_px <= 0 or self.edge_refine_max_px <= 0:
            raise ValueError("edge_search_px and edge_refine_max_px must be > 0")
        if self.refine_pad_frac < 0:
            raise ValueError("refine_pad_frac must be >= 0")
        check_ranges(self)
        self.decode_config()   # validates the decoding fields

    def decode_config(self) -> DecodeConfig:
        return DecodeConfig(score_min=self.score_min, max_cards=self.max_cards, nms_iou=self.nms_iou,
                            snap_radius_cells=self.snap_radius_cells, snap_score_min=self.snap_score_min,
                            orientation_min=self.orientation_min, double_feed_overlap=self.double_feed_overlap,
                            edge_margin_px=self.edge_margin_px)



@dataclass(frozen=True)
class DetectorSettings:
    """The camera's ``detector.*`` parameters: the detector's own and its ``classical.*`` section."""

    config: DetectorConfig = inline("the detector: mode, learned model, decoding and edge refinement")
    classical: ClassicalConfig = section("the classical detector (hybrid and classical modes)")


def letterbox_image(image_bgr: np.ndarray, letterbox: Letterbox, input_wh: tuple[int, int], pad_grey: int
                    ) -> np.ndarray:
    """The frame scaled into the network input (aspect kept, centred, grey padding); BGR uint8."""
    iw, ih = input_wh
    h, w = image_bgr.shape[:2]
    new_w, new_h = max(1, round(w * letterbox.scale)), max(1, round(h * letterbox.scale))
    small = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
    if (new_w, new_h) == (iw, ih):
        return small
    canvas = np.full((ih, iw, 3), pad_grey, np.uint8)
    ox, oy = int(letterbox.offset_x_px), int(letterbox.offset_y_px)
    canvas[oy:oy + new_h, ox:ox + new_w] = small[:ih - oy, :iw - ox]
    return canvas


class OnnxCardDetector:
    """CardDet on ONNX Runtime's CPU provider: letterbox, one inference, decode, optional edge refinement."""

    def __init__(self, manifest: DetectorManifest, config: DetectorConfig) -> None:
        self._m = manifest
        self._cfg = config
        self._decode = config.decode_config()
        try:
            data = manifest.file.read_bytes()
        except OSError as err:
            raise ModelError(f"detector model {manifest.file} (from {manifest.path}) cannot be read: {err}") from err
        import hashlib

        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            raise ModelError(f"detector model {manifest.file}: sha256 does not match the manifest {manifest.path}")
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelError(f"onnxruntime cannot load {manifest.file}: {err}") from err
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        if manifest.input_name not in inputs:
            raise ModelError(f"{manifest.file}: no input named {manifest.input_name!r} (has {sorted(inputs)})")
        shape = list(inputs[manifest.input_name].shape)
        if shape != [1, 3, manifest.input_height, manifest.input_width]:
            raise ModelError(f"{manifest.file}: input shape {shape}, the manifest {manifest.path} says "
                             f"[1, 3, {manifest.input_height}, {manifest.input_width}]")
        missing = [n for n in manifest.output_names if n not in outputs]
        if missing:
            raise ModelError(f"{manifest.file}: no output named {missing[0]!r} (has {outputs})")
        self._mean = np.array(manifest.mean, np.float32).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / np.array(manifest.std, np.float32)).reshape(1, 3, 1, 1)
        self._uniform_std = len(set(manifest.std)) == 1
        self._scale = 1.0 / manifest.std[0]
        # blobFromImage subtracts the mean in the input's (BGR) order, before the swap
        mean = manifest.mean[::-1] if manifest.colour_order == "rgb" else manifest.mean
        self._mean_bgr = tuple(float(v) for v in mean)
        self.infer(np.zeros((manifest.input_height, manifest.input_width, 3), np.uint8))   # fail at start

    @property
    def manifest(self) -> DetectorManifest:
        return self._m

    @property
    def config(self) -> DetectorConfig:
        return self._cfg

    def infer(self, input_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs (heatmaps, geometry) for one input-sized BGR image."""
        if self._uniform_std:   # one OpenCV call: swap, subtract, scale, HWC -> NCHW (4x faster than numpy)
            x = cv2.dnn.blobFromImage(input_bgr, self._scale, swapRB=self._m.colour_order == "rgb",
                                      mean=self._mean_bgr)
        else:
            img = input_bgr[:, :, ::-1] if self._m.colour_order == "rgb" else input_bgr
            x = (img.transpose(2, 0, 1)[None].astype(np.float32) - self._mean) * self._inv_std
        heat, geo = self._session.run(list(self._m.output_names), {self._m.input_name: np.ascontiguousarray(x)})
        return heat, geo

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Every card in the frame, highest score first (overlapping cards: one double-feed detection)."""
        _check_frame(image_bgr)
        return self._detect(image_bgr, self._cfg.tiles)

    def _detect(self, image_bgr: np.ndarray, tiles: int) -> list[Detection]:
        found = self._search(image_bgr)
        if tiles > 0:
            found = _merge_tiles(found, self._tile_search(image_bgr, tiles), self._cfg.nms_iou, self._cfg.max_cards)
        if not self._cfg.edge_refine:
            return found
        return [self._edge_refined(image_bgr, d) for d in found]

    def _search(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        lb = letterbox_for((w, h), self._m.input_size_wh)
        heat, geo = self.infer(letterbox_image(image_bgr, lb, self._m.input_size_wh, self._m.pad_grey))
        return decode(heat, geo, lb, self._decode)

    def _tile_search(self, image_bgr: np.ndarray, tiles: int) -> list[Detection]:
        """The cards found in each tile, in frame coordinates. A card cut by a tile's inner side is left to
        the tile (or the full frame) that holds it whole: kept only with every corner ``TILE_SIDE_MARGIN`` of
        the tile's size inside the sides it shares with a neighbour."""
        h, w = image_bgr.shape[:2]
        out: list[Detection] = []
        for x0, y0, x1, y1 in tile_boxes(w, h, tiles, self._cfg.tile_overlap):
            mx, my = TILE_SIDE_MARGIN * (x1 - x0), TILE_SIDE_MARGIN * (y1 - y0)
            lo_x, hi_x = (x0 + mx if x0 > 0 else -np.inf), (x1 - mx if x1 < w else np.inf)
            lo_y, hi_y = (y0 + my if y0 > 0 else -np.inf), (y1 - my if y1 < h else np.inf)
            for det in self._search(image_bgr[y0:y1, x0:x1]):
                if det.quad_px is None:
                    continue
                quad = np.asarray(det.quad_px, np.float64) + np.array([x0, y0])
                if not bool(np.all((quad[:, 0] >= lo_x) & (quad[:, 0] <= hi_x)
                                   & (quad[:, 1] >= lo_y) & (quad[:, 1] <= hi_y))):
                    continue
                q = as_quad(quad)
                out.append(Detection(BoxPx.from_quad(q), q, det.score, det.class_name, det.orientation))
        return out

    def corners_inside(self, quad: np.ndarray, frame_wh: tuple[int, int]) -> bool:
        """The decoder's edge rule (``edge_margin_px``): a refinement that moves a corner beyond it is not
        taken, so the camera never reports a corner the pipeline's input checks would drop."""
        return within_edge(quad, frame_wh, self._decode.edge_margin_px)

    def refine(self, image_bgr: np.ndarray, box: BoxPx, score: float) -> Detection:
        """The card inside (a padded) ``box``, searched at the network's resolution; the box if none is found."""
        _check_frame(image_bgr)
        h, w = image_bgr.shape[:2]
        pad_x, pad_y = box.w * self._cfg.refine_pad_frac, box.h * self._cfg.refine_pad_frac
        x0, y0 = max(0, math.floor(box.x - pad_x)), max(0, math.floor(box.y - pad_y))
        x1, y1 = min(w, math.ceil(box.x + box.w + pad_x)), min(h, math.ceil(box.y + box.h + pad_y))
        best: Detection | None = None
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            best_iou = self._cfg.refine_min_iou
            for det in self._detect(image_bgr[y0:y1, x0:x1], tiles=0):
                if det.class_name != CLASS_CARD or det.quad_px is None:
                    continue
                quad = np.asarray(det.quad_px) + np.array([x0, y0])
                shifted = Detection(BoxPx.from_quad(as_quad(quad)), as_quad(quad), det.score, det.class_name,
                                    det.orientation)
                iou = shifted.bbox_px.iou(box)
                if iou >= best_iou:
                    best, best_iou = shifted, iou
        if best is None:
            return Detection(box, box_quad(box), score)
        return Detection(best.bbox_px, best.quad_px, score, best.class_name, best.orientation)

    def _edge_refined(self, image_bgr: np.ndarray, det: Detection) -> Detection:
        if det.class_name != CLASS_CARD or det.quad_px is None:
            return det
        quad = np.asarray(det.quad_px, dtype=np.float64)
        refined = refine_quad_edges(image_bgr, quad, self._cfg.edge_search_px)
        if refined is None or float(np.max(np.linalg.norm(refined - quad, axis=1))) > self._cfg.edge_refine_max_px:
            return det
        if not self.corners_inside(refined, (image_bgr.shape[1], image_bgr.shape[0])):
            return det
        q = as_quad(refined)
        return Detection(BoxPx.from_quad(q), q, det.score, det.class_name, det.orientation)


TILE_SIDE_MARGIN = 0.02   # a tile's card must keep this share of the tile's size off its inner sides


def tile_boxes(width: int, height: int, tiles: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """An N x N grid of (x0, y0, x1, y1) tiles covering the frame, neighbours overlapping by ``overlap`` of a
    tile's size."""
    def spans(size: int) -> list[tuple[int, int]]:
        tile = size / (tiles - (tiles - 1) * overlap)
        step = tile * (1 - overlap)
        return [(round(i * step), min(size, round(i * step + tile))) for i in range(tiles)]

    return [(x0, y0, x1, y1) for y0, y1 in spans(height) for x0, x1 in spans(width)] if tiles > 0 else []


def _merge_tiles(full: list[Detection], tiled: list[Detection], nms_iou: float, max_cards: int) -> list[Detection]:
    """The full frame's cards, then each tile card (best first) that no kept card overlaps (IoU above
    ``nms_iou``, or half of the smaller box inside the other: a part of a card seen whole elsewhere)."""
    kept = list(full)
    for det in sorted(tiled, key=lambda d: -d.score):
        if len(kept) >= max_cards:
            break
        if all(det.bbox_px.iou(k.bbox_px) <= nms_iou and not _inside(det.bbox_px, k.bbox_px, 0.5)
               and not _inside(k.bbox_px, det.bbox_px, 0.5) for k in kept):
            kept.append(det)
    return kept


def _inside(inner: BoxPx, outer: BoxPx, share: float = 0.7) -> bool:
    """At least ``share`` of ``inner``'s area lies in ``outer``."""
    ix = max(0.0, min(inner.x + inner.w, outer.x + outer.w) - max(inner.x, outer.x))
    iy = max(0.0, min(inner.y + inner.h, outer.y + outer.h) - max(inner.y, outer.y))
    return inner.area_px2 > 0 and ix * iy >= share * inner.area_px2


def _check_frame(image_bgr: np.ndarray) -> None:
    check_bgr_image(image_bgr, "frame")
    h, w = image_bgr.shape[:2]
    if max(h, w) > MAX_FRAME_SIDE_PX:
        from cardsorter.core.errors import ImageError

        raise ImageError(f"frame is too large: {w}x{h} (at most {MAX_FRAME_SIDE_PX} pixels a side)")


class HybridCardDetector:
    """The classical detector's cards, plus the learned detector's cards it did not find."""

    def __init__(self, learned: OnnxCardDetector, classical: ClassicalDetector, add_score_min: float,
                 classical_corners: bool = True) -> None:
        self._learned = learned
        self._classical = classical
        self._add_score_min = add_score_min
        self._classical_corners = classical_corners

    @property
    def learned(self) -> OnnxCardDetector:
        return self._learned

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """The classical cards, then each learned card that no classical detection overlaps.

        A classical double feed holding two or more separate learned cards is cards lying side by
        side (the blob merged them): those learned cards replace it. Each added learned card gets
        the classical corner fit inside its box where that fit agrees with it (``_classical_fit``).
        """
        _check_frame(image_bgr)
        learned = [d for d in self._learned.detect(image_bgr) if d.score >= self._add_score_min]
        classical = [c for c in self._classical.detect(image_bgr) if c.class_name != CLASS_DOUBLE_FEED
                     or sum(1 for d in learned if d.class_name == CLASS_CARD and _inside(d.bbox_px, c.bbox_px)) < 2]
        found = list(classical)
        feeds = [c.bbox_px for c in classical if c.class_name == CLASS_DOUBLE_FEED]
        for det in learned:
            if any(_inside(det.bbox_px, f, HYBRID_IN_DOUBLE_FEED) for f in feeds):
                continue        # one of the cards of a double feed the classical detector kept
            if all(det.bbox_px.iou(c.bbox_px) < HYBRID_SAME_CARD_IOU for c in classical):
                found.append(self._classical_fit(image_bgr, det) if self._classical_corners else det)
        return found

    def _classical_fit(self, image_bgr: np.ndarray, det: Detection) -> Detection:
        """The learned card with the classical corner fit inside its box, where that fit agrees with it."""
        if det.class_name != CLASS_CARD or det.quad_px is None:
            return det
        fit = self._classical.refine(image_bgr, det.bbox_px, det.score)
        if fit.class_name != CLASS_CARD or fit.quad_px is None or fit.quad_px == box_quad(det.bbox_px):
            return det
        learned = np.asarray(det.quad_px, np.float64)
        fitted = np.asarray(fit.quad_px, np.float64)
        order = [int(np.argmin(np.linalg.norm(fitted - p, axis=1))) for p in learned]
        if len(set(order)) != 4:
            return det
        fitted = fitted[order]                       # the learned corner order (its orientation)
        diag = float(np.linalg.norm(learned[2] - learned[0]))
        if float(np.max(np.linalg.norm(fitted - learned, axis=1))) > HYBRID_AGREE_FRAC * diag:
            return det
        if not self._learned.corners_inside(fitted, (image_bgr.shape[1], image_bgr.shape[0])):
            return det
        q = as_quad(fitted)
        return Detection(BoxPx.from_quad(q), q, det.score, det.class_name, det.orientation)

    def refine(self, image_bgr: np.ndarray, box: BoxPx, score: float) -> Detection:
        det = self._classical.refine(image_bgr, box, score)
        if det.quad_px == box_quad(box):            # the classical search found nothing inside the box
            return self._learned.refine(image_bgr, box, score)
        return det


def detector_from_config(cfg: DetectorConfig, classical: ClassicalConfig | None = None) -> CardFinder:
    """The configured detector (the camera node declares its parameters itself)."""
    if cfg.mode == "classical":
        if classical is None:
            raise ModelError("detector.mode classical needs the detector.classical.* parameters")
        return ClassicalDetector(classical)
    learned = OnnxCardDetector(load_detector_manifest(resolve_path(cfg.model_manifest)), cfg)
    if cfg.mode == "learned":
        return learned
    if classical is None:
        raise ModelError("detector.mode hybrid needs the detector.classical.* parameters")
    return HybridCardDetector(learned, ClassicalDetector(classical), cfg.hybrid_score_min)


PHOTO_TILES = 3          # measured on the real validation photos (models/README.md "Tiles"): multi-card recall up
PHOTO_MAX_CARDS = 60     # a photo of a spread-out collection holds more cards than a belt frame (max_cards 20)


def for_photos(settings: DetectorSettings, tiles: int = PHOTO_TILES) -> DetectorSettings:
    """``settings`` as `identify` uses them on photos: the tile search and at least PHOTO_MAX_CARDS cards per
    image (the belt camera keeps its own: cards fill its frames, and its budget is one pass)."""
    config = dataclasses.replace(settings.config, tiles=tiles, max_cards=max(settings.config.max_cards, PHOTO_MAX_CARDS))
    return dataclasses.replace(settings, config=config)


def open_detector(settings: DetectorSettings) -> CardFinder:
    """The card detector of the camera's ``detector`` settings (``load_settings().camera.detector``)."""
    return detector_from_config(settings.config, settings.classical)


def open_learned_detector(settings: DetectorSettings) -> OnnxCardDetector:
    """The learned detector alone, whatever the configured mode (benchmarks, tests)."""
    return OnnxCardDetector(load_detector_manifest(resolve_path(settings.config.model_manifest)), settings.config)


