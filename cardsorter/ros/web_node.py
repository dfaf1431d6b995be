"""WebNode: the operator's browser view (live sorting, review queue, inventory) served on localhost."""

from __future__ import annotations

import io
import json
import pathlib
import threading
import time
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.client import Client
from rclpy.node import Node
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import String

from cardsorter.config import resolve_path
from cardsorter.core.errors import CardsorterError, ImageError, InventoryError
from cardsorter.core.types import CardRecord, TrackState
from cardsorter.db.store import DELTA_DIR, TemplateRow, read_block
from cardsorter.inventory.exports import FORMATS, aggregate, export_full, export_lines
from cardsorter.inventory.pg_store import is_url
from cardsorter.inventory.store import append_correction, card_states, find_row, read_rows
from cardsorter.msg import CardCropArray, CardIdentityArray, CardMatchArray, SortEvent
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import WebSettings
from cardsorter.srv import EnrolCard, SorterCommand
from cardsorter.web.review_store import ReviewStore
from cardsorter.web.security import is_loopback, load_or_create_token
from cardsorter.web.server import WebConfig, WebServer
from cardsorter.web.state import Candidate, LiveState, ReviewItem, TrackView

SERVICE_TIMEOUT_S = 5.0
FRAME_SUBSCRIPTION_CHECK_S = 0.25   # how soon the camera view starts after a browser first asks for it
FRAME_INTERVAL_SLACK = 0.8          # frames closer than 0.8 / web.frame_fps are skipped (delivery jitter is not)
JPEG_QUALITY = 80          # the annotated view at ~60 KB per 640x480 frame: a few fps over loopback is nothing
SORTER_DIAGNOSTICS = "cardsorter/sorter"
EXPORTS = ("csv", *FORMATS)
"""The inventory page's downloads: our full CSV and every marketplace file of `inventory export`."""
_COMMANDS = {"pause": SorterCommand.Request.PAUSE, "resume": SorterCommand.Request.RESUME,
             "stop": SorterCommand.Request.STOP}


