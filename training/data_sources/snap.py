"""Snap rough card quads to image edges: per side, search along the normal for the strongest
gradient step, fit a robust line, intersect neighbouring sides.

Used as a module: snap_quad(gray_float, quad, radius_frac) -> (quad, per_side_support)
"""
from collections.abc import Sequence

import cv2
import numpy as np


def _grad(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = cv2.GaussianBlur(gray, (0, 0), 1.2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return gx, gy


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return cv2.remap(img, x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def snap_quad(img_bgr: np.ndarray, quad: np.ndarray | Sequence[Sequence[float]], radius_frac: float = 0.025,
              prefer: str = "outer", thr_frac: float = 0.5) -> tuple[np.ndarray, list[float]]:
    """Return refined quad (4x2) and fraction of samples per side that found a clear edge."""
    quad = np.asarray(quad, np.float64)
    lab = cv2.cvtColor(img_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    diag = float(np.linalg.norm(quad[2] - quad[0]))
    r = max(4.0, radius_frac * diag)
    grads = [_grad(lab[..., k]) for k in range(3)]
    centre = quad.mean(0)
    lines: list[tuple[np.ndarray, np.ndarray]] = []
    support: list[float] = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        d = (b - a) / np.linalg.norm(b - a)
        n = np.array([-d[1], d[0]])
        if np.dot((a + b) / 2 - centre, n) < 0:
            n = -n  # outward normal
        ts = np.linspace(0.08, 0.92, 60)
        offs = np.linspace(-r, r, int(2 * r) * 2 + 1)
        P = a[None, :] + (b - a)[None, :] * ts[:, None]
        X = P[:, 0:1] + n[0] * offs[None, :]
        Y = P[:, 1:2] + n[1] * offs[None, :]
        mag = np.zeros_like(X, dtype=np.float32)
        for gx, gy in grads:
            gn = _bilinear(gx, X, Y) * n[0] + _bilinear(gy, X, Y) * n[1]
            mag += gn * gn
        mag = np.sqrt(mag)
        found: list[np.ndarray] = []
        for k in range(len(ts)):
            m = mag[k]
            thr = thr_frac * m.max()
            if m.max() < 6:
                continue
            if prefer == "second":
                # sleeve: outermost max is the sleeve edge, the next one inward is the card edge
                cand = [j for j in range(1, len(m) - 1) if m[j] >= thr and m[j] >= m[j - 1] and m[j] >= m[j + 1]]
                cand = [j for i2, j in enumerate(cand) if i2 == 0 or j < cand[i2 - 1] - 2]
                j = cand[-2] if len(cand) >= 2 else (cand[-1] if cand else int(np.argmax(m)))
            elif prefer == "outer":
                # outermost local maximum above half of the max: card edge is the outer boundary
                cand = [j for j in range(1, len(m) - 1) if m[j] >= thr and m[j] >= m[j - 1] and m[j] >= m[j + 1]]
                j = cand[-1] if cand else int(np.argmax(m))
            else:
                j = int(np.argmax(m))
            if 0 < j < len(m) - 1:  # sub-pixel parabola
                den = m[j - 1] - 2 * m[j] + m[j + 1]
                dj = 0.5 * (m[j - 1] - m[j + 1]) / den if abs(den) > 1e-6 else 0.0
            else:
                dj = 0.0
            off = offs[0] + (j + dj) * (offs[1] - offs[0])
            found.append(P[k] + n * off)
        support.append(len(found) / len(ts))
        if len(found) < 10:
            lines.append((a, d))
            continue
        pts = np.array(found, np.float32)
        # robust: two passes, drop points far from first fit
        for _ in range(2):
            vx, vy, x0, y0 = cv2.fitLine(pts, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
            nn = np.array([-vy, vx])
            res = np.abs((pts - np.array([x0, y0])) @ nn)
            keep = res < max(1.5, 2.5 * np.median(res) + 0.5)
            if keep.sum() >= 10:
                pts = pts[keep]
        lines.append((np.array([x0, y0], np.float64), np.array([vx, vy], np.float64)))
    out: list[np.ndarray] = []
    for i in range(4):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        A = np.array([d1, -d2]).T
        if abs(np.linalg.det(A)) < 1e-6:
            out.append(quad[i])
            continue
        s = np.linalg.solve(A, p2 - p1)
        out.append(p1 + s[0] * d1)
    return np.array(out), support
