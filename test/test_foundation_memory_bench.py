"""all_nodes started as the launch file starts it (launch-style --ros-args), measured by the memory benchmark."""

from __future__ import annotations

import os
import pathlib

from rosutil import make_world

from cardsorter.bench.memory import _commands, peak_rss_mb, run_mode
from cardsorter.config import default_params_file
from cardsorter.ros.launch_params import write_override_file
from cardsorter.ros.node_specs import NODE_NAMES


def test_peak_rss_is_read_per_process() -> None:
    status = pathlib.Path("/proc/self/status").read_text()
    rss_mb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024
    assert peak_rss_mb(os.getpid()) >= rss_mb - 1.0
    assert set(_commands("per_node", pathlib.Path("p"), pathlib.Path("o"))) == set(NODE_NAMES)
    assert list(_commands("single_process", pathlib.Path("p"), pathlib.Path("o"))) == ["all_nodes"]


def test_all_nodes_with_launch_arguments_sorts_to_the_end_of_stream_and_stops_on_sigint(tmp_path: pathlib.Path) -> None:
    world = make_world(tmp_path / "world", cards=12, seed=3, unknown=2)
    overrides = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(world["catalog"]), "synthetic.cards": 2,
                   "synthetic.seed": 3, "synthetic.realtime": False},
        "embedder": {"backend": "onnx"},
        "matcher": {"database": str(world["db"])},
        "sorter": {"inventory_path": str(tmp_path / "inventory.sqlite"), "sort_log": str(tmp_path / "log.csv")},
    }
    override_file = write_override_file(default_params_file(), "", NODE_NAMES, overrides, directory=str(tmp_path))
    result = run_mode("single_process", default_params_file(), override_file, tmp_path, timeout_s=180.0)
    assert result["sorted_to_end_of_stream"], (tmp_path / "single_process-all_nodes.log").read_text()[-2000:]
    assert result["exit_codes"] == {"all_nodes": 0}
    assert result["peak_rss_mb"]["all_nodes"] > 0
    assert (tmp_path / "log.csv").read_text().count("\n") >= 2, "the sorter wrote rows: the overrides took effect"
