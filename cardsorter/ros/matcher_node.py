"""MatcherNode: one batched search per frame's embeddings → top-k cards, distance, margin and band."""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_msgs.msg import String

from cardsorter.config import resolve_path
from cardsorter.core.errors import CardsorterError
from cardsorter.core.matching import MatchBandsConfig, decide_match
from cardsorter.core.model_manifest import load_manifest
from cardsorter.core.types import CardMatch, CardRecord, MatchBand
from cardsorter.db.database import ReferenceDatabase
from cardsorter.msg import CardEmbeddingArray, CardMatchArray
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import ERROR, OK, WARN, StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import MatcherSettings
from cardsorter.srv import EnrolCard, ReloadDatabase

LAST_EMBEDDINGS_KEPT = 256   # tracks whose latest embedding can be enrolled
ART_PRINTINGS_MAX = 64       # printings of one art sent with a match (basic energies: one per set)


class MatcherNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("matcher", **kwargs)
        self._cfg = declare_settings(self, MatcherSettings, on_change={"bands": self._set_bands})
        self._bands = self._cfg.bands
        self.add_on_set_parameters_callback(self._check_bands_against_database)
        self._search = self._cfg.search
        self._model_id = load_manifest(resolve_path(self._cfg.model_manifest)).model_id
        self._lock = threading.Lock()
        self._db, self._db_bands = self._load(self._cfg.database)
        self._last_embedding: dict[int, np.ndarray] = {}
        self._monitor = StageMonitor(self, "search+bands", health=self._health)
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        self._pub = self.create_publisher(CardMatchArray, "matches", qos.PIPELINE)
        self._status_pub = self.create_publisher(String, "database/status", qos.DATABASE_STATUS)
        self.create_subscription(CardEmbeddingArray, "embeddings", self._on_embeddings, qos.PIPELINE)
        self.create_service(ReloadDatabase, "matcher/reload_database", self._on_reload)
        self.create_service(EnrolCard, "matcher/enrol_card", self._on_enrol)
        self._publish_status()

    def _load(self, path: str) -> tuple[ReferenceDatabase, MatchBandsConfig]:
        db = ReferenceDatabase.load(resolve_path(path), self._model_id, self._search, self._cfg.verify_checksums)
        bands, source = db.bands(self._bands)   # the database's calibration unless the YAML sets a number
        self.get_logger().info(f"database {db.database_id}: {db.card_count} cards, {db.row_count} templates, "
                               f"{'exact' if db.exact else 'HNSW'} search; bands ({source}): confirm ≤ "
                               f"{bands.confirm_distance_max:.4f} margin ≥ {bands.confirm_margin_min:.4f}, "
                               f"unknown > {bands.uncertain_distance_max:.4f}")
        return db, bands

    def _set_bands(self, bands: MatchBandsConfig) -> None:
        with self._lock:
            self._bands = bands
            self._db_bands, source = self._db.bands(bands)
        self.get_logger().info(f"decision bands changed: {self._db_bands} ({source})")

    def _check_bands_against_database(self, params: list[Any]) -> SetParametersResult:
        """A runtime band that crosses the database's calibrated one (e.g. confirm above its unknown) is refused."""
        changes = {p.name[len("bands."):]: p.value for p in params if p.name.startswith("bands.")}
        if not changes or not hasattr(self, "_db"):
            return SetParametersResult(successful=True)
        try:
            candidate = dataclasses.replace(self._bands, **changes)
        except (TypeError, ValueError) as err:
            return SetParametersResult(successful=False, reason=f"refused: {err}")
        base, _ = self._db.bands(dataclasses.replace(candidate, confirm_distance_max=-1.0,
                                                     uncertain_distance_max=-1.0))   # the database's (or fallback)
        confirm = (candidate.confirm_distance_max if candidate.confirm_distance_max >= 0
                   else base.confirm_distance_max)
        unknown = (candidate.uncertain_distance_max if candidate.uncertain_distance_max >= 0
                   else base.uncertain_distance_max)
        if confirm > unknown:
            return SetParametersResult(successful=False, reason=(
                f"refused: confirm_distance_max {confirm} is above uncertain_distance_max {unknown} "
                "(the database's unless set)"))
        return SetParametersResult(successful=True)

    def _health(self) -> tuple[bytes, str]:
        wrong = self._monitor.counters.get("wrong_model", 0)
        if wrong:
            return ERROR, f"{wrong} embedding batches from another model than the database's ({self._db.model_id})"
        delta = self._db.delta
        if delta is not None and len(delta.rows):
            return WARN, (f"{self._db.card_count} cards; {len(delta.rows)} templates in the delta are not merged "
                          "into a snapshot yet (`cardsorter db merge`)")
        return OK, f"{self._db.card_count} cards"

    def _publish_status(self) -> None:
        self._status_pub.publish(String(data=json.dumps({
            "database_id": self._db.database_id, "path": str(self._db.path), "cards": self._db.card_count,
            "templates": self._db.row_count, "model_id": self._db.model_id, "exact": self._db.exact})))

    def _on_embeddings(self, msg: CardEmbeddingArray) -> None:
        if msg.model_id != self._db.model_id:
            self._monitor.count("wrong_model")   # a configuration error (ERROR in the health), not one bad message
        embeddings = self._inputs.embeddings(msg, "embeddings", self._db.model_id, self._db.dimension)
        if embeddings is None:
            return
        track_ids, vectors = embeddings
        with self._monitor.measure(), self._lock:
            results = self._db.search(vectors, self._cfg.matching.k) if track_ids else []
            matches = [with_art_printings(decide_match(tid, cands, self._db.art_group, self._db_bands), self._db)
                       for tid, cands in zip(track_ids, results)]
        for tid, vec in zip(track_ids, vectors):
            self._last_embedding.pop(tid, None)
            self._last_embedding[tid] = vec
        while len(self._last_embedding) > LAST_EMBEDDINGS_KEPT:
            self._last_embedding.pop(next(iter(self._last_embedding)))
        for m in matches:
            self._monitor.count(f"band_{m.band.name.lower()}")
        self._pub.publish(conversions.matches_to_msg(matches, msg.header, self._db.database_id))

    def _on_reload(self, request: ReloadDatabase.Request, response: ReloadDatabase.Response) -> ReloadDatabase.Response:
        path = request.path or str(self._db.path)
        try:
            db, bands = self._load(path)
        except CardsorterError as err:
            response.success, response.message = False, str(err)
            return response
        with self._lock:
            self._db, self._db_bands = db, bands
        self._publish_status()
        response.success, response.message = True, f"loaded {path}"
        response.database_id, response.cards = db.database_id, db.card_count
        return response

    def _on_enrol(self, request: EnrolCard.Request, response: EnrolCard.Response) -> EnrolCard.Response:
        vec = self._last_embedding.get(request.track_id)
        if vec is None:
            response.success = False
            response.message = f"no embedding seen for track {request.track_id} (recent tracks only)"
            return response
        try:
            record = CardRecord(card_id=request.card_id, name=request.name or request.card_id,
                                set_id=request.set_id, set_name=request.set_name, number=request.number,
                                rarity=request.rarity, art_id=request.card_id)
            with self._lock:
                self._db.enrol(record, vec)
        except (CardsorterError, ValueError) as err:
            response.success, response.message = False, str(err)
            return response
        self._publish_status()
        self.get_logger().info(f"enrolled track {request.track_id} as {request.card_id}")
        response.success, response.message = True, f"track {request.track_id} enrolled as {request.card_id}"
        return response

    @property
    def database(self) -> ReferenceDatabase:
        return self._db


def with_art_printings(match: CardMatch, db: ReferenceDatabase) -> CardMatch:
    """The match with every printing of its best card's art when the database holds several (the printing
    reader's candidates); an UNKNOWN view names no art."""
    best = match.best
    if best is None or match.band == MatchBand.UNKNOWN:
        return match
    printings = db.printings(best.card.card_id)
    if len(printings) < 2:
        return match
    return dataclasses.replace(match, art_printings=tuple(printings[:ART_PRINTINGS_MAX]))


def main() -> None:
    run_node(MatcherNode)
