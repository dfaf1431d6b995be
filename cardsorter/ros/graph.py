"""Every node of the graph in one process (MultiThreadedExecutor) with the same parameters YAML."""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import logging
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self, TypeVar

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from cardsorter.config import default_params_file
from cardsorter.core.errors import CardsorterError, ConfigError
from cardsorter.ros.lifecycle import bring_up
from cardsorter.ros.node_specs import ALL_NODE_NAMES, NODE_NAMES, spec
from cardsorter.settings import check_keys, flat_values, load_settings, typed_overrides

log = logging.getLogger("cardsorter.runner")
N = TypeVar("N", bound=Node)


def node_overrides(params_file: pathlib.Path, name: str,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Parameter]:
    """Node ``name``'s slice of the settings tree (with ``overrides``) as typed rclpy parameter overrides."""
    settings = load_settings(params_file, {name: (overrides or {}).get(name, {})})
    return [Parameter(k, value=v) for k, v in flat_values(getattr(settings, name)).items()]


def graph_ros_arguments(params_file: pathlib.Path | None, namespace: str = "",
                        ros_args: Sequence[str] = ()) -> list[str]:
    """The rcl arguments of the graph's Context: the parameters file first (the default one unless
    ``ros_args`` bring their own, as the launch file's do), the namespace, then ``ros_args`` (its later
    files win). rcl matches each file's node blocks to the nodes, exactly as for one-node processes."""
    args = ["--ros-args"]
    if params_file is not None or "--params-file" not in ros_args:
        args += ["--params-file", str(params_file or default_params_file())]
    if namespace:
        args += ["-r", f"__ns:={namespace}"]
    return args + list(ros_args)


def _spin_quietly(executor: Executor) -> None:
    """Spin until the context shuts down; Ctrl-C and an external shutdown end it without a traceback."""
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