class _Catalogue:
    """The reference database's records and template sources, read without its vectors or index."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        block = read_block(path, verify_checksums=False)
        self.records: dict[str, CardRecord] = dict(block.records)
        rows: list[TemplateRow] = list(block.rows)
        if (path / DELTA_DIR).is_dir():
            delta = read_block(path / DELTA_DIR, verify_checksums=False)
            self.records.update(delta.records)
            rows += delta.rows
        self.images: dict[str, str] = {}
        for row in sorted(rows, key=lambda r: not r.high):   # prefer the high-resolution scan
            self.images.setdefault(row.card_id, row.source)

    def search(self, query: str, limit: int) -> list[CardRecord]:
        words = query.lower().split()
        hits = [r for r in self.records.values()
                if all(w in f"{r.card_id} {r.name} {r.set_id} {r.set_name} {r.number}".lower() for w in words)]
        return sorted(hits, key=lambda r: (r.name, r.set_id, r.number))[:limit]


class WebNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("web", **kwargs)
        self._cfg = declare_settings(self, WebSettings)
        token = None
        if not is_loopback(self._cfg.host):
            token, created = load_or_create_token(resolve_path(self._cfg.token_file))
            if created:
                self.get_logger().warning(f"web access token (shown once, stored in {self._cfg.token_file}): {token}")
        target = self._cfg.inventory_path
        self._inventory_path: str | pathlib.Path = target if is_url(target) else resolve_path(target)
        images = self._cfg.reference_images
        self._images_dir = resolve_path(images).resolve() if images else None
        self._catalogue: _Catalogue | None = None
        self._catalogue_lock = threading.Lock()
        self._last_frame_s = float("-inf")
        self._state = LiveState(encode_crop=_jpeg)
        self._review_store = ReviewStore(resolve_path(self._cfg.review_dir))
        open_items, unreadable = self._review_store.load_open()
        for problem in unreadable:
            self.get_logger().error(problem)
        restored = self._state.restore(open_items)
        if restored:
            self.get_logger().info(f"{len(restored)} open review items from earlier runs (in {self._cfg.review_dir})")
        self._monitor = StageMonitor(self, "web view")
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        group = ReentrantCallbackGroup()
        self._command: Client = self.create_client(SorterCommand, "sorter/command", callback_group=group)
        self._enrol: Client = self.create_client(EnrolCard, "matcher/enrol_card", callback_group=group)
        # The overlay's JPEG (debug/image/compressed), taken only while a browser shows the camera view:
        # the overlay draws and encodes nothing nobody watches, and the JPEG goes to the browsers as it came
        self._image_sub: Subscription | None = None
        self.create_timer(FRAME_SUBSCRIPTION_CHECK_S, self._subscribe_while_watched)
        self.create_subscription(CardIdentityArray, "identities", self._on_identities, qos.DECISIONS)
        self.create_subscription(CardCropArray, "crops", self._on_crops, qos.PIPELINE)
        self.create_subscription(CardMatchArray, "matches", self._on_matches, qos.PIPELINE)
        self.create_subscription(SortEvent, "sort_events", self._on_sort_event, qos.DECISIONS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos.DIAGNOSTICS)
        self.create_subscription(String, "database/status", self._on_database_status, qos.DATABASE_STATUS)
        config = WebConfig(host=self._cfg.host, port=self._cfg.port, frame_fps=self._cfg.frame_fps,
                           max_body_bytes=self._cfg.max_body_bytes, token=token)
        self._server = WebServer(self._state, self, config)
        self.url = self._server.start()
        self.get_logger().info(f"operator view on {self.url}")

    @property
    def state(self) -> LiveState:
        return self._state

    # --- subscriptions ---------------------------------------------------------------------

    def _subscribe_while_watched(self) -> None:
        watched = self._state.frame_watched()
        if watched and self._image_sub is None:
            self._image_sub = self.create_subscription(CompressedImage, "debug/image/compressed", self._on_image,
                                                       qos.DEBUG)
        elif not watched and self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
            self._image_sub = None

    @property
    def watching_frames(self) -> bool:
        """Whether the node subscribes to debug/image/compressed now (a browser asked for a frame lately)."""
        return self._image_sub is not None

    def _on_image(self, msg: CompressedImage) -> None:
        now_s = time.monotonic()
        if now_s - self._last_frame_s < FRAME_INTERVAL_SLACK / self._cfg.frame_fps:
            return   # the overlay already sends at most overlay.compressed_fps: this guards a faster publisher
        if "jpeg" not in msg.format.lower() or bytes(msg.data[:2]) != b"\xff\xd8":
            self._inputs.drop("debug/image/compressed", f"not a JPEG (format {msg.format!r}, {len(msg.data)} bytes)")
            return
        self._last_frame_s = now_s
        self._state.set_frame(bytes(msg.data), conversions.stamp_to_ns(msg.header.stamp))

    def _on_identities(self, msg: CardIdentityArray) -> None:
        for ident in self._inputs.identities(msg, "identities"):
            card = ident.card
            self._state.set_track(TrackView(
                track_id=ident.track_id, state=TrackState(ident.state).name.lower(),
                card_id=card.card_id if card else "", name=card.name if card else "",
                confidence=float(ident.confidence), agreeing_views=ident.agreeing_views, views=ident.views,
                reason=ident.reason, stamp_ns=conversions.stamp_to_ns(msg.header.stamp)))

    def _on_crops(self, msg: CardCropArray) -> None:
        for crop in msg.crops:
            try:
                # kept as pixels (64x88): JPEG-encoded only if the card goes to the review queue
                self._state.set_crop(int(crop.track_id), conversions.image_from_msg(crop.image))
            except CardsorterError as err:
                self._monitor.error(f"crops: {err}")

    def _on_matches(self, msg: CardMatchArray) -> None:
        for m in self._inputs.matches(msg, "matches"):
            self._state.set_candidates(m.track_id, [
                Candidate(c.card.card_id, c.card.name, c.card.set_id, c.card.number, float(c.distance_cos))
                for c in m.candidates])

    def _on_sort_event(self, msg: SortEvent) -> None:
        item = self._state.add_sort_event(track_id=int(msg.track_id), session_id=msg.session_id, status=msg.status,
                                          reason=msg.reason, bin_name=msg.bin,
                                          position_in_bin=int(msg.position_in_bin),
                                          stamp_ns=conversions.stamp_to_ns(msg.header.stamp))
        if item is not None:
            try:
                self._review_store.save(item)
            except InventoryError as err:
                self._monitor.error(f"review item not kept on disk: {err}")

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self._state.set_health(status.name, int.from_bytes(status.level, "little")
                                   if isinstance(status.level, bytes) else int(status.level), status.message)
            if status.name == SORTER_DIAGNOSTICS:
                self._state.set_sorter_state(status.message.split(",")[0].split(":")[0])

    def _on_database_status(self, msg: String) -> None:
        try:
            path = pathlib.Path(json.loads(msg.data)["path"])
            catalogue = _Catalogue(path)
        except (CardsorterError, KeyError, ValueError, TypeError) as err:
            self._monitor.error(f"database/status: {err}")
            self.get_logger().error(f"cannot read the reference catalogue for the review queue: {err}")
            return
        with self._catalogue_lock:
            self._catalogue = catalogue

    # --- what the pages act on (WebBackend) -------------------------------------------------

    def _catalogue_or_raise(self) -> _Catalogue:
        with self._catalogue_lock:
            if self._catalogue is None:
                raise CardsorterError("the matcher has not announced its database yet")
            return self._catalogue

    def _call(self, client: Client, request: Any) -> Any:
        if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
            raise CardsorterError(f"service {client.srv_name} is not available")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(SERVICE_TIMEOUT_S):
            client.remove_pending_request(future)
            raise CardsorterError(f"service {client.srv_name} did not answer within {SERVICE_TIMEOUT_S:.0f} s")
        return future.result()

    def command(self, name: str) -> tuple[bool, str]:
        try:
            response = self._call(self._command, SorterCommand.Request(command=_COMMANDS[name]))
        except CardsorterError as err:
            return False, str(err)
        if response.state:
            self._state.set_sorter_state(response.state)
        return bool(response.success), str(response.message)

    def resolve(self, item: ReviewItem, record: CardRecord | None) -> str:
        """Correct the card's inventory row and, for a named card, enrol its crop as a template."""
        done: list[str] = []
        try:
            row = find_row(self._inventory_path, item.session_id, item.track_id)
            append_correction(self._inventory_path, row.id, record, note="operator review", stamp_ns=time.time_ns())
            done.append(f"inventory row {row.id} corrected")
        except InventoryError as err:
            done.append(f"inventory not corrected: {err}")
        if record is not None and item.restored:
            # after a restart the matcher's "latest embedding of track N" is another card's (track ids start
            # again): enrolling it would teach the matcher a wrong template
            done.append("not enrolled: the matcher's view of this track ended with the run that sorted it (the "
                        f"crop is {self._review_store.crop_path(item)}: "
                        "`cardsorter db add DB --images DIR` enrols it)")
        elif record is not None:
            try:
                response = self._call(self._enrol, EnrolCard.Request(
                    track_id=item.track_id, card_id=record.card_id, name=record.name, set_id=record.set_id,
                    set_name=record.set_name, number=record.number, rarity=record.rarity))
                done.append(str(response.message) if response.success else f"not enrolled: {response.message}")
            except CardsorterError as err:
                done.append(f"not enrolled: {err}")
        message = "; ".join(done)
        try:
            self._review_store.resolved(item, f"card:{record.card_id}" if record else "unknown", message)
        except InventoryError as err:
            message += f"; the outcome is not kept on disk: {err}"
        self.get_logger().info(f"review item {item.item_id} (track {item.track_id}) → "
                               f"{record.card_id if record else 'unknown'}: {message}")
        return message

    def record(self, card_id: str) -> CardRecord | None:
        return self._catalogue_or_raise().records.get(card_id)

    def search_cards(self, query: str, limit: int) -> list[dict[str, str]]:
        return [{"card_id": r.card_id, "name": r.name, "set_id": r.set_id, "number": r.number}
                for r in self._catalogue_or_raise().search(query, limit)] if query else []

    def card_image(self, card_id: str) -> pathlib.Path | None:
        if self._images_dir is None:
            return None
        source = self._catalogue_or_raise().images.get(card_id)
        if source is None:
            return None
        path = (self._images_dir / source).resolve()
        if not path.is_relative_to(self._images_dir) or not path.is_file():
            return None   # a source name pointing outside the folder is never served
        return path

    def inventory(self, session: str, bin_name: str, set_id: str, query: str, limit: int) -> dict[str, Any]:
        try:
            rows = read_rows(self._inventory_path)
        except InventoryError:
            rows = []
        words = query.lower().split()
        match = [r for r in rows
                 if (not session or r.session_id == session) and (not bin_name or r.bin == bin_name)
                 and (not set_id or r.set_id == set_id)
                 and all(w in f"{r.card_id} {r.name} {r.number} {r.set_name}".lower() for w in words)]
        return {"total": len(match), "rejected": sum(r.rejected for r in match),
                "sessions": sorted({r.session_id for r in rows}), "bins": sorted({r.bin for r in rows}),
                "sets": sorted({r.set_id for r in rows if r.set_id}),
                "rows": [vars(r) for r in reversed(match[-limit:])]}

    def export(self, fmt: str) -> tuple[str, str]:
        """A download as `inventory export` writes it; lines a marketplace needs but we cannot fill are left out."""
        if fmt not in EXPORTS:
            raise KeyError(fmt)
        with self._catalogue_lock:
            catalogue = dict(self._catalogue.records) if self._catalogue else {}
        rows, states = read_rows(self._inventory_path), card_states(self._inventory_path)
        out = io.StringIO()
        if fmt == "csv":
            export_full(rows, states, catalogue, out)
        else:
            lines, _ = aggregate(rows, states, catalogue)
            result = export_lines(fmt, lines, out)
            if result.unfilled:
                self.get_logger().warning(f"{fmt} download: {len(result.unfilled)} lines not written (the marketplace "
                                          "needs values we do not have; `cardsorter inventory export` lists them)")
        return f"inventory-{fmt}.csv", out.getvalue()

    def close(self) -> None:
        self._server.close()


def _jpeg(image_bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ImageError(f"JPEG encoding of a {image_bgr.shape} image failed")
    return bytes(buf)


def main() -> None:
    run_node(WebNode)
