"""Annotated debug image: each card's quad, track id, state colour, name, set/number and distance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from cardsorter.core.types import Detection, Identity, TrackState

# BGR colours per smoother state, chosen to read at a glance: grey pending, green confirmed, red rejected.
STATE_COLOURS_BGR: dict[TrackState, tuple[int, int, int]] = {
    TrackState.NO_CARD: (128, 128, 128),
    TrackState.DETECTING: (200, 200, 200),
    TrackState.STABILIZING: (0, 200, 255),
    TrackState.CONFIRMED: (0, 200, 0),
    TrackState.UNKNOWN: (0, 0, 230),
    TrackState.AMBIGUOUS: (255, 0, 200),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_lines(det: Detection, ident: Identity | None) -> list[str]:
    state = ident.state if ident else TrackState.DETECTING
    first = f"#{det.track_id} {state.name.lower()}"
    if ident is None or ident.card is None:
        return [first]
    card = ident.card
    return [first, card.name[:22], f"{card.set_id} {card.number}  d={ident.distance_cos:.2f}"]


def draw_overlay(image_bgr: np.ndarray, tracked: Sequence[Detection],
                 identities: Mapping[int, Identity], scale: float = 1.0) -> np.ndarray:
    """A copy of the frame (resized by ``scale``) with every tracked card annotated."""
    out = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1.0 else image_bgr.copy()
    for det in tracked:
        ident = identities.get(det.track_id)
        colour = STATE_COLOURS_BGR[ident.state if ident else TrackState.DETECTING]
        if det.quad_px is not None:
            pts = (np.array(det.quad_px, np.float32) * scale).round().astype(np.int32)
            cv2.polylines(out, [pts.reshape(-1, 1, 2)], True, colour, 2, cv2.LINE_AA)
            cv2.circle(out, (int(pts[0][0]), int(pts[0][1])), 4, colour, -1)  # the card's top-left corner
            anchor = pts.min(axis=0)
        else:
            b = det.bbox_px
            p0 = (int(b.x * scale), int(b.y * scale))
            cv2.rectangle(out, p0, (int((b.x + b.w) * scale), int((b.y + b.h) * scale)), colour, 2)
            anchor = np.array(p0)
        y = max(12, int(anchor[1]) - 4 - 14 * (len(label_lines(det, ident)) - 1))
        for line in label_lines(det, ident):
            cv2.putText(out, line, (int(anchor[0]), y), FONT, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, line, (int(anchor[0]), y), FONT, 0.4, colour, 1, cv2.LINE_AA)
            y += 14
    return out