class Graph:
    """Builds and spins the chosen nodes in one rclpy Context; a context manager.

    Parameters reach the nodes as in a launch: the parameters file through rcl (``--params-file``),
    ``overrides`` on top (rclpy ``parameter_overrides``). The managed nodes (camera, embedder,
    sorter) are then configured and activated, downstream first."""

    def __init__(self, params_file: pathlib.Path | None = None, nodes: Sequence[str] = NODE_NAMES,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None, threads: int = 4,
                 extra_nodes: Sequence[Callable[[Context], Node]] = (), namespace: str = "",
                 ros_args: Sequence[str] = ()) -> None:
        unknown = set((overrides or {}).keys()) - set(ALL_NODE_NAMES)
        if unknown:
            raise ConfigError(f"overrides for unknown nodes: {sorted(unknown)}; valid: {', '.join(ALL_NODE_NAMES)}")
        # the file and the overrides are checked as the settings tree (a misspelt key is not ignored), and
        # the overrides typed by it: `--set camera.fps=30` reaches rclpy as the double 30.0
        typed = typed_overrides(load_settings(params_file, overrides), overrides or {})
        self._thread: threading.Thread | None = None
        self.context = Context()
        rclpy.init(context=self.context, args=["cardsorter", *graph_ros_arguments(params_file, namespace, ros_args)])
        self.nodes: dict[str, Node] = {}
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        self._side_executors: list[tuple[SingleThreadedExecutor, threading.Thread]] = []
        try:
            for name in nodes:
                node_spec = spec(name)
                explicit = [Parameter(k, value=v) for k, v in typed.get(name, {}).items()]
                node = node_spec.load()(context=self.context, parameter_overrides=explicit)
                self.nodes[name] = node
                if node_spec.own_executor:
                    self._spin_on_its_own(node)
                else:
                    self.executor.add_node(node)
            for make in extra_nodes:
                extra = make(self.context)
                self.nodes[extra.get_name()] = extra
                self.executor.add_node(extra)
            bring_up(self.nodes.values())
        except BaseException:
            self.close()
            raise

    def _spin_on_its_own(self, node: Node) -> None:
        # Measured (bench.web): in the graph's executor the web node's 35 entities and ~20 wakeups a second
        # made every wait of the pipeline's callbacks longer; on its own executor it costs the graph only CPU.
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)

        thread = threading.Thread(target=_spin_quietly, args=(executor,), name=f"cardsorter-{node.get_name()}-executor", daemon=True)
        self._side_executors.append((executor, thread))
        thread.start()

    def node_of(self, kind: type[N]) -> N:
        """The one node of class ``kind`` in this graph (how callers reach the extra nodes they added)."""
        found = [n for n in self.nodes.values() if isinstance(n, kind)]
        if len(found) != 1:
            raise KeyError(f"the graph has {len(found)} nodes of type {kind.__name__}, expected one")
        return found[0]

    def spin(self) -> None:
        _spin_quietly(self.executor)

    def spin_in_background(self) -> None:
        self._thread = threading.Thread(target=self.spin, name="cardsorter-graph", daemon=True)
        self._thread.start()

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Spin (in this thread) until done() or timeout; returns done()."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.context.ok():
            if done():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def all_matched(self) -> bool:
        """Every publisher of the graph's nodes is matched with every subscription of the graph's nodes to
        its topic (DDS matching, not the discovery cache): from then on nothing one node sends another
        is lost to discovery. Nodes outside the graph are not counted."""
        subscribers: dict[str, int] = {}
        for node in self.nodes.values():
            for sub in node.subscriptions:
                subscribers[sub.topic_name] = subscribers.get(sub.topic_name, 0) + 1
        return all(pub.get_subscription_count() >= subscribers.get(pub.topic_name, 0)
                   for node in self.nodes.values() for pub in node.publishers)

    def close(self) -> None:
        for node in self.nodes.values():   # the camera first: nothing new enters while the rest closes
            close = getattr(node, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing node %s failed", node.get_name())
        self.executor.shutdown(timeout_sec=2.0)
        for executor, _ in self._side_executors:
            executor.shutdown(timeout_sec=2.0)
        for node in self.nodes.values():
            node.destroy_node()
        self.nodes.clear()
        rclpy.try_shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        for _, thread in self._side_executors:
            thread.join(timeout=5.0)
        self._side_executors.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    """`all_nodes` executable / `cardsorter run`: the whole graph in this process until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="all_nodes", description="run every cardsorter node in one process")
    add_run_arguments(parser)
    argv = list(argv if argv is not None else sys.argv[1:])
    # `--ros-args ...` (what launch_ros passes: -r __ns:=..., --params-file ...) goes to rcl unchanged.
    ros_at = argv.index("--ros-args") if "--ros-args" in argv else len(argv)
    args = parser.parse_args(argv[:ros_at])
    try:
        sys.exit(run_from_args(args, argv[ros_at:]))
    except CardsorterError as err:
        print(f"[cardsorter] cannot start: {err}", file=sys.stderr)
        sys.exit(2)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params-file", type=pathlib.Path, default=None, help="parameters YAML (default config/sorter.yaml)")
    parser.add_argument("--source", help="camera source: imx500 | video | synthetic | none")
    parser.add_argument("--backend", help="embedding backend: onnx | hailo")
    parser.add_argument("--database", help="reference database directory")
    parser.add_argument("--nodes", default=",".join(NODE_NAMES), help="comma-separated subset of nodes")
    parser.add_argument("--web", action="store_true", help="also start the operator's web view (printed URL)")
    parser.add_argument("--namespace", default="", help="ROS namespace of every node, e.g. /station2 (default: none)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override one parameter, e.g. --set camera.synthetic.mode=station (repeatable)")


def overrides_from_args(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    o: dict[str, dict[str, Any]] = {}
    if args.source:
        o.setdefault("camera", {})["source"] = args.source
    if args.backend:
        o.setdefault("embedder", {})["backend"] = args.backend
    if args.database:
        o.setdefault("matcher", {})["database"] = args.database
    for item in args.set:
        key, sep, raw = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or node not in ALL_NODE_NAMES:
            raise ConfigError(f"--set {item!r}: expected NODE.PARAM=VALUE with NODE one of {', '.join(ALL_NODE_NAMES)}")
        o.setdefault(node, {})[param] = yaml.safe_load(raw)
    check_keys(o, "--set")
    return o


def announce_web(graph: Graph) -> None:
    """Print the operator view's address (stdout: what a person running the command looks for)."""
    web = graph.nodes.get("web")
    if web is not None:
        print(f"operator view: {web.url}", flush=True)  # type: ignore[attr-defined]


def share_inventory_with_web(params_file: pathlib.Path | None, overrides: dict[str, dict[str, Any]]) -> None:
    """The web view reads and corrects the sorter's inventory: give it the sorter's file unless told otherwise."""
    sorter = overrides.get("sorter", {}).get("inventory_path")
    if sorter is None:
        sorter = load_settings(params_file).sorter.inventory_path
    overrides.setdefault("web", {}).setdefault("inventory_path", sorter)


def run_from_args(args: argparse.Namespace, ros_args: Sequence[str] = ()) -> int:
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()]
    if args.web and "web" not in nodes:
        nodes.append("web")
    overrides = {k: v for k, v in overrides_from_args(args).items() if k in nodes}
    if "web" in nodes:
        files = [pathlib.Path(a) for f, a in itertools.pairwise(ros_args) if f == "--params-file"]
        share_inventory_with_web(args.params_file or (files[0] if files else None), overrides)
    faulthandler.register(signal.SIGUSR1, all_threads=True)   # `kill -USR1 PID`: every thread's stack to stderr
    with Graph(args.params_file, nodes, overrides, namespace=args.namespace, ros_args=ros_args) as graph:
        log.info("running %d nodes: %s", len(graph.nodes), ", ".join(graph.nodes))
        announce_web(graph)
        stop = threading.Event()
        # Ctrl-C and SIGTERM stop the loop below through this event. Left to rclpy's own SIGINT handling
        # (shut the context down, spin_once raises), the graph missed a SIGINT 3 times in 3 full test runs on
        # this VM: its main thread was still spinning 15 s later (faulthandler stack, bench/memory.py).
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        try:
            while not stop.is_set() and graph.context.ok() and time.monotonic() < deadline:
                graph.executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # closing: a second Ctrl-C must not cut it short
    log.info("stopped")
    return 0
