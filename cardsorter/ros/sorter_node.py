"""SorterNode: final identities + track ends → one bin per card, actuator moves, inventory rows, sort log.

Time here is the data's time: "now" is the newest frame stamp received, so a replayed bag gives the
same decisions and the same gate timing however fast the machine is. At the end of a stream every
pending card is decided and actuated.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_msgs.msg import Header, String

from cardsorter.backends.actuators import actuator_from_config
from cardsorter.config import resolve_path
from cardsorter.core.bin_rules import load_rules
from cardsorter.core.errors import ActuatorError, InventoryError
from cardsorter.core.model_manifest import load_manifest
from cardsorter.core.sort_execution import SorterState
from cardsorter.core.sort_execution import SortEvent as CoreSortEvent
from cardsorter.core.sorting import SorterCore
from cardsorter.inventory.pg_store import is_url
from cardsorter.inventory.sort_log import SortLogWriter, utc_now_iso
from cardsorter.inventory.store import open_inventory
from cardsorter.msg import CardDetectionArray, CardIdentityArray, SortEvent, TrackEnd
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import ERROR, OK, WARN, StageMonitor
from cardsorter.ros.lifecycle import ManagedNode
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import SorterSettings
from cardsorter.srv import SorterCommand


class SorterNode(ManagedNode):
    """Managed: configure opens the actuator, inventory and sort log; activate subscribes and starts sorting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sorter", **kwargs)
        self._cfg = declare_settings(self, SorterSettings)
        self._core_config = self._cfg.core
        self._belt = self._cfg.flow
        self._rules = load_rules(resolve_path(self._core_config.rules_file))
        self._actuator_cfg = self._cfg.actuator.of(self._cfg.actuator_kind)
        self._manifest = load_manifest(resolve_path(self._cfg.model_manifest))
        self._lock = threading.Lock()
        self._pub = self.create_publisher(SortEvent, "sort_events", qos.DECISIONS)
        self._work: list[Any] = []   # subscriptions, service and timer of the active state
        self._drain_timer: Timer | None = None   # the end of stream's grace, then the drain
        self._drain_for_ns: int | None = None
        self._session_cfg = self._cfg.session
        self._monitor = StageMonitor(self, f"sort ({self._core_config.mode}, {self._cfg.actuator_kind})",
                                     health=self._health, hardware_id=f"actuator/{self._cfg.actuator_kind}")
        self._inputs = InputGuard(self, self._monitor, self._cfg.input, on_rebase=self._on_clock_jump)

    def open_hardware(self) -> None:
        core_cfg, manifest, session = self._core_config, self._manifest, self._session_cfg
        self._session_id = uuid.uuid4().hex[:12]
        target = self._cfg.inventory_path
        self._inventory = open_inventory(target if is_url(target) else resolve_path(target),
                                         session_id=self._session_id, model_id=manifest.model_id, database_id="",
                                         reject_bin=self._rules.reject_bin,
                                         opened_ns=self.get_clock().now().nanoseconds,
                                         condition=session.condition, station=session.station)
        self._sort_log = SortLogWriter(resolve_path(self._cfg.sort_log), self._session_id, manifest.model_id,
                                       utc_now_iso()) if self._cfg.sort_log else None
        # Cards a crashed earlier run decided but never confirmed: recorded (inventory and log) and said.
        for lost in self._inventory.recover_lost_in_flight(self.get_clock().now().nanoseconds):
            self.get_logger().error(f"track {lost.track_id} of session {lost.session_id}: {lost.reason}")
            if self._sort_log is not None:
                self._sort_log.write_inventory_row(lost)
        fill = {b: n for b, n in self._inventory.bin_fill().items() if b in self._rules.bins}
        self._core = SorterCore(core_cfg, self._rules, self._belt if core_cfg.mode == "flow" else None,
                                initial_fill=fill)
        self._actuator = actuator_from_config(self._actuator_cfg, self._rules.bins)
        self._now_ns = 0
        self._stop_reported = False
        self._frame_wall_ns = 0
        self._stream_ended_ns: int | None = None   # set by camera/end_of_stream until a newer frame comes
        self.get_logger().info(f"sorting in {core_cfg.mode} mode into {len(self._rules.bins)} bins of "
                               f"{self._rules.path} with the {self._cfg.actuator_kind} actuator; session {self._session_id}")

    def start_work(self) -> None:
        if self._work:
            return
        group = MutuallyExclusiveCallbackGroup()
        self._work = [
            self.create_subscription(CardIdentityArray, "identities",
                                     self._inputs.counted("identities", self._on_identities), qos.DECISIONS,
                                     callback_group=group),
            self.create_subscription(TrackEnd, "track_ends", self._inputs.counted("track_ends", self._on_track_end),
                                     qos.DECISIONS, callback_group=group),
            self.create_subscription(CardDetectionArray, "tracks", self._inputs.counted("tracks", self._on_tracks),
                                     qos.PIPELINE, callback_group=group),
            self.create_subscription(Header, "camera/end_of_stream", self._on_end_of_stream, qos.DECISIONS,
                                     callback_group=group),
            self.create_subscription(String, "database/status", self._on_database_status, qos.DATABASE_STATUS,
                                     callback_group=group),
            self.create_service(SorterCommand, "sorter/command", self._on_command, callback_group=group),
        ]
        if self._cfg.clock_tick_ms > 0:
            self._work.append(self.create_timer(self._cfg.clock_tick_ms / 1000.0, self._on_tick, callback_group=group))
        self._drain_timer = self.create_timer(self._core_config.identity_grace_ms / 1000.0,
                                              self._drain_after_end_of_stream, callback_group=group)
        self._drain_timer.cancel()   # started by each end of stream
        self._work.append(self._drain_timer)

    def stop_work(self) -> None:
        self._drain_timer = None   # destroyed with the other timers below
        for entity in self._work:
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            elif isinstance(entity, Service):
                self.destroy_service(entity)
            else:
                self.destroy_timer(entity)
        self._work = []

    def release_hardware(self) -> None:
        with self._lock:   # also after a configure that failed half-way: close what was opened
            for name in ("_actuator", "_inventory", "_sort_log"):
                opened = self.__dict__.pop(name, None)
                if opened is not None:
                    opened.close()

    def _health(self) -> tuple[bytes, str]:
        if not self.active:
            return WARN, f"not sorting (lifecycle state {self.state_label})"
        state = self._core.state
        if state == SorterState.STOPPED:
            refused = len(self._core.refused_tracks)
            return ERROR, f"stopped: {self._core.message}" + (f"; {refused} cards refused" if refused else "")
        if state == SorterState.PAUSED:
            return WARN, f"paused: {self._core.message}"
        return OK, f"running, {len(self._core.queued)} queued"

    # --- inputs ----------------------------------------------------------------------------

    def _advance(self, stamp_ns: int) -> None:
        if stamp_ns > self._now_ns:
            self._now_ns = stamp_ns
            self._frame_wall_ns = time.monotonic_ns()

    def _on_tick(self) -> None:
        with self._lock:
            if self._frame_wall_ns == 0:
                return
            now = self._now_ns + (time.monotonic_ns() - self._frame_wall_ns)
            self._step(now)

    def _on_clock_jump(self) -> None:
        """The stamps really jumped (the input guard adopted a new time; called under the lock): the
        cards on the belt are finished as at an end of stream, then time goes on from the new stamp."""
        self._stream_ended_ns = self._now_ns
        self._drain()
        self._stream_ended_ns = None
        self._now_ns = self._inputs.last_good_stamp_ns or self._now_ns
        self._frame_wall_ns = time.monotonic_ns()
        self.get_logger().warning(f"data clock jumped to {self._now_ns}: the cards on the belt were finished first")

    def _on_database_status(self, msg: String) -> None:
        try:
            self._inventory.database_id = str(json.loads(msg.data)["database_id"])
        except (ValueError, KeyError, TypeError) as err:
            self._inputs.drop("database/status", f"malformed: {err}")

    def _on_identities(self, msg: CardIdentityArray) -> None:
        with self._lock:
            if not self._inputs.stamp("identities", conversions.stamp_to_ns(msg.header.stamp)):
                return
            for ident in self._inputs.identities(msg, "identities", stamped=True):
                self._core.on_identity(ident)
            self._advance(conversions.stamp_to_ns(msg.header.stamp))
            self._step(self._now_ns)

    def _on_track_end(self, msg: TrackEnd) -> None:
        with self._lock:
            end = self._inputs.track_end(msg, "track_ends", stamped=True)
            if end is not None:
                self._core.on_track_end(end)
                self._step(self._now_ns)

    def _on_tracks(self, msg: CardDetectionArray) -> None:
        with self._lock:
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            if not self._inputs.stamp("tracks", stamp):
                return
            if self._stream_ended_ns is not None and stamp > self._stream_ended_ns:
                self._stream_ended_ns = None   # a new stream started
            self._advance(stamp)
            self._step(self._now_ns)

    def _on_end_of_stream(self, msg: Header) -> None:
        with self._lock:
            if not self._inputs.stamp("camera/end_of_stream", conversions.stamp_to_ns(msg.stamp)):
                return
            self._advance(conversions.stamp_to_ns(msg.stamp))
            self._stream_ended_ns = self._now_ns
            self._step(self._now_ns)
            self._inputs.reset_clock()   # the next stream may start at any time
            # Final identities of tracks that ended just before the end of stream may still be in flight
            # (another topic, another publisher): they get the grace in wall time before the drain.
            self._drain_for_ns = self._stream_ended_ns
            if self._drain_timer is not None:
                self._drain_timer.reset()

    def _drain_after_end_of_stream(self) -> None:
        with self._lock:
            if self._drain_timer is not None:
                self._drain_timer.cancel()   # one shot per end of stream
            if self._drain_for_ns is None or self._stream_ended_ns != self._drain_for_ns:
                return   # a new stream started meanwhile: its frames move the clock on
            self._drain_for_ns = None
            self._drain()
            self.get_logger().info(f"end of stream: bins {dict(self._core.fill)}, "
                                   f"{len(self._core.queued)} still queued ({self._core.state.value})")

    # --- the work --------------------------------------------------------------------------

    def _step(self, now_ns: int) -> None:
        with self._monitor.measure():
            self._core.poll(now_ns)
            # After the end of a stream the last track ends and final identities still arrive (the frame
            # selector ends its open tracks on that signal): their cards ride the belt on to their gates.
            self._core.execute_due(now_ns, self._actuator, self._commit, drain=self._stream_ended_ns is not None,
                                   journal=self._inventory.journal)
        self._report_stop()

    def _report_stop(self) -> None:
        """The console says ERROR once when the sorter stops (an actuator fault, a mis-route, the user)."""
        stopped = self._core.state == SorterState.STOPPED
        if stopped and not self._stop_reported:
            self.get_logger().error(f"sorter STOPPED: {self._core.message}. No card is accepted or decided until "
                                    "`resume` (ros2 service call sorter/command); cards passing now are not sorted")
        self._stop_reported = stopped

    def _drain(self) -> None:
        """End of stream: the belt runs on with no camera frames. Every pending card is decided (rejected
        if its identity never came, after the grace) and actuated when it reaches its gate."""
        self._step(self._now_ns)
        self._now_ns += int(self._core_config.identity_grace_ms * 1e6)
        self._step(self._now_ns)

    def _commit(self, event: CoreSortEvent) -> None:
        """Inventory row first (it survives a crash), then the sort log and the event message."""
        stamp = min(event.actuated_ns, max(self._now_ns, event.decision.last_stamp_ns))
        event = dataclasses.replace(event, actuated_ns=stamp)
        try:
            self._inventory.append(event)
        except InventoryError as err:
            self._core.stop(f"inventory write failed: {err}")
            self._monitor.error(str(err))
            raise
        if self._sort_log is not None:
            self._sort_log.write(event.decision)
        self._pub.publish(conversions.sort_event_to_msg(event.decision, event.position_in_bin, stamp,
                                                        self._cfg.frame_id, self._session_id))
        self._monitor.count(f"bin_{event.decision.bin_name}")
        if event.note:
            self.get_logger().warning(f"track {event.decision.track_id}: {event.note}")

    def _on_command(self, request: SorterCommand.Request, response: SorterCommand.Response) -> SorterCommand.Response:
        with self._lock:
            if request.command == SorterCommand.Request.PAUSE:
                self._core.pause()
            elif request.command == SorterCommand.Request.RESUME:
                try:
                    self._actuator.clear_fault()
                except ActuatorError as err:
                    response.success, response.message, response.state = False, str(err), self._core.state.value
                    return response
                self._core.resume()
                self._step(self._now_ns)
            elif request.command == SorterCommand.Request.STOP:
                self._core.stop()
                self._report_stop()
            elif request.command == SorterCommand.Request.EMPTY_BIN:
                if request.bin not in self._rules.bins:
                    response.success, response.state = False, self._core.state.value
                    response.message = f"no bin named '{request.bin}' in {self._rules.path}"
                    return response
                self._core.empty_bin(request.bin)
                self._inventory.record_bin_emptied(request.bin, self._now_ns)
            else:
                response.success, response.message = False, f"unknown command {request.command}"
                response.state = self._core.state.value
                return response
            response.success, response.message, response.state = True, self._core.message, self._core.state.value
        self.get_logger().info(f"command {request.command}: {self._core.state.value}")
        return response

    @property
    def core(self) -> SorterCore:
        return self._core

    @property
    def inputs(self) -> InputGuard:
        return self._inputs


def main() -> None:
    run_node(SorterNode)
