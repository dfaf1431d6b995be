"""Draw annotated quads (TL dot, thick TL->TR edge, card index) and tile into 3x3 contact sheets.

draw_sheets.py ANN.json OUTPREFIX [--cell 520] [--root DIR]
ANN.json is either {file: [{"corners":...}]} (proposals) or the real_val annotations.json schema.
"""
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import cv2
import numpy as np

COLORS = [(0, 255, 0), (0, 200, 255), (255, 0, 255), (255, 255, 0), (0, 128, 255), (255, 128, 0)]


Quads = list[list[list[float]]]


def load(path: str, root: str) -> list[tuple[str, Quads, str]]:
    d = json.loads(pathlib.Path(path).read_text())
    if isinstance(d, dict) and "images" in d:
        return [(os.path.join(root, im["file"]), [c["corners"] for c in im["cards"]], im["file"]) for im in d["images"]]
    return [(f, [c["corners"] for c in v], f) for f, v in d.items()]


def draw(img: np.ndarray, quads: Sequence[Sequence[Sequence[float]]], label: str) -> np.ndarray:
    h, w = img.shape[:2]
    t = max(2, round(max(h, w) / 400))
    for i, quad in enumerate(quads):
        q = np.array(quad)
        col = COLORS[i % len(COLORS)]
        cv2.polylines(img, [np.round(q).astype(np.int32)], True, col, t, cv2.LINE_AA)
        cv2.line(img, tuple(np.round(q[0]).astype(int)), tuple(np.round(q[1]).astype(int)), (0, 0, 255), 3 * t, cv2.LINE_AA)
        cv2.circle(img, tuple(np.round(q[0]).astype(int)), 4 * t, (0, 0, 255), -1)
        c = q.mean(0)
        cv2.putText(img, str(i), tuple(np.round(c).astype(int)), cv2.FONT_HERSHEY_SIMPLEX, t * 0.9, (255, 255, 255), 3 * t)
        cv2.putText(img, str(i), tuple(np.round(c).astype(int)), cv2.FONT_HERSHEY_SIMPLEX, t * 0.9, col, t)
    return img


def main() -> None:
    path, pre = sys.argv[1], sys.argv[2]
    cell = int(sys.argv[sys.argv.index("--cell") + 1]) if "--cell" in sys.argv else 520
    root = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv else "."
    items = load(path, root)
    for k in range(0, len(items), 9):
        sheet = np.full((3 * cell, 3 * cell, 3), 40, np.uint8)
        for j, (f, quads, label) in enumerate(items[k:k + 9]):
            img = cv2.imread(f)
            if img is None:
                continue
            img = draw(img, quads, label)
            s = (cell - 24) / max(img.shape[:2])
            img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
            y, x = (j // 3) * cell, (j % 3) * cell
            sheet[y + 22:y + 22 + img.shape[0], x + 2:x + 2 + img.shape[1]] = img
            cv2.putText(sheet, f"{k + j}: {os.path.basename(label)[:40]} n={len(quads)}", (x + 4, y + 16),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
        cv2.imwrite(f"{pre}_{k // 9:03d}.png", sheet)
    print(len(items), "images")


if __name__ == "__main__":
    main()
