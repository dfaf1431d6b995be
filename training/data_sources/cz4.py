"""Fine-grid corner crops: cz4.py IMG OUT.png R x,y x,y x,y x,y  (TL TR BR BL); panel = [TL TR / BL BR]."""
import sys

import cv2
import numpy as np

img = cv2.imread(sys.argv[1]); out = sys.argv[2]; R = int(sys.argv[3])
if img is None:
    raise SystemExit(f"cannot read image {sys.argv[1]}")
pts = [tuple(map(float, p.split(','))) for p in sys.argv[4:8]]
H, W = img.shape[:2]
step = 5 if R <= 30 else (10 if R <= 70 else 20)
S = 270.0 / (2 * R)
tiles = []
for k, (x, y) in enumerate(pts):
    x0, y0 = round(x) - R, round(y) - R
    big = cv2.copyMakeBorder(img, R + 2, R + 2, R + 2, R + 2, cv2.BORDER_CONSTANT)
    P = big[y0 + R + 2:y0 + 3 * R + 2, x0 + R + 2:x0 + 3 * R + 2].copy()
    P = cv2.resize(P, (270, 270), interpolation=cv2.INTER_CUBIC)
    for gx in range((x0 // step + 1) * step, x0 + 2 * R, step):
        X = int((gx - x0) * S); lab = gx % (5 * step) == 0
        cv2.line(P, (X, 0), (X, 269), (0, 255, 255) if lab else (0, 110, 110), 1)
        if lab: cv2.putText(P, str(gx), (X + 1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 255, 255), 1)
    for gy in range((y0 // step + 1) * step, y0 + 2 * R, step):
        Y = int((gy - y0) * S); lab = gy % (5 * step) == 0
        cv2.line(P, (0, Y), (269, Y), (255, 0, 255) if lab else (110, 0, 110), 1)
        if lab: cv2.putText(P, str(gy), (1, Y - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 0, 255), 1)
    c = (int((x - x0) * S), int((y - y0) * S)); cv2.circle(P, c, 4, (0, 0, 255), 1)
    cv2.putText(P, ["TL", "TR", "BR", "BL"][k], (230, 262), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
    tiles.append(cv2.copyMakeBorder(P, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
cv2.imwrite(out, np.concatenate([np.concatenate([tiles[0], tiles[1]], 1), np.concatenate([tiles[3], tiles[2]], 1)], 0))
