"""Managed (lifecycle) nodes for the hardware owners: configure opens, activate starts, deactivate/cleanup release."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from cardsorter.core.errors import CardsorterError

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
# Downstream first: a consumer is working before its producer starts, so no early message is lost.
ACTIVATION_ORDER = ("sorter", "embedder", "camera")


class ManagedNode(LifecycleNode):
    """A lifecycle node whose transitions call open_hardware / start_work / stop_work / release_hardware.

    Parameters are declared and validated in ``__init__`` (a bad value fails at start, before any
    hardware is touched). A transition that raises is logged with its reason, kept in ``last_error``
    and reported as FAILURE (rclpy itself would swallow the exception)."""

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.last_error = ""
        self.configured = False
        self.active = False

    # --- what subclasses implement -----------------------------------------------------------
    def open_hardware(self) -> None:
        """configure: open the camera / load the model / open the actuator and inventory."""

    def start_work(self) -> None:
        """activate: start publishing / processing."""

    def stop_work(self) -> None:
        """deactivate: stop publishing / processing (hardware stays open)."""

    def release_hardware(self) -> None:
        """cleanup: close what open_hardware opened."""

    # --- rclpy transition callbacks ------------------------------------------------------------
    def _call(self, what: str, fn: Any) -> TransitionCallbackReturn:
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - every failure becomes a FAILURE with its reason logged
            self.last_error = f"{what} failed: {err}"
            self.get_logger().error(self.last_error)
            return FAILURE
        return SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._call("configure", self.open_hardware)
        if result == SUCCESS:
            self.configured = True
        else:
            self._call("cleanup after a failed configure", self.release_hardware)
        return result

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._call("activate", self.start_work)
        if result == SUCCESS:
            self.active = True
            return super().on_activate(state)
        self._call("deactivate after a failed activate", self.stop_work)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        result = self._call("deactivate", self.stop_work)
        super().on_deactivate(state)
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.configured = False
        return self._call("cleanup", self.release_hardware)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._release_all()

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all()
        return SUCCESS   # back to unconfigured

    def _release_all(self) -> TransitionCallbackReturn:
        results = []
        if self.active:
            self.active = False
            results.append(self._call("deactivate", self.stop_work))
        if self.configured:
            self.configured = False
            results.append(self._call("cleanup", self.release_hardware))
        return FAILURE if FAILURE in results else SUCCESS

    @property
    def state_label(self) -> str:
        label: str = self._state_machine.current_state[1]
        return label

    def close(self) -> None:
        """Runner / node main at exit: stop work and release the hardware, whatever the state."""
        self._release_all()


def configure(node: ManagedNode) -> None:
    if node.state_label == "unconfigured" and node.trigger_configure() != SUCCESS:
        raise CardsorterError(f"node '{node.get_name()}' could not be configured: {node.last_error or 'no reason given'}")


def activate(node: ManagedNode) -> None:
    """Drive one managed node to active (configure first when needed); CardsorterError names the reason."""
    configure(node)
    if node.state_label == "inactive" and node.trigger_activate() != SUCCESS:
        raise CardsorterError(f"node '{node.get_name()}' could not be activated: {node.last_error or 'no reason given'}")


def bring_up(nodes: Iterable[Any]) -> None:
    """Configure every managed node, then activate them downstream first (ACTIVATION_ORDER)."""
    managed = [n for n in nodes if isinstance(n, ManagedNode)]
    for node in managed:
        configure(node)
    rank = {name: i for i, name in enumerate(ACTIVATION_ORDER)}
    for node in sorted(managed, key=lambda n: rank.get(n.get_name(), len(rank))):
        activate(node)
