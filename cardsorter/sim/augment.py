"""Card-level nuisances (sleeve glare, blur, shadow, holo, occlusion, ...) for training and benchmarks.

Every function takes a BGR uint8 card image and a numpy Generator and returns a new BGR uint8 image of
the same shape; the result depends only on the image and the generator's state (deterministic).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from cardsorter.sim.catalog import rainbow_overlay

Nuisance = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _check(img: np.ndarray) -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 image, got {img.shape} {img.dtype}")


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def sleeve_glare(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Glossy sleeve: a bright, soft specular blob and a streak that wash the colours out."""
    _check(img)
    h, w = img.shape[:2]
    yy, xx = _grid(h, w)
    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    sx, sy = rng.uniform(0.08, 0.25) * w, rng.uniform(0.05, 0.2) * h
    angle = rng.uniform(0, math.pi)
    ca, sa = math.cos(angle), math.sin(angle)
    u = ((xx - cx) * ca + (yy - cy) * sa) / sx
    v = (-(xx - cx) * sa + (yy - cy) * ca) / sy
    mask = np.exp(-0.5 * (u * u + v * v)) * rng.uniform(0.6, 0.95)
    streak_off = rng.uniform(-0.3, 0.3) * w
    d = np.abs((xx - cx - streak_off) * sa - (yy - cy) * ca) / (rng.uniform(0.01, 0.04) * w)
    mask = np.maximum(mask, np.exp(-0.5 * d * d) * rng.uniform(0.2, 0.6))
    out: np.ndarray = img.astype(np.float32) * (1 - mask[..., None]) + 255.0 * mask[..., None]
    return out.clip(0, 255).astype(np.uint8)


def matte_haze(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Matte sleeve: lower contrast, a milky veil and slight softening."""
    _check(img)
    veil = rng.uniform(0.12, 0.3)
    soft = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.2))
    out = soft.astype(np.float32) * (1 - veil) + rng.uniform(190, 235) * veil
    return out.clip(0, 255).astype(np.uint8)


def scuffs(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scratched sleeve: thin light arcs and lines."""
    _check(img)
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(4, 14))):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        length = rng.uniform(0.1, 0.5) * max(h, w)
        a = rng.uniform(0, 2 * math.pi)
        p2 = (int(p1[0] + length * math.cos(a)), int(p1[1] + length * math.sin(a)))
        cv2.line(layer, p1, p2, int(rng.integers(80, 200)), 1, cv2.LINE_AA)
    alpha = layer.astype(np.float32)[..., None] / 255.0
    out: np.ndarray = img.astype(np.float32) * (1 - alpha) + 235.0 * alpha
    return out.clip(0, 255).astype(np.uint8)


def motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear motion blur (belt motion) of 3-8% of the width at a random angle."""
    _check(img)
    length = max(3, int(rng.uniform(0.03, 0.08) * img.shape[1]) | 1)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length)).astype(np.float32, copy=False)
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def focus_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus: Gaussian blur, sigma 0.6-1.6% of the width."""
    _check(img)
    sigma = rng.uniform(0.006, 0.016) * img.shape[1]
    return cv2.GaussianBlur(img, (0, 0), sigma)


def hand_shadow(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow (hand, arm, gantry) darkening part of the card."""
    _check(img)
    h, w = img.shape[:2]
    mask: np.ndarray = np.zeros((h, w), np.float32)
    centre = np.array([rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h])
    pts = centre + rng.normal(0, 0.35, (6, 2)) * np.array([w, h])
    hull = cv2.convexHull(pts.astype(np.int32))
    cv2.fillPoly(mask, [hull], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.05 * w)
    dark = rng.uniform(0.35, 0.65)
    out = img.astype(np.float32) * (1 - dark * mask[..., None])
    return out.clip(0, 255).astype(np.uint8)


def holo_rainbow(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Holofoil under light: rainbow bands of random phase, scale and strength, brighter in a spot."""
    _check(img)
    h, w = img.shape[:2]
    rainbow = rainbow_overlay(h, w, float(rng.uniform(0, 1)), float(rng.uniform(0.5, 2.0)) * w / 250.0)
    yy, xx = _grid(h, w)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.4 * max(h, w)) ** 2))
    alpha = (rng.uniform(0.15, 0.35) + 0.25 * spot)[..., None]
    out: np.ndarray = img.astype(np.float32) * (1 - alpha) + rainbow.astype(np.float32) * alpha
    return out.clip(0, 255).astype(np.uint8)


