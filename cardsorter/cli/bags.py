"""`cardsorter record BAG` and `cardsorter replay BAG --db DB`: rosbag2 MCAP in, sort log out."""

from __future__ import annotations

import argparse
import logging
import pathlib
import time
from typing import Any

log = logging.getLogger("cardsorter.replay")


def _record(args: argparse.Namespace) -> int:
    from cardsorter.ros.graph import Graph, overrides_from_args
    from cardsorter.ros.monitor_node import GraphMonitor
    from cardsorter.ros.rosbag_io import DEFAULT_RECORD_TOPICS, BagRecorder

    topics = [t.strip() for t in (args.topics.split(",") if args.topics else DEFAULT_RECORD_TOPICS) if t.strip()]
    bag = pathlib.Path(args.bag)
    nodes = [n for n in args.nodes.split(",") if n] if args.run else []
    overrides = {k: v for k, v in overrides_from_args(args).items() if k in nodes}
    if args.run and "camera" in nodes:
        cam = overrides.setdefault("camera", {})
        for key, value in (("synthetic.catalog_dir", args.catalog), ("synthetic.cards", args.cards), ("synthetic.seed", args.seed), ("fps", args.fps),
                           ("width", args.width), ("height", args.height)):
            if value is not None:
                cam[key] = value
    def make_recorder(ctx: Any) -> BagRecorder:
        return BagRecorder(bag, topics, context=ctx)

    with Graph(args.params_file, nodes, overrides, extra_nodes=[make_recorder, GraphMonitor]) as graph:
        recorder, monitor = graph.node_of(BagRecorder), graph.node_of(GraphMonitor)
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        log.info("recording %s to %s%s", ", ".join(topics), bag, " (Ctrl-C to stop)" if args.duration <= 0 else "")
        try:
            while time.monotonic() < deadline and graph.context.ok():
                graph.executor.spin_once(timeout_sec=0.1)
                ended = args.run and monitor.end_of_stream_wall is not None
                if ended and ("sorter" not in nodes or monitor.all_sorted()):
                    graph.spin_until(lambda: False, 0.5)   # let the last messages land
                    break
        except KeyboardInterrupt:
            pass
        recorder.close()
        print(f"recorded {bag}: " + ", ".join(f"{t} {n}" for t, n in recorder.counts.items()))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from cardsorter.ros.bag_replay import replay_bag

    out = pathlib.Path(args.out)
    result = replay_bag(pathlib.Path(args.bag), pathlib.Path(args.db), out, image_topic=args.image_topic,
                        params_file=args.params_file, detect=args.detect)
    print(f"replayed {result['frames']} frames ({result['detections']} detections): {result['tracks']} tracks, "
          f"{result['sort_events']} cards sorted → {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from cardsorter.cli.extras import guarded, ros_parser

    record_help = "record topics to a rosbag2 MCAP bag (ros2 bag play plays it)"
    replay_help = "replay a bag's frames through the graph and write the sort log CSV"
    p = ros_parser(sub, "record", record_help)
    if p is None:  # no ROS here: both commands explain what they need
        ros_parser(sub, "replay", replay_help)
        return
    from cardsorter.ros.graph import add_run_arguments

    p.add_argument("bag", help="output bag directory (must not exist)")
    p.add_argument("--topics", help="comma-separated topics (default: images, detections, ground truth and every stage's output)")
    p.add_argument("--run", action="store_true", help="run the graph in this process (otherwise record a graph running elsewhere)")
    p.add_argument("--catalog", help="with --run and the synthetic camera: catalogue folder")
    p.add_argument("--cards", type=int, help="with --run and the synthetic camera: cards in the stack")
    p.add_argument("--seed", type=int, help="with --run and the synthetic camera: scene seed")
    p.add_argument("--fps", type=float, help="with --run: camera frame rate")
    p.add_argument("--width", type=int, help="with --run: camera frame width")
    p.add_argument("--height", type=int, help="with --run: camera frame height")
    add_run_arguments(p)
    p.set_defaults(func=guarded("record", _record))
    p = sub.add_parser("replay", help=replay_help)
    p.add_argument("bag", help="rosbag2 directory (MCAP or sqlite3)")
    p.add_argument("--db", required=True, help="reference database directory")
    p.add_argument("--image-topic", help="image topic (default: the bag's */image_raw)")
    p.add_argument("--out", default="out/replay/sort_log.csv", help="sort log CSV")
    p.add_argument("--detect", choices=("auto", "bag", "cpu"), default="auto",
                   help="detections from the bag when it has them (auto), only the bag, or the CPU detector")
    p.add_argument("--params-file", type=pathlib.Path, default=None, help="parameters YAML")
    p.set_defaults(func=guarded("replay", _replay))
