"""Message ↔ domain conversions: the only place that knows both cardsorter.msg and core.types."""

from __future__ import annotations

import array
import math
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from cardsorter.core.errors import ImageError
from cardsorter.core.types import (
    BoxPx,
    Candidate,
    CardCrop,
    CardEmbedding,
    CardMatch,
    CardRecord,
    Detection,
    Identity,
    MatchBand,
    Orientation,
    Quad,
    SortDecision,
    SortStatus,
    TrackEnd,
    TrackState,
)
from cardsorter.msg import CardCrop as CardCropMsg
from cardsorter.msg import (
    CardCropArray,
    CardDetection,
    CardDetectionArray,
    CardEmbeddingArray,
    CardIdentity,
    CardMatchArray,
    MatchCandidate,
    SortEvent,
)
from cardsorter.msg import CardEmbedding as CardEmbeddingMsg
from cardsorter.msg import CardMatch as CardMatchMsg
from cardsorter.msg import TrackEnd as TrackEndMsg

NS_PER_S = 1_000_000_000


# --- time and headers -------------------------------------------------------------------------

def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    return Time(sec=int(stamp_ns // NS_PER_S), nanosec=int(stamp_ns % NS_PER_S))


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


# --- images -----------------------------------------------------------------------------------

def image_to_msg(image_bgr: np.ndarray, hdr: Header) -> Image:
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ImageError(f"expected an HxWx3 uint8 BGR image, got {image_bgr.shape} {image_bgr.dtype}")
    msg = Image(header=hdr, height=image_bgr.shape[0], width=image_bgr.shape[1], encoding="bgr8",
                is_bigendian=0, step=image_bgr.shape[1] * 3)
    msg.data = array.array("B", np.ascontiguousarray(image_bgr).tobytes())
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """A BGR uint8 HxWx3 array from bgr8, rgb8, mono8, bgra8 or rgba8 Images (a copy)."""
    channels = {"bgr8": 3, "rgb8": 3, "mono8": 1, "bgra8": 4, "rgba8": 4}.get(msg.encoding)
    if channels is None:
        raise ImageError(f"unsupported image encoding '{msg.encoding}'")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if h == 0 or w == 0 or step < w * channels or buf.size < h * step:
        raise ImageError(f"image {w}x{h} step {step} encoding {msg.encoding} does not fit {buf.size} bytes")
    rows = buf[: h * step].reshape(h, step)[:, : w * channels]
    img = rows.reshape(h, w, channels)
    if msg.encoding == "bgr8":
        return img.copy()
    if msg.encoding == "rgb8":
        return img[:, :, ::-1].copy()
    if msg.encoding == "mono8":
        return np.repeat(img, 3, axis=2)
    if msg.encoding == "bgra8":
        return img[:, :, :3].copy()
    return img[:, :, 2::-1].copy()


# --- detections -------------------------------------------------------------------------------

def quad_to_list(quad: Quad | None) -> list[float]:
    return [float(c) for p in quad for c in p] if quad is not None else [0.0] * 8


def quad_from_list(values: Sequence[float]) -> Quad:
    v = [float(x) for x in values]
    return ((v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]))


def detection_to_msg(det: Detection) -> CardDetection:
    return CardDetection(track_id=det.track_id, bbox_px=list(det.bbox_px.as_tuple()),
                         has_quad=det.quad_px is not None, quad_px=quad_to_list(det.quad_px),
                         score=float(det.score), class_name=det.class_name, orientation=int(det.orientation))


def detection_from_msg(msg: CardDetection) -> Detection:
    x, y, w, h = (float(v) for v in msg.bbox_px)
    return Detection(bbox_px=BoxPx(x, y, w, h), quad_px=quad_from_list(msg.quad_px) if msg.has_quad else None,
                     score=min(1.0, max(0.0, float(msg.score))), class_name=msg.class_name,
                     orientation=Orientation(int(msg.orientation)) if msg.orientation in (0, 1, 2) else Orientation.UNKNOWN,
                     track_id=int(msg.track_id))


def detections_to_msg(dets: Sequence[Detection], hdr: Header, frame_index: int) -> CardDetectionArray:
    return CardDetectionArray(header=hdr, frame_index=frame_index, detections=[detection_to_msg(d) for d in dets])


def detections_from_msg(msg: CardDetectionArray) -> list[Detection]:
    return [detection_from_msg(d) for d in msg.detections]


# --- crops ------------------------------------------------------------------------------------

def crops_to_msg(crops: Sequence[CardCrop], hdr: Header, frame_index: int) -> CardCropArray:
    return CardCropArray(header=hdr, frame_index=frame_index, crops=[
        CardCropMsg(track_id=c.track_id, bbox_px=list(c.bbox_px.as_tuple()), quad_px=quad_to_list(c.quad_px),
                    sharpness=float(c.sharpness), image=image_to_msg(c.image_bgr, hdr)) for c in crops])


def crops_from_msg(msg: CardCropArray) -> list[CardCrop]:
    out = []
    for c in msg.crops:
        x, y, w, h = (float(v) for v in c.bbox_px)
        out.append(CardCrop(track_id=int(c.track_id), image_bgr=image_from_msg(c.image), sharpness=float(c.sharpness),
                            bbox_px=BoxPx(x, y, w, h), quad_px=quad_from_list(c.quad_px)))
    return out


# --- embeddings -------------------------------------------------------------------------------

def embeddings_to_msg(embs: Sequence[CardEmbedding], hdr: Header, model_id: str, dimension: int) -> CardEmbeddingArray:
    return CardEmbeddingArray(header=hdr, model_id=model_id, dimension=dimension, embeddings=[
        CardEmbeddingMsg(track_id=e.track_id, vector=array.array("f", np.asarray(e.vector, np.float32).tobytes()))
        for e in embs])


def embeddings_from_msg(msg: CardEmbeddingArray) -> tuple[list[int], np.ndarray]:
    """Track ids and an (N, D) float32 matrix; ValueError when a vector has the wrong dimension."""
    dim = int(msg.dimension)
    ids = [int(e.track_id) for e in msg.embeddings]
    if not ids:
        return ids, np.zeros((0, dim), np.float32)
    rows = [np.frombuffer(e.vector, dtype=np.float32) for e in msg.embeddings]
    bad = [i for i, r in zip(ids, rows) if r.shape != (dim,)]
    if bad:
        raise ValueError(f"embeddings of tracks {bad} do not have dimension {dim}")
    return ids, np.stack(rows)


# --- matches and identities -------------------------------------------------------------------

def record_to_msg(record: CardRecord | None, distance_cos: float = math.nan) -> MatchCandidate:
    if record is None:
        return MatchCandidate(distance_cos=float(distance_cos))
    return MatchCandidate(card_id=record.card_id, name=record.name, set_id=record.set_id, set_name=record.set_name,
                          number=record.number, rarity=record.rarity, art_id=record.art_id,
                          distance_cos=float(distance_cos), finish=record.finish, supertype=record.supertype,
                          types=list(record.types),
                          price_usd=float(record.price_usd) if record.price_usd is not None else math.nan,
                          set_code=record.set_code, printed_total=min(max(0, record.printed_total), 65535),
                          finishes=list(record.finishes))


def record_from_msg(msg: MatchCandidate) -> CardRecord | None:
    if not msg.card_id:
        return None
    return CardRecord(card_id=msg.card_id, name=msg.name, set_id=msg.set_id, set_name=msg.set_name,
                      number=msg.number, rarity=msg.rarity, art_id=msg.art_id, finish=msg.finish or "normal",
                      supertype=msg.supertype, types=tuple(msg.types),
                      price_usd=float(msg.price_usd) if math.isfinite(msg.price_usd) else None,
                      set_code=msg.set_code, printed_total=int(msg.printed_total), finishes=tuple(msg.finishes))


def matches_to_msg(matches: Sequence[CardMatch], hdr: Header, database_id: str) -> CardMatchArray:
    return CardMatchArray(header=hdr, database_id=database_id, matches=[
        CardMatchMsg(track_id=m.track_id, band=int(m.band), distance_cos=_finite(m.distance_cos),
                     margin_to_runner_up=_finite(m.margin_to_runner_up),
                     candidates=[record_to_msg(c.card, c.distance_cos) for c in m.candidates],
                     art_printings=[record_to_msg(r) for r in m.art_printings]) for m in matches])


def matches_from_msg(msg: CardMatchArray) -> list[CardMatch]:
    out = []
    for m in msg.matches:
        cands = []
        for c in m.candidates:
            rec = record_from_msg(c)
            if rec is not None:
                cands.append(Candidate(card=rec, distance_cos=float(c.distance_cos)))
        printings = tuple(r for r in (record_from_msg(p) for p in m.art_printings) if r is not None)
        out.append(CardMatch(track_id=int(m.track_id), band=MatchBand(int(m.band)), candidates=tuple(cands),
                             margin_to_runner_up=float(m.margin_to_runner_up), art_printings=printings))
    return out


def _finite(x: float, fallback: float = 2.0) -> float:
    return float(x) if math.isfinite(x) else fallback


def identity_to_msg(ident: Identity, frame_id: str) -> CardIdentity:
    return CardIdentity(header=header(ident.stamp_ns, frame_id), track_id=ident.track_id, state=int(ident.state),
                        final=ident.final, card=record_to_msg(ident.card, ident.distance_cos),
                        confidence=float(ident.confidence), distance_cos=_finite(ident.distance_cos),
                        margin_to_runner_up=_finite(ident.margin_to_runner_up),
                        agreeing_views=int(ident.agreeing_views), views=int(ident.views), reason=ident.reason,
                        printing_read=",".join(ident.printing_read), printing_views=min(ident.printing_views, 65535),
                        printing_agreeing_views=min(ident.printing_agreeing_views, 65535),
                        finish_seen=ident.finish_seen, finish_views=min(ident.finish_views, 65535))


def identity_from_msg(msg: CardIdentity) -> Identity:
    return Identity(track_id=int(msg.track_id), state=TrackState(int(msg.state)), card=record_from_msg(msg.card),
                    confidence=float(msg.confidence), distance_cos=float(msg.distance_cos),
                    margin_to_runner_up=float(msg.margin_to_runner_up), agreeing_views=int(msg.agreeing_views),
                    views=int(msg.views), final=bool(msg.final), reason=msg.reason,
                    stamp_ns=stamp_to_ns(msg.header.stamp),
                    printing_read=tuple(t for t in msg.printing_read.split(",") if t),
                    printing_views=int(msg.printing_views), printing_agreeing_views=int(msg.printing_agreeing_views),
                    finish_seen=msg.finish_seen, finish_views=int(msg.finish_views))


# --- track ends and sort events ---------------------------------------------------------------

def track_end_to_msg(end: TrackEnd, frame_id: str) -> TrackEndMsg:
    return TrackEndMsg(header=header(end.last_stamp_ns, frame_id), track_id=end.track_id,
                       first_stamp_ns=end.first_stamp_ns, last_stamp_ns=end.last_stamp_ns,
                       frames_seen=end.frames_seen, last_bbox_px=list(end.last_bbox_px.as_tuple()),
                       velocity_px_per_s=[float(v) for v in end.velocity_px_per_s],
                       double_feed=end.double_feed, reason=end.reason)


def track_end_from_msg(msg: TrackEndMsg) -> TrackEnd:
    x, y, w, h = (float(v) for v in msg.last_bbox_px)
    vx, vy = (float(v) for v in msg.velocity_px_per_s)
    return TrackEnd(track_id=int(msg.track_id), first_stamp_ns=int(msg.first_stamp_ns),
                    last_stamp_ns=int(msg.last_stamp_ns), frames_seen=int(msg.frames_seen),
                    last_bbox_px=BoxPx(x, y, w, h), velocity_px_per_s=(vx, vy), double_feed=bool(msg.double_feed),
                    reason=msg.reason)


def sort_event_to_msg(decision: SortDecision, position_in_bin: int, stamp_ns: int, frame_id: str,
                      session_id: str) -> SortEvent:
    return SortEvent(header=header(stamp_ns, frame_id), track_id=decision.track_id, status=decision.status.value,
                     card=record_to_msg(decision.card, decision.distance_cos),
                     distance_cos=_finite(decision.distance_cos),
                     margin_to_runner_up=_finite(decision.margin_to_runner_up), bin=decision.bin_name,
                     position_in_bin=position_in_bin, reason=decision.reason,
                     first_stamp_ns=decision.first_stamp_ns, last_stamp_ns=decision.last_stamp_ns,
                     session_id=session_id)


def sort_event_from_msg(msg: SortEvent) -> SortDecision:
    return SortDecision(track_id=int(msg.track_id), status=SortStatus(msg.status), card=record_from_msg(msg.card),
                        bin_name=msg.bin, reason=msg.reason, distance_cos=float(msg.distance_cos),
                        margin_to_runner_up=float(msg.margin_to_runner_up), first_stamp_ns=int(msg.first_stamp_ns),
                        last_stamp_ns=int(msg.last_stamp_ns))