def perspective(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A residual perspective error after rectification: corners moved by up to 6% of the size."""
    _check(img)
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    dst = src + rng.uniform(-0.06, 0.06, (4, 2)).astype(np.float32) * np.array([w, h], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, contrast, saturation, hue and white-balance changes of a camera and its lighting."""
    _check(img)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.7, 1.3)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    out = (out - 128.0) * rng.uniform(0.75, 1.25) + 128.0 + rng.uniform(-30, 30)
    out *= rng.uniform(0.88, 1.12, 3)[None, None, :]
    return out.clip(0, 255).astype(np.uint8)


def occlusion(img: np.ndarray, rng: np.random.Generator, fraction: float = 0.2) -> np.ndarray:
    """Random erasing: a rectangle covering `fraction` of the card's area (finger, another card)."""
    _check(img)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"occlusion fraction must be in (0, 1), got {fraction}")
    h, w = img.shape[:2]
    area = fraction * h * w
    aspect = rng.uniform(0.5, 2.0)
    rw = round(min(w, math.sqrt(area * aspect)))
    rh = round(min(h, area / max(rw, 1)))
    x = int(rng.integers(0, w - rw + 1))
    y = int(rng.integers(0, h - rh + 1))
    out = img.copy()
    if rng.random() < 0.5:  # skin-like finger colour with texture, else a flat random colour
        base = np.array([rng.uniform(90, 160), rng.uniform(120, 180), rng.uniform(170, 230)], np.float32)
        patch = base[None, None, :] + rng.normal(0, 8, (rh, rw, 1)).astype(np.float32)
    else:
        patch = np.broadcast_to(rng.uniform(0, 255, 3).astype(np.float32), (rh, rw, 3))
    out[y:y + rh, x:x + rw] = np.clip(patch, 0, 255).astype(np.uint8)
    return out


def rotate_180(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The card lies upside down."""
    _check(img)
    return np.ascontiguousarray(img[::-1, ::-1])


def downscale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera resolution: the card spans only 35-80% of these pixels; back up to the same size."""
    _check(img)
    h, w = img.shape[:2]
    s = rng.uniform(0.35, 0.8)
    small = cv2.resize(img, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def sensor_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Read noise plus signal-dependent shot noise."""
    _check(img)
    f = img.astype(np.float32)
    sigma = rng.uniform(2, 8) + rng.uniform(0.0, 0.35) * np.sqrt(f)
    return np.clip(f + rng.normal(0, 1, img.shape).astype(np.float32) * sigma, 0, 255).astype(np.uint8)


def blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion or focus blur, either one."""
    return motion_blur(img, rng) if rng.random() < 0.5 else focus_blur(img, rng)


def occlusion_20(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return occlusion(img, rng, 0.2)


NUISANCES: dict[str, Nuisance] = {
    "glare": sleeve_glare,
    "matte": matte_haze,
    "scuffs": scuffs,
    "motion_blur": motion_blur,
    "focus_blur": focus_blur,
    "blur": blur,
    "shadow": hand_shadow,
    "holo": holo_rainbow,
    "perspective": perspective,
    "colour": colour_jitter,
    "occlusion20": occlusion_20,
    "rot180": rotate_180,
    "downscale": downscale,
    "noise": sensor_noise,
}
"""Every nuisance by name (the benchmark applies them one at a time)."""


def apply(name: str, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply one named nuisance; raises KeyError naming the unknown nuisance."""
    try:
        fn = NUISANCES[name]
    except KeyError as err:
        raise KeyError(f"unknown nuisance '{name}' (known: {', '.join(NUISANCES)})") from err
    return fn(img, rng)


# Training mix: probability of each nuisance, applied in this (physical) order.
TRAINING_MIX: tuple[tuple[str, float], ...] = (
    ("perspective", 0.5), ("holo", 0.25), ("shadow", 0.3), ("glare", 0.35), ("matte", 0.2),
    ("scuffs", 0.2), ("colour", 0.8), ("occlusion20", 0.3), ("blur", 0.4), ("downscale", 0.5),
    ("noise", 0.5), ("rot180", 0.5),
)


def random_augment(img: np.ndarray, rng: np.random.Generator,
                   mix: tuple[tuple[str, float], ...] = TRAINING_MIX) -> np.ndarray:
    """The training augmentation: each nuisance of `mix` with its probability, in order."""
    out = img
    for name, p in mix:
        if rng.random() < p:
            out = NUISANCES[name](out, rng)
    return out
