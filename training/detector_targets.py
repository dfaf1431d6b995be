"""Training targets of CardDet (the inverse of cardsorter.core.card_detector_decode); numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardsorter.core.card_detector_decode import CORNER_UNIT_PX, STRIDE, cell_centre_px

CENTRE_SIGMA_FRAC = 0.08     # centre Gaussian sigma: this fraction of sqrt(card area), in cells, at least 0.8
CENTRE_SIGMA_MIN = 0.8
CORNER_SIGMA_CELLS = 0.8
REG_GAUSS_MIN = 0.3          # cells with the card's centre Gaussian above this learn its corners
HIDDEN_MAX = 0.8             # a card hidden more than this (under other cards) is not a target


@dataclass(frozen=True)
class Targets:
    heat: np.ndarray        # (2, H, W) float32: centre, corner Gaussians (max over cards)
    corners: np.ndarray     # (8, H, W) float32: corner vectors in CORNER_UNIT_PX, clockwise from the card's top-left
    reg_weight: np.ndarray  # (H, W) float32: weight of the corner and up-vector regression at each cell
    sub: np.ndarray         # (2, H, W) float32: corner sub-cell offset (cells)
    sub_weight: np.ndarray  # (H, W) float32
    up: np.ndarray          # (2, H, W) float32: unit up vector


def make_targets(quads_input_px: list[np.ndarray], grid_hw: tuple[int, int], hidden: list[float] | None = None
                 ) -> Targets:
    """Targets for cards given as (4, 2) corners clockwise from the card's top-left, in input pixels."""
    gh, gw = grid_hw
    heat = np.zeros((2, gh, gw), np.float32)
    corners = np.zeros((8, gh, gw), np.float32)
    reg_w = np.zeros((gh, gw), np.float32)
    owner = np.zeros((gh, gw), np.float32)
    sub = np.zeros((2, gh, gw), np.float32)
    sub_w = np.zeros((gh, gw), np.float32)
    up = np.zeros((2, gh, gw), np.float32)
    cx_grid, cy_grid = cell_centre_px(np.arange(gh)[:, None], np.arange(gw)[None, :])
    cx_grid = np.broadcast_to(cx_grid, (gh, gw))
    cy_grid = np.broadcast_to(cy_grid, (gh, gw))
    in_w, in_h = gw * STRIDE, gh * STRIDE
    for k, quad in enumerate(quads_input_px):
        q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
        if hidden is not None and hidden[k] > HIDDEN_MAX:
            continue
        centre = q.mean(axis=0)
        if not (0 <= centre[0] < in_w and 0 <= centre[1] < in_h):
            continue
        area = 0.5 * abs(float(np.dot(q[:, 0], np.roll(q[:, 1], -1)) - np.dot(np.roll(q[:, 0], -1), q[:, 1])))
        sigma = max(CENTRE_SIGMA_MIN, CENTRE_SIGMA_FRAC * np.sqrt(area) / STRIDE)
        d2 = ((cx_grid - centre[0]) ** 2 + (cy_grid - centre[1]) ** 2) / STRIDE ** 2
        g = np.exp(-d2 / (2 * sigma * sigma)).astype(np.float32)
        # the cell holding the centre is exactly 1 (focal loss positives)
        ci, cj = int(np.clip((centre[1] + 0.5) // STRIDE, 0, gh - 1)), int(np.clip((centre[0] + 0.5) // STRIDE, 0, gw - 1))
        g[ci, cj] = 1.0
        heat[0] = np.maximum(heat[0], g)
        take = (g > REG_GAUSS_MIN) & (g > owner)
        owner[take] = g[take]
        reg_w[take] = g[take]
        for c in range(4):
            corners[2 * c][take] = ((q[c, 0] - cx_grid) / CORNER_UNIT_PX)[take]
            corners[2 * c + 1][take] = ((q[c, 1] - cy_grid) / CORNER_UNIT_PX)[take]
        top = (q[0] + q[1]) / 2.0 - centre
        top /= max(1e-9, float(np.linalg.norm(top)))
        up[0][take], up[1][take] = top[0], top[1]
        for c in range(4):
            x, y = q[c]
            if not (-0.5 <= x < in_w - 0.5 and -0.5 <= y < in_h - 0.5):
                continue
            dc2 = ((cx_grid - x) ** 2 + (cy_grid - y) ** 2) / STRIDE ** 2
            gc = np.exp(-dc2 / (2 * CORNER_SIGMA_CELLS ** 2)).astype(np.float32)
            i, j = int((y + 0.5) // STRIDE), int((x + 0.5) // STRIDE)
            gc[i, j] = 1.0
            heat[1] = np.maximum(heat[1], gc)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ii, jj = i + di, j + dj
                    if 0 <= ii < gh and 0 <= jj < gw:
                        sub[0, ii, jj] = (x - cx_grid[ii, jj]) / STRIDE
                        sub[1, ii, jj] = (y - cy_grid[ii, jj]) / STRIDE
                        sub_w[ii, jj] = 1.0 if (di, dj) == (0, 0) else 0.5
    return Targets(heat, corners, reg_w, sub, sub_w, up)


def targets_to_outputs(t: Targets) -> tuple[np.ndarray, np.ndarray]:
    """The network outputs that would reproduce the targets exactly (for testing the decoder)."""
    geometry = np.concatenate([t.corners, t.sub, t.up], axis=0)[None].astype(np.float32)
    return t.heat[None].astype(np.float32), geometry
