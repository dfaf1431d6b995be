"""Corner zoom sheets: per card one row of 4 patches (TL,TR,BR,BL) with annotated lines. corner_zoom.py ANN.json OUTPREFIX [filter]"""
import json
import os
import pathlib
import sys

import cv2
import numpy as np

ann, pre = sys.argv[1], sys.argv[2]
flt = sys.argv[3] if len(sys.argv) > 3 else ""
root = os.path.dirname(ann)
rows = []
for im in json.loads(pathlib.Path(ann).read_text())["images"]:
    if flt not in im["file"]: continue
    img = cv2.imread(os.path.join(root, im["file"]))
    if img is None:
        raise SystemExit(f"cannot read image {os.path.join(root, im['file'])}")
    for ci, c in enumerate(im["cards"]):
        q = np.array(c["corners"]); diag = np.linalg.norm(q[2] - q[0]); R = max(12, int(0.07 * diag))
        patches = []
        for k in range(4):
            x, y = q[k]; x0, y0 = round(x) - R, round(y) - R
            P: np.ndarray = np.zeros((2 * R, 2 * R, 3), np.uint8)
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(img.shape[1], x0 + 2 * R), min(img.shape[0], y0 + 2 * R)
            if xb > xa and yb > ya: P[ya - y0:yb - y0, xa - x0:xb - x0] = img[ya:yb, xa:xb]
            S = 160 / (2 * R); P = cv2.resize(P, (160, 160), interpolation=cv2.INTER_CUBIC)
            for j in (k - 1, k + 1):
                a = (q[k] - [x0, y0]) * S; b = (q[j % 4] - [x0, y0]) * S
                cv2.line(P, tuple(np.round(a).astype(int)), tuple(np.round(a + (b - a) * 0.5).astype(int)), (0, 255, 0), 1, cv2.LINE_AA)
            cx, cy = np.round((q[k] - [x0, y0]) * S).astype(int)
            for t in (-60, -40, -20, 20, 40, 60):
                cv2.line(P, (cx + t, cy - 3), (cx + t, cy + 3), (255, 0, 255), 1)
                cv2.line(P, (cx - 3, cy + t), (cx + 3, cy + t), (255, 0, 255), 1)
            cv2.circle(P, (cx, cy), 3, (0, 0, 255), 1)
            cv2.putText(P, ["TL", "TR", "BR", "BL"][k], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
            patches.append(P)
        row = np.concatenate(patches, 1)
        lab = np.full((18, row.shape[1], 3), 30, np.uint8)
        cv2.putText(lab, f"{os.path.basename(im['file'])[:44]} #{ci} 20t={20 * 2 * R / 160:.1f}px", (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
        rows.append(np.concatenate([lab, row], 0))
per = 10
for k in range(0, len(rows), per):
    grp = rows[k:k + per]
    half = (len(grp) + 1) // 2
    colA = np.concatenate(grp[:half], 0)
    colB = np.concatenate(grp[half:], 0) if len(grp) > half else np.zeros_like(colA)
    if colB.shape[0] < colA.shape[0]: colB = np.concatenate([colB, np.zeros((colA.shape[0] - colB.shape[0], colB.shape[1], 3), np.uint8)], 0)
    cv2.imwrite(f"{pre}_{k // per:03d}.png", np.concatenate([colA, np.full((colA.shape[0], 8, 3), 255, np.uint8), colB], 1))
print(len(rows), "cards")
