"""Propose card quads in photos with classical contour finding + line-fit refinement.

propose_quads.py OUT.json IMG... -> {file: [{"corners": [[x,y]*4], "score": s}]}
Corners ordered TL,TR,BR,BL assuming the card's top is the image-upper short side (fix by eye later).
"""
import json
import pathlib
import sys
from typing import Any

import cv2
import numpy as np

CARD_ASPECT = 63.0 / 88.0


def order_quad(q: np.ndarray) -> np.ndarray:
    """Order 4 points: portrait card, top = short side nearer image top; returns TL,TR,BR,BL."""
    q = np.asarray(q, dtype=np.float64)
    c = q.mean(0)
    ang = np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0])
    q = q[np.argsort(ang)]  # clockwise in image coords (y down) starting from angle -pi
    # sides i: q[i]->q[i+1]
    lens = [np.linalg.norm(q[(i + 1) % 4] - q[i]) for i in range(4)]
    # short sides are i with smaller (lens[i]+lens[i+2])
    s = 0 if lens[0] + lens[2] < lens[1] + lens[3] else 1
    # candidate top short sides: s and s+2; choose one whose midpoint has smaller y
    m1 = (q[s] + q[(s + 1) % 4]) / 2
    m2 = (q[(s + 2) % 4] + q[(s + 3) % 4]) / 2
    top = s if m1[1] <= m2[1] else (s + 2) % 4
    # clockwise order means top side goes TL->TR
    return np.array([q[top], q[(top + 1) % 4], q[(top + 2) % 4], q[(top + 3) % 4]])


def quad_aspect(q: np.ndarray) -> float:
    w = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return float(min(w, h) / max(w, h))


def refine(q: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Fit a line to contour points near each side, intersect neighbours."""
    lines = []
    for i in range(4):
        a, b = q[i], q[(i + 1) % 4]
        d = b - a
        L = np.linalg.norm(d)
        n = np.array([-d[1], d[0]]) / L
        t = ((pts - a) @ d) / (L * L)
        dist = np.abs((pts - a) @ n)
        sel = pts[(t > 0.12) & (t < 0.88) & (dist < max(2.0, 0.03 * L))]
        if len(sel) < 8:
            return q
        vx, vy, x0, y0 = cv2.fitLine(sel.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    corners: list[np.ndarray] = []
    for i in range(4):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        A = np.array([d1, -d2]).T
        if abs(np.linalg.det(A)) < 1e-6:
            return q
        s = np.linalg.solve(A, p2 - p1)
        corners.append(p1 + s[0] * d1)
    out = np.array(corners)
    if np.max(np.linalg.norm(out - q, axis=1)) > 0.08 * np.linalg.norm(q[2] - q[0]):
        return q
    return out


def poly_iou(a: np.ndarray, b: np.ndarray, shape: tuple[int, int]) -> tuple[float, float]:
    h, w = shape
    s = 512.0 / max(h, w)
    ma = np.zeros((int(h * s) + 1, int(w * s) + 1), np.uint8)
    mb = ma.copy()
    cv2.fillPoly(ma, [np.round(a * s).astype(np.int32)], 1)
    cv2.fillPoly(mb, [np.round(b * s).astype(np.int32)], 1)
    inter = np.logical_and(ma, mb).sum()
    return float(inter / max(1, np.logical_or(ma, mb).sum())), float(inter / max(1, min(ma.sum(), mb.sum())))


def propose(img: np.ndarray) -> list[dict[str, Any]]:
    H, W = img.shape[:2]
    scale = 1200.0 / max(H, W) if max(H, W) > 1200 else 1.0
    im = cv2.resize(img, (int(W * scale), int(H * scale)), interpolation=cv2.INTER_AREA) if scale != 1 else img
    h, w = im.shape[:2]
    gray = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
    hsv = cv2.cvtColor(im, cv2.COLOR_BGR2HSV)
    chans = [gray, hsv[..., 1], hsv[..., 2]]
    cands: list[tuple[float, np.ndarray]] = []
    for ch in chans:
        b = cv2.GaussianBlur(ch, (5, 5), 0)
        maps = [cv2.Canny(b, lo, 3 * lo) for lo in (20, 40, 80)]
        maps += [cv2.adaptiveThreshold(b, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 51, 5)]
        _, otsu = cv2.threshold(b, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        maps += [otsu, 255 - otsu]
        for m in maps:
            m2 = cv2.dilate(m, np.ones((3, 3), np.uint8)) if m is not otsu else m
            cnts, _ = cv2.findContours(m2, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            for c in cnts:
                area = cv2.contourArea(c)
                if area < 0.002 * h * w or area > 0.98 * h * w:
                    continue
                hull = cv2.convexHull(c)
                peri = cv2.arcLength(hull, True)
                ap = cv2.approxPolyDP(hull, 0.02 * peri, True)
                if len(ap) != 4:
                    continue
                q = order_quad(ap.reshape(4, 2))
                asp = quad_aspect(q)
                if not (0.55 < asp < 0.85):
                    continue
                qa = cv2.contourArea(q.astype(np.float32))
                rect = area / max(qa, 1)
                if rect < 0.85:
                    continue
                q = refine(q, c.reshape(-1, 2).astype(np.float64))
                q = order_quad(q)
                cands.append((qa * rect * (1 - abs(asp - CARD_ASPECT)), q))
    cands.sort(key=lambda t: -t[0])
    keep: list[tuple[float, np.ndarray]] = []
    for sc, q in cands:
        ok = True
        for k in keep:
            iou, cont = poly_iou(q, k[1], (h, w))
            if iou > 0.5 or cont > 0.8:
                ok = False
                break
        if ok:
            keep.append((sc, q))
    return [{"corners": (q / scale).round(2).tolist(), "score": round(float(sc), 1)} for sc, q in keep]


def main() -> None:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sys.argv[2:]:
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        if img is None:
            print("unreadable", f, file=sys.stderr)
            continue
        out[f] = propose(img)
        print(f, len(out[f]), file=sys.stderr)
    pathlib.Path(sys.argv[1]).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
