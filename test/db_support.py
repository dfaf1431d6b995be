"""Test helpers for the database tests: a deterministic pixel embedder and tiny generated card images."""

from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np

from cardsorter.backends.card_index import SearchConfig
from cardsorter.core.matching import MatchBandsConfig
from cardsorter.db.build import BuildConfig
from cardsorter.settings import load_settings

INPUT_WH = (24, 32)


class PixelEmbedder:
    """Test double obeying the Embedder Protocol: the mean-removed, L2-normalised 6x8 colour thumbnail."""

    def __init__(self, model_id: str = "pixels-6x8-v1") -> None:
        self._model_id = model_id
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return 6 * 8 * 3

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return INPUT_WH

    def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        out = np.zeros((len(crops_bgr), self.dimension), np.float32)
        for i, crop in enumerate(crops_bgr):
            assert crop.shape[:2] == (INPUT_WH[1], INPUT_WH[0])
            small = cv2.resize(crop, (6, 8), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1)
            small -= small.mean()
            out[i] = small / max(float(np.linalg.norm(small)), 1e-6)
        return out, np.ones(len(crops_bgr), bool)

    def close(self) -> None:
        pass


def card_image(seed: int, size_wh: tuple[int, int] = (60, 84)) -> np.ndarray:
    """A distinct random blocky 'card' picture per seed."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    return cv2.resize(blocks, size_wh, interpolation=cv2.INTER_NEAREST)


def write_cards(folder: pathlib.Path, names_seeds: list[tuple[str, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in names_seeds:
        assert cv2.imwrite(str(folder / name), card_image(seed))


def standard_images(folder: pathlib.Path, n: int = 6, set_id: str = "sv1") -> list[str]:
    names = [(f"{set_id}-{i + 1}_Card {i + 1}.png", 1000 * sum(map(ord, set_id)) + i) for i in range(n)]
    write_cards(folder, names)
    return [f"{set_id}-{i + 1}" for i in range(n)]


def write_metadata(path: pathlib.Path, cards: list[dict[str, object]]) -> None:
    path.write_text(json.dumps(cards), encoding="utf-8")


def configs() -> tuple[BuildConfig, SearchConfig, MatchBandsConfig]:
    matcher = load_settings().matcher
    return matcher.build, matcher.search, matcher.bands
